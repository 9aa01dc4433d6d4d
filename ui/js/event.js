// One event: metadata, request headers, the body with Entity decoded (as text, never markup),
// a download of the raw bytes, the replay history and the forwarding attempts; and the
// actions an operator takes on it, each with the command line that does the same.
import { get, post } from './api.js';
import { el, stateLine, statusSpan, timeCell } from './dom.js';

function shellQuote(s) {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${String(s).replace(/'/g, "'\\''")}'`;
}

function timeText(text) {
  if (!text) return el('span', { text: '—' });
  const d = new Date(text);
  if (Number.isNaN(d.getTime())) return el('span', { text });
  return el('time', { datetime: d.toISOString(), title: d.toISOString(), text: d.toLocaleString() });
}

function metadata(e) {
  const rows = [
    ['Received', timeCell(e.received_at_us, 'dd')],
    ['Status', el('dd', {}, statusSpan(e.status), e.verify_reason ? ` (${e.verify_reason})` : '')],
    ['Deliveries by Manage', el('dd', {}, `${e.deliveries}, last `, timeText(e.last_delivery_at))],
    ['Type / action', `${e.type} / ${e.action}`],
    ['Entity id', e.entity_id],
    ['Company', e.company_id],
    ['Member', e.member_id],
    ['Message id', e.message_id],
    ['Callback id', e.callback_id],
    ['From URL', e.from_url],
    ['Key URL', e.key_url],
    ['Client', e.client_addr],
    ['Request', `${e.method} ${e.path}${e.query ? `?${e.query}` : ''}`],
    ['Content-Type', e.content_type],
    ['Body', `${e.body_size} bytes, SHA-256 ${e.body_sha256}`],
    ['Verification attempts', e.verify_attempts],
  ];
  return el('dl', { class: 'meta', id: 'event-meta' }, rows.flatMap(([k, v]) => [
    el('dt', { text: k }),
    v instanceof Node ? v : el('dd', { text: v ?? '—' }),
  ]));
}

function headersTable(headers) {
  return el('div', { class: 'table-wrap' }, el('table', { id: 'event-headers' },
    el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'Header' }), el('th', { scope: 'col', text: 'Value' }))),
    el('tbody', {}, headers.map(([n, v]) => el('tr', {}, el('td', { text: n }), el('td', { text: v }))))));
}

function replaysTable(replays) {
  if (replays.length === 0) return stateLine('Not replayed yet.');
  return el('div', { class: 'table-wrap' }, el('table', { id: 'replays' },
    el('thead', {}, el('tr', {}, ['When', 'Target', 'Status', 'Error', 'Job'].map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, replays.map((r) => el('tr', {},
      el('td', {}, timeText(r.at)), el('td', { text: r.target }), el('td', { class: 'num', text: r.http_status ?? 'no answer' }),
      el('td', { text: r.error || '' }), el('td', { text: r.job || 'command line' }))))));
}

function forwardingList(forwarding) {
  if (!forwarding || forwarding.length === 0) return stateLine('No destination takes this event.');
  return el('div', { id: 'forwarding' }, forwarding.map((d) => el('section', {},
    el('h3', {}, `${d.destination}: `, statusSpan(d.state), ` · ${d.attempt_count} attempt(s)`,
      d.last_status ? ` · last status ${d.last_status}` : '', d.last_error ? ` · ${d.last_error}` : ''),
    (d.attempts && d.attempts.length > 0) ? el('div', { class: 'table-wrap' }, el('table', {},
      el('thead', {}, el('tr', {}, ['When', 'Status', 'Latency (ms)', 'Error'].map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, d.attempts.map((a) => el('tr', {},
        el('td', {}, timeText(a.at)), el('td', { class: 'num', text: a.http_status ?? 'no answer' }),
        el('td', { class: 'num', text: a.latency_ms ?? '' }), el('td', { text: a.error || '' })))))) : '')));
}

function cli(text) {
  return el('code', { class: 'cli', text: `$ ${text}` });
}

function sleep(ms) { return new Promise((r) => { setTimeout(r, ms); }); }

function replayAction(ctx, e, reload) {
  const out = el('p', { class: 'state', role: 'status', id: 'replay-result' });
  const targets = ctx.session.replayTargets;
  if (targets.length === 0) {
    return el('section', { class: 'action', 'aria-labelledby': 'a-replay' },
      el('h3', { id: 'a-replay', text: 'Replay' }),
      stateLine('Replays through the console are off: admin.replay_targets is empty.'),
      cli(`cwhook events replay ${e.id} --to URL`));
  }
  const url = el('input', { id: 'replay-url', type: 'url', value: `http://${targets[0]}/`, required: true });
  const pick = el('select', { id: 'replay-target' }, targets.map((t) => el('option', { value: t, text: t })));
  const command = cli('');
  const updateCli = () => { command.textContent = `$ cwhook events replay ${e.id} --to ${shellQuote(url.value)}`; };
  pick.addEventListener('change', () => { url.value = `http://${pick.value}/`; updateCli(); });
  url.addEventListener('input', updateCli);
  updateCli();
  const button = el('button', { type: 'submit', id: 'replay-button', text: 'Replay' });
  const form = el('form', { class: 'action', 'aria-labelledby': 'a-replay' },
    el('h3', { id: 'a-replay', text: 'Replay' }),
    el('div', { class: 'row' },
      el('label', { for: 'replay-target' }, 'Target (admin.replay_targets)', pick),
      el('label', { for: 'replay-url' }, 'URL', url)),
    el('div', { class: 'row' }, button), out, command);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    out.className = 'state';
    out.textContent = 'Replaying…';
    try {
      const job = await post('/api/events/replay', { ids: [Number(e.id)], to: url.value });
      let s;
      for (let i = 0; i < 60 && ctx.alive(); i += 1) {
        s = await get(`/api/replays/${encodeURIComponent(job.job)}`);
        if (s.done) break;
        await sleep(500);
      }
      if (!ctx.alive()) return;
      out.className = s && s.ok === s.total ? 'state notice' : 'state error';
      out.textContent = s && s.done
        ? `Job ${job.job}: ${s.ok} of ${s.total} answered 2xx, ${s.failed} failed.`
        : `Job ${job.job} is still running.`;
      await reload();
    } catch (err) {
      out.className = 'state error';
      out.textContent = `Replay refused: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function reverifyAction(ctx, e, reload) {
  const out = el('p', { class: 'state', role: 'status', id: 'reverify-result' });
  const eligible = e.status === 'pending' || e.status === 'failed';
  const button = el('button', { type: 'button', id: 'reverify-button', text: 'Re-verify', disabled: !eligible });
  button.addEventListener('click', async () => {
    button.disabled = true;
    out.textContent = 'Checking the signature again…';
    try {
      const r = await post('/api/events/reverify', { ids: [Number(e.id)] });
      out.className = 'state notice';
      out.textContent = `Checked ${r.checked}: ${r.verified} verified, ${r.failed} failed, ${r.unchanged} unchanged.`;
      await reload();
    } catch (err) {
      out.className = 'state error';
      out.textContent = `Re-verification failed: ${err.message}`;
      button.disabled = false;
    }
  });
  return el('section', { class: 'action', 'aria-labelledby': 'a-reverify' },
    el('h3', { id: 'a-reverify', text: 'Re-verify' }),
    el('p', { class: 'state', text: eligible ? 'Fetch the signing key and check the signature again.'
      : `Only pending or failed events are re-checked (this one is ${e.status}).` }),
    el('div', { class: 'row' }, button), out, cli(`cwhook events reverify ${e.id}`));
}

function retryAction(ctx, e, reload) {
  const out = el('p', { class: 'state', role: 'status', id: 'retry-result' });
  const count = el('button', { type: 'button', class: 'secondary', id: 'retry-count', text: 'Count dead deliveries' });
  const confirmButton = el('button', { type: 'button', id: 'retry-confirm', text: 'Retry them', hidden: true });
  count.addEventListener('click', async () => {
    try {
      const r = await post('/api/deliveries/retry', { event: Number(e.id), state: 'dead', dry_run: true });
      out.className = 'state';
      out.textContent = r.count === 0 ? 'No dead deliveries.' : `${r.count} dead deliveries would be retried.`;
      confirmButton.hidden = r.count === 0;
    } catch (err) {
      out.className = 'state error';
      out.textContent = `Cannot count: ${err.message}`;
    }
  });
  confirmButton.addEventListener('click', async () => {
    confirmButton.disabled = true;
    try {
      const r = await post('/api/deliveries/retry', { event: Number(e.id), state: 'dead' });
      out.className = 'state notice';
      out.textContent = `${r.count} deliveries are pending again.`;
      confirmButton.hidden = true;
      await reload();
    } catch (err) {
      out.className = 'state error';
      out.textContent = `Retry failed: ${err.message}`;
    } finally {
      confirmButton.disabled = false;
    }
  });
  return el('section', { class: 'action', 'aria-labelledby': 'a-retry' },
    el('h3', { id: 'a-retry', text: 'Retry dead deliveries' }),
    el('div', { class: 'row' }, count, confirmButton), out,
    cli(`cwhook deliveries retry --event ${e.id} --state dead`));
}

export function renderEvent(ctx, id) {
  const body = el('div', {}, stateLine('Loading…'));
  ctx.main.append(el('p', {}, el('a', { href: '/ui/events', text: '← Events' })), body);
  const title = el('h1', {});
  const metaBox = el('section', {});
  const replaysBox = el('div', { id: 'replays-box' });
  const forwardingBox = el('div', { id: 'forwarding-box' });

  async function fetchEvent() {
    return get(`/api/events/${id}`);
  }

  // What an action changes: the status, the history and the forwarding; the action forms
  // (and what they say) stay.
  function fill(e) {
    title.replaceChildren(`Event #${e.id}: ${e.type} / ${e.action} `, statusSpan(e.status));
    metaBox.replaceChildren(el('h2', { text: 'Metadata' }), metadata(e));
    replaysBox.replaceChildren(replaysTable(e.replays || []));
    forwardingBox.replaceChildren(forwardingList(e.forwarding));
  }

  async function refresh() {
    try {
      const e = await fetchEvent();
      if (ctx.alive()) fill(e);
    } catch (err) { /* the action's own message says what happened */ }
  }

  async function load() {
    let e;
    try {
      e = await fetchEvent();
    } catch (err) {
      if (!ctx.alive()) return;
      body.replaceChildren(stateLine(err.status === 404 ? `There is no event ${id}.` : `Could not load event ${id}: ${err.message}`, 'error'));
      return;
    }
    if (!ctx.alive()) return;
    const payload = e.payload === null
      ? stateLine('The body is not JSON; download the raw bytes to see it.')
      : el('pre', { id: 'payload', tabindex: '0', 'aria-label': 'Body with Entity decoded', text: JSON.stringify(e.payload, null, 2) });
    fill(e);
    body.replaceChildren(
      title,
      el('div', { class: 'two' },
        metaBox,
        el('section', {}, el('h2', { text: 'Request headers' }), headersTable(e.headers))),
      el('h2', { text: 'Body (Entity decoded)' }),
      el('p', {}, el('a', { href: `/api/events/${e.id}/raw`, download: `event-${e.id}.bin`, id: 'raw-link', text: 'Download the raw body' }),
        ' — the exact bytes as received, never shown in the page.'),
      payload,
      el('h2', { text: 'Actions' }),
      el('div', { class: 'actions' }, replayAction(ctx, e, refresh), reverifyAction(ctx, e, refresh), retryAction(ctx, e, refresh)),
      el('h2', { text: 'Replay history' }),
      replaysBox,
      el('h2', { text: 'Forwarding' }),
      forwardingBox);
  }
  load();
}
