// Requests to the admin API with the session cookie. State-changing requests carry the
// session's CSRF token and JSON; "same-origin" as the referrer policy keeps the Origin header
// this listener's own (the page's no-referrer policy would make it "null").
let csrf = null;
let onUnauthorized = () => {};

export function setCsrf(token) { csrf = token; }
export function whenUnauthorized(fn) { onUnauthorized = fn; }

export class ApiError extends Error {
  constructor(status, code, detail, data = null) {
    super(detail ? `${code}: ${detail}` : code);
    this.status = status;
    this.code = code;
    this.data = data; // the whole JSON answer (some errors carry more than a reason)
  }
}

async function call(method, path, body) {
  const init = {
    method,
    credentials: 'same-origin',
    referrerPolicy: 'same-origin',
    cache: 'no-store',
    headers: { Accept: 'application/json' },
  };
  if (method !== 'GET') {
    init.headers['Content-Type'] = 'application/json';
    if (csrf) init.headers['X-CSRF-Token'] = csrf;
    init.body = JSON.stringify(body ?? {});
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'network_error', 'the daemon did not answer (is it running?)');
  }
  const type = res.headers.get('Content-Type') || '';
  if (!type.includes('json')) {
    if (!res.ok) throw new ApiError(res.status, `HTTP ${res.status}`, '');
    return res.text();
  }
  const data = await res.json();
  if (!res.ok) {
    if (res.status === 401 && path !== '/ui/api/login') onUnauthorized();
    throw new ApiError(res.status, data.error || `HTTP ${res.status}`, data.detail || '', data);
  }
  return data;
}

export const get = (path) => call('GET', path);
export const post = (path, body) => call('POST', path, body);

// The text of /metrics (Prometheus' text format).
export async function metricsText() {
  const res = await fetch('/metrics', { credentials: 'same-origin', cache: 'no-store' });
  if (!res.ok) throw new ApiError(res.status, `HTTP ${res.status}`, 'cannot read /metrics');
  return res.text();
}
