// The events list: the API's filters in the URL's query string (a view is a link), newest
// first, paged with the API's cursor, and a live tail that re-reads the newest page every 2 s.
import { get } from './api.js';
import { bulkReplay } from './bulk.js';
import { el, stateLine, statusSpan, timeCell } from './dom.js';

export const FILTERS = [
  ['type', 'Type', 'text', 'ticket'],
  ['action', 'Action', 'text', 'updated'],
  ['entity_id', 'Entity id', 'text', '5000'],
  ['company', 'Company', 'text', ''],
  ['status', 'Status', 'select', ''],
  ['source', 'Source', 'text', 'callback or catch_up'],
  ['since', 'Since', 'text', '2h or 2026-01-31'],
  ['until', 'Until', 'text', ''],
  ['callback_id', 'Callback id', 'text', ''],
];
const STATUSES = ['', 'verified', 'pending', 'failed', 'unverified', 'synthesized'];
const TAIL_MS = 2000;
const PAGE = 50;

function filterQuery(params) {
  const q = new URLSearchParams();
  for (const [name] of FILTERS) {
    const v = params.get(name);
    if (v) q.set(name, v);
  }
  return q;
}

function filterForm(ctx) {
  const inputs = {};
  const fields = FILTERS.map(([name, label, kind, placeholder]) => {
    const id = `f-${name}`;
    let input;
    if (kind === 'select') {
      input = el('select', { id, name }, STATUSES.map((s) => el('option', { value: s, text: s || 'any' })));
      input.value = ctx.params.get(name) || '';
    } else {
      input = el('input', { id, name, type: 'text', placeholder, value: ctx.params.get(name) || '' });
    }
    inputs[name] = input;
    return el('label', { for: id }, label, input);
  });
  const form = el('form', { class: 'filters', role: 'search', 'aria-label': 'Filter events' },
    fields,
    el('div', { class: 'buttons' },
      el('button', { type: 'submit', text: 'Apply' }),
      el('button', { type: 'button', class: 'secondary', id: 'clear-filters', text: 'Clear',
        onclick: () => ctx.navigate('/ui/events') })));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [name] of FILTERS) {
      const v = inputs[name].value.trim();
      if (v) q.set(name, v);
    }
    const s = q.toString();
    ctx.navigate(s ? `/ui/events?${s}` : '/ui/events');
  });
  return form;
}

function row(e) {
  const href = `/ui/events/${e.id}`;
  return el('tr', { 'data-id': e.id },
    timeCell(e.received_at_us),
    el('td', {}, el('a', { href, text: `${e.type || '—'} / ${e.action || '—'}` })),
    el('td', { class: 'num', text: e.entity_id ?? '—' }),
    el('td', { text: e.company_id ?? '—' }),
    el('td', {}, statusSpan(e.status)),
    el('td', { class: 'num', text: e.deliveries }),
    el('td', { class: 'num' }, el('a', { href, text: `#${e.id}`, 'aria-label': `event ${e.id}` })));
}

export function renderEvents(ctx) {
  const query = filterQuery(ctx.params);
  const tbody = el('tbody', { id: 'events-body' });
  const table = el('table', { id: 'events' },
    el('caption', { class: 'hide-narrow state', text: 'Newest first; times in your browser\'s zone (UTC on hover).' }),
    el('thead', {}, el('tr', {},
      el('th', { scope: 'col', text: 'Received' }),
      el('th', { scope: 'col', text: 'Type / action' }),
      el('th', { scope: 'col', class: 'num', text: 'Entity' }),
      el('th', { scope: 'col', text: 'Company' }),
      el('th', { scope: 'col', text: 'Status' }),
      el('th', { scope: 'col', class: 'num', text: 'Deliveries' }),
      el('th', { scope: 'col', class: 'num', text: 'Event' }))),
    tbody);
  const status = el('div', { id: 'events-state', 'aria-live': 'polite' });
  const more = el('button', { type: 'button', class: 'secondary', id: 'older', text: 'Older events', hidden: true });
  const tail = el('input', { type: 'checkbox', id: 'tail' });
  const tailNote = el('span', { class: 'state', id: 'tail-note' });
  const shown = new Set();
  let cursor = null;
  let timer = null;

  ctx.main.append(
    el('h1', { text: 'Events' }),
    filterForm(ctx),
    el('div', { class: 'toolbar' },
      el('label', { for: 'tail' }, tail, `Live tail (every ${TAIL_MS / 1000} s)`), tailNote),
    status,
    el('div', { class: 'table-wrap' }, table),
    more,
    bulkReplay(ctx, query));

  function showState(text, kind) {
    status.replaceChildren(text ? stateLine(text, kind) : '');
  }

  async function load(after) {
    const q = new URLSearchParams(query);
    q.set('limit', String(PAGE));
    if (after) q.set('cursor', after);
    showState('Loading…');
    more.disabled = true;
    try {
      const r = await get(`/api/events?${q}`);
      if (!ctx.alive()) return;
      for (const e of r.events) {
        if (shown.has(e.id)) continue;
        shown.add(e.id);
        tbody.append(row(e));
      }
      cursor = r.next_cursor;
      more.hidden = !cursor;
      more.disabled = false;
      showState(shown.size === 0 ? 'No events match these filters.' : '');
    } catch (e) {
      if (!ctx.alive()) return;
      more.disabled = false;
      showState(`Could not load events: ${e.message}`, 'error');
    }
  }

  // The newest page again; rows not shown yet go on top, newest first.
  async function poll() {
    const q = new URLSearchParams(query);
    q.set('limit', String(PAGE));
    try {
      const r = await get(`/api/events?${q}`);
      if (!ctx.alive()) return;
      const fresh = r.events.filter((e) => !shown.has(e.id));
      for (const e of fresh.reverse()) {
        shown.add(e.id);
        tbody.prepend(row(e));
      }
      if (shown.size > 0) showState('');
      tailNote.textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      if (ctx.alive()) tailNote.textContent = `tail paused: ${e.message}`;
    }
  }

  tail.addEventListener('change', () => {
    clearInterval(timer);
    timer = null;
    tailNote.textContent = '';
    if (tail.checked) {
      timer = setInterval(poll, TAIL_MS);
      poll();
    }
  });
  more.addEventListener('click', () => load(cursor));
  ctx.onLeave(() => clearInterval(timer));
  load(null);
}
