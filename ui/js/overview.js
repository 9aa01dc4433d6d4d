// The overview: counts now, charts of the window (uPlot) from GET /api/stats, the
// destinations' backlog, and ack latency and key fetches from /metrics.
import { get, metricsText } from './api.js';
import { el, stateLine } from './dom.js';

const WINDOWS = ['1h', '6h', '24h'];
const REFRESH_MS = 15000;
const PALETTE = ['#1f77b4', '#e4572e', '#29a36a', '#9467bd', '#f2a900', '#17becf', '#8c564b', '#e377c2', '#7f7f7f'];
const STATUS_COLORS = { verified: '#29a36a', pending: '#f2a900', failed: '#e4572e', unverified: '#9467bd' };

// Prometheus text: {name: [{labels, value}]}
export function parseMetrics(text) {
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    for (const l of (m[3] || '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    (out[m[1]] ||= []).push({ labels, value: Number(m[4]) });
  }
  return out;
}

const sum = (rows, pred = () => true) => (rows || []).filter((r) => pred(r.labels)).reduce((a, r) => a + r.value, 0);

// The q-quantile of a cumulative histogram (linear within the bucket), in seconds.
export function quantile(buckets, q) {
  const sorted = buckets.map((b) => ({ le: b.labels.le === '+Inf' ? Infinity : Number(b.labels.le), n: b.value }))
    .sort((a, b) => a.le - b.le);
  const total = sorted.length ? sorted[sorted.length - 1].n : 0;
  if (total === 0) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevN = 0;
  for (const b of sorted) {
    if (b.n >= rank) {
      if (b.le === Infinity) return prevLe;
      const within = b.n - prevN;
      return within === 0 ? b.le : prevLe + ((b.le - prevLe) * (rank - prevN)) / within;
    }
    prevLe = b.le;
    prevN = b.n;
  }
  return prevLe;
}

function fmtMs(s) { return s === null ? '—' : (s * 1000).toFixed(s < 0.01 ? 2 : 1); }
function fmtAge(s) {
  if (s === null || s === undefined) return '—';
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function card(id, label, value, title) {
  return el('div', { class: 'card', id, title },
    el('div', { class: 'label', text: label }), el('div', { class: 'value', text: value }));
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function chartOptions(names, counts, colors, width) {
  const axis = { stroke: cssVar('--muted'), grid: { stroke: cssVar('--line'), width: 1 }, ticks: { stroke: cssVar('--line') } };
  return {

    width,
    height: 220,
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true } },
    axes: [axis, { ...axis, size: 45 }],
    series: [
      { label: 'time' },
      ...names.map((n, i) => ({
        label: `${n} (${counts[i]})`,
        stroke: colors[i],
        width: 2,
        points: { show: false },
      })),
    ],
  };
}

export function drawChart(box, title, stats, seriesMap, colorOf, charts) {
  box.replaceChildren(el('h2', { text: title }));
  const names = Object.keys(seriesMap);
  if (names.length === 0) {
    box.append(stateLine('Nothing in this window.'));
    return;
  }
  const xs = Array.from({ length: stats.buckets }, (_, i) => stats.start_s + i * stats.bucket_s);
  const totals = names.map((n) => seriesMap[n].reduce((a, b) => a + b, 0));
  const colors = names.map((n, i) => colorOf(n, i));
  const holder = el('div', {
    class: 'plot', role: 'img',
    'aria-label': `${title}: ${names.map((n, i) => `${n} ${totals[i]}`).join(', ')}`,
  });
  box.append(holder);
  const width = Math.max(280, box.clientWidth - 20);
  // uPlot: the classic script of vendor/uplot (MIT, see vendor/uplot/LICENSE).
  const plot = new window.uPlot(chartOptions(names, totals, colors, width), [xs, ...names.map((n) => seriesMap[n])], holder);
  charts.push(plot);
}

export function renderOverview(ctx) {
  const win = WINDOWS.includes(ctx.params.get('window')) ? ctx.params.get('window') : '1h';
  const picker = el('select', { id: 'window' }, WINDOWS.map((w) => el('option', { value: w, text: `last ${w}` })));
  picker.value = win;
  picker.addEventListener('change', () => ctx.navigate(`/ui/?window=${picker.value}`));
  const state = el('div', { 'aria-live': 'polite', id: 'overview-state' }, stateLine('Loading…'));
  const cards = el('div', { class: 'cards', id: 'cards' });
  const byType = el('section', { class: 'chart', id: 'chart-type' });
  const byStatus = el('section', { class: 'chart', id: 'chart-status' });
  const byReason = el('section', { class: 'chart', id: 'chart-reason' });
  const destinations = el('div', { id: 'destinations' });
  ctx.main.append(
    el('h1', { text: 'Overview' }),
    el('div', { class: 'toolbar' }, el('label', { for: 'window' }, 'Window', picker)),
    state, cards,
    el('div', { class: 'charts' }, byType, byStatus, byReason),
    el('h2', { text: 'Forwarding' }), destinations);

  let charts = [];
  const destroy = () => { for (const c of charts) c.destroy(); charts = []; };
  let timer = null;

  async function refresh() {
    let stats;
    let dests;
    let metrics = {};
    try {
      [stats, dests] = await Promise.all([get(`/api/stats?window=${win}`), get('/api/destinations')]);
      try { metrics = parseMetrics(await metricsText()); } catch (e) { metrics = {}; }
    } catch (e) {
      if (ctx.alive()) state.replaceChildren(stateLine(`Could not load the overview: ${e.message}`, 'error'));
      return;
    }
    if (!ctx.alive()) return;
    state.replaceChildren();
    const ds = dests.destinations || [];
    const ack = (metrics.cwhook_http_request_duration_seconds_bucket || []).filter((r) => r.labels.route === '/callbacks');
    const oldest = ds.reduce((a, d) => (d.oldest_undelivered_age_s == null ? a : Math.max(a ?? 0, d.oldest_undelivered_age_s)), null);
    cards.replaceChildren(
      card('card-events', `Events (${win})`, stats.events.total),
      card('card-rejections', `Rejections (${win})`, stats.rejections.total),
      card('card-pending', 'Pending now', stats.pending, 'waiting for their signing key'),
      card('card-failed', 'Failed now', stats.failed, 'no usable key; kept whole'),
      card('card-dead', 'Dead deliveries', ds.reduce((a, d) => a + d.dead, 0)),
      card('card-lag', 'Oldest undelivered', fmtAge(oldest), 'forwarding lag'),
      card('card-ack', 'Ack p50 / p95 / p99 (ms)', [0.5, 0.95, 0.99].map((q) => fmtMs(quantile(ack, q))).join(' / '),
        'since start, from cwhook_http_request_duration_seconds{route="/callbacks"}'),
      card('card-keys', 'Key fetches (errors)', `${sum(metrics.cwhook_key_fetches_total)} (${sum(metrics.cwhook_key_fetch_errors_total)})`, 'since start'));
    destroy();
    drawChart(byType, 'Events by type', stats, stats.events.by_type, (n, i) => PALETTE[i % PALETTE.length], charts);
    drawChart(byStatus, 'Events by status', stats, stats.events.by_status, (n, i) => STATUS_COLORS[n] || PALETTE[i % PALETTE.length], charts);
    drawChart(byReason, 'Rejections by reason', stats, stats.rejections.by_reason, (n, i) => PALETTE[(i + 3) % PALETTE.length], charts);
    destinations.replaceChildren(ds.length === 0 ? stateLine('No destinations configured.') : el('div', { class: 'table-wrap' },
      el('table', { id: 'destinations-table' },
        el('thead', {}, el('tr', {}, ['Destination', 'Paused', 'Pending', 'Failing', 'Dead', 'Done', 'Oldest undelivered']
          .map((h) => el('th', { scope: 'col', text: h })))),
        el('tbody', {}, ds.map((d) => el('tr', {},
          el('td', { text: d.name }),
          el('td', { text: d.paused ? `yes: ${d.pause_reason || ''}` : 'no' }),
          el('td', { class: 'num', text: d.pending }), el('td', { class: 'num', text: d.failing }),
          el('td', { class: 'num', text: d.dead }), el('td', { class: 'num', text: d.done }),
          el('td', { text: fmtAge(d.oldest_undelivered_age_s) })))))));
  }

  const observer = new ResizeObserver(() => {
    for (const c of charts) {
      const box = c.root.parentElement.parentElement;
      const w = Math.max(280, box.clientWidth - 20);
      if (Math.abs(c.width - w) > 4) c.setSize({ width: w, height: 220 });
    }
  });
  observer.observe(ctx.main);
  refresh();
  timer = setInterval(refresh, REFRESH_MS);
  ctx.onLeave(() => { clearInterval(timer); observer.disconnect(); destroy(); });
}
