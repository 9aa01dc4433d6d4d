// Building the page: elements are made with createElement and filled with textContent only,
// so text that came from a callback (types, companies, bodies) is never parsed as markup.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (v === true) node.setAttribute(k, '');
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

// A time in the browser's zone, with UTC in the title.
export function timeCell(us, tag = 'td') {
  if (us === null || us === undefined) return el(tag, { text: '—' });
  const d = new Date(Math.floor(us / 1000));
  return el(tag, { title: d.toISOString() }, el('time', { datetime: d.toISOString(), text: d.toLocaleString() }));
}

export function statusSpan(status) {
  return el('span', { class: `status status-${String(status).replace(/[^a-z]/g, '')}`, text: status });
}

export function stateLine(text, kind = '') {
  return el('p', { class: `state ${kind}`, role: kind === 'error' ? 'alert' : 'status', text });
}

// Plain left-button clicks on links inside the console are routed without a reload.
export function isPlainClick(e) {
  return e.button === 0 && !e.metaKey && !e.ctrlKey && !e.shiftKey && !e.altKey && !e.defaultPrevented;
}
