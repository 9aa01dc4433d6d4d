// Replaying every event a filter selects: counted first (GET /api/events/count), replayed
// only after the operator confirms that number, with the job's progress and the command line
// that does the same.
import { get, post } from './api.js';
import { el, stateLine } from './dom.js';

function shellQuote(s) {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${String(s).replace(/'/g, "'\\''")}'`;
}

function sleep(ms) { return new Promise((r) => { setTimeout(r, ms); }); }

// query: the list's filters (URLSearchParams).
export function bulkReplay(ctx, query) {
  const targets = ctx.session.replayTargets;
  const box = el('details', { class: 'action', id: 'bulk' }, el('summary', { text: 'Replay the events these filters select…' }));
  const flags = [...query.entries()].map(([k, v]) => `--${k.replace(/_/g, '-')} ${shellQuote(v)}`).join(' ');
  if (targets.length === 0) {
    box.append(stateLine('Replays through the console are off: admin.replay_targets is empty.'),
      el('code', { class: 'cli', text: `$ cwhook events replay ${flags}${flags ? ' ' : ''}--to URL` }));
    return box;
  }
  const url = el('input', { id: 'bulk-url', type: 'url', value: `http://${targets[0]}/`, required: true });
  const pick = el('select', { id: 'bulk-target' }, targets.map((t) => el('option', { value: t, text: t })));
  const count = el('button', { type: 'button', class: 'secondary', id: 'bulk-count', text: 'Count them' });
  const go = el('button', { type: 'button', id: 'bulk-confirm', hidden: true });
  const out = el('p', { class: 'state', role: 'status', id: 'bulk-result' });
  const cli = el('code', { class: 'cli' });
  const updateCli = () => { cli.textContent = `$ cwhook events replay ${flags}${flags ? ' ' : ''}--to ${shellQuote(url.value)}`; };
  const reset = () => { go.hidden = true; updateCli(); };
  pick.addEventListener('change', () => { url.value = `http://${pick.value}/`; reset(); });
  url.addEventListener('input', reset);
  updateCli();
  let matched = 0;
  count.addEventListener('click', async () => {
    try {
      const r = await get(`/api/events/count?${query}`);
      matched = r.count;
      out.className = 'state';
      out.textContent = matched === 0 ? 'No event matches these filters.' : `${matched} event(s) match; they are sent oldest first.`;
      go.textContent = `Replay ${matched} event(s) to ${url.value}`;
      go.hidden = matched === 0;
    } catch (e) {
      out.className = 'state error';
      out.textContent = `Cannot count: ${e.message}`;
    }
  });
  go.addEventListener('click', async () => {
    go.disabled = true;
    go.hidden = true;
    try {
      const job = await post('/api/events/replay', { filter: Object.fromEntries(query.entries()), to: url.value });
      let s = null;
      for (let i = 0; i < 240 && ctx.alive(); i += 1) {
        s = await get(`/api/replays/${encodeURIComponent(job.job)}`);
        out.className = 'state';
        out.textContent = `Job ${job.job}: ${s.finished} of ${s.total} sent, ${s.ok} answered 2xx, ${s.failed} failed.`;
        if (s.done) break;
        await sleep(500);
      }
      if (s && s.done) {
        out.className = s.ok === s.total ? 'state notice' : 'state error';
        out.textContent = `Job ${job.job} done: ${s.ok} of ${s.total} answered 2xx, ${s.failed} failed.`;
      }
    } catch (e) {
      out.className = 'state error';
      out.textContent = `Replay refused: ${e.message}`;
    } finally {
      go.disabled = false;
    }
  });
  box.append(
    el('div', { class: 'row' },
      el('label', { for: 'bulk-target' }, 'Target (admin.replay_targets)', pick),
      el('label', { for: 'bulk-url' }, 'URL', url)),
    el('div', { class: 'row' }, count, go), out, cli);
  return box;
}
