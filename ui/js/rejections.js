// Refused requests (bad signatures, companies not trusted, ...), newest first, with the
// reason as a filter in the URL and the first bytes of each body shown as text.
import { get } from './api.js';
import { el, stateLine, timeCell } from './dom.js';
import { drawChart } from './overview.js';

const PAGE = 50;

export function renderRejections(ctx) {
  const reason = ctx.params.get('reason') || '';
  const input = el('input', { id: 'r-reason', name: 'reason', type: 'text', value: reason, placeholder: 'bad_signature' });
  const form = el('form', { class: 'filters', role: 'search', 'aria-label': 'Filter rejections' },
    el('label', { for: 'r-reason' }, 'Reason', input),
    el('div', { class: 'buttons' }, el('button', { type: 'submit', text: 'Apply' })));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = input.value.trim();
    ctx.navigate(v ? `/ui/rejections?reason=${encodeURIComponent(v)}` : '/ui/rejections');
  });
  const tbody = el('tbody', { id: 'rejections-body' });
  const status = el('div', { 'aria-live': 'polite' });
  const more = el('button', { type: 'button', class: 'secondary', text: 'Older rejections', hidden: true });
  let before = null;
  let shown = 0;
  const chart = el('section', { class: 'chart', id: 'rejections-chart' });
  const charts = [];
  ctx.onLeave(() => { for (const c of charts) c.destroy(); });
  ctx.main.append(el('h1', { text: 'Rejections' }), chart, form, status,
    el('div', { class: 'table-wrap' }, el('table', { id: 'rejections' },
      el('thead', {}, el('tr', {}, ['Received', 'Reason', 'Status', 'Client', 'Key URL', 'Body (first bytes)']
        .map((h) => el('th', { scope: 'col', text: h })))),
      tbody)),
    more);

  async function load() {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (reason) q.set('reason', reason);
    if (before) q.set('before', String(before));
    status.replaceChildren(stateLine('Loading…'));
    try {
      const r = await get(`/api/rejections?${q}`);
      if (!ctx.alive()) return;
      for (const x of r.rejections) {
        shown += 1;
        tbody.append(el('tr', {},
          timeCell(x.received_at_us),
          el('td', { title: x.detail || '' }, x.reason),
          el('td', { class: 'num', text: x.http_status }),
          el('td', { text: x.client_addr }),
          el('td', { text: x.key_url || '—' }),
          el('td', {}, el('code', { text: `${x.body_head || ''}${x.body_size > (x.body_head || '').length ? '…' : ''}` }),
            ` (${x.body_size} bytes)`)));
      }
      before = r.next_before;
      more.hidden = !before;
      status.replaceChildren(shown === 0 ? stateLine('No rejections.') : '');
    } catch (e) {
      if (ctx.alive()) status.replaceChildren(stateLine(`Could not load rejections: ${e.message}`, 'error'));
    }
  }
  // Counts by reason over the last 24 hours (15-minute buckets).
  async function drawCounts() {
    try {
      const stats = await get('/api/stats?window=24h');
      if (!ctx.alive()) return;
      drawChart(chart, 'Rejections by reason, last 24 h', stats, stats.rejections.by_reason,
        (n, i) => ['#e4572e', '#1f77b4', '#f2a900', '#9467bd', '#29a36a', '#17becf', '#8c564b', '#e377c2', '#7f7f7f'][i % 9], charts);
    } catch (e) {
      if (ctx.alive()) chart.replaceChildren(stateLine(`Could not load the counts: ${e.message}`, 'error'));
    }
  }
  more.addEventListener('click', load);
  drawCounts();
  load();
}
