// The console's entry: the session, the router (history.pushState: every view has its own
// link, back and forward work) and the navigation.
import { get, post, setCsrf, whenUnauthorized } from './api.js';
import { clear, isPlainClick, stateLine } from './dom.js';
import { renderLogin } from './login.js';
import { renderEvents } from './events.js';
import { renderEvent } from './event.js';
import { renderOverview } from './overview.js';
import { renderRejections } from './rejections.js';
import { renderSubscriptions } from './subscriptions.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const logoutButton = document.getElementById('logout');
const session = { auth: null, replayTargets: [] };
let teardown = [];
let generation = 0;

function stopView() {
  for (const fn of teardown) {
    try { fn(); } catch (e) { /* a view's cleanup never stops the next view */ }
  }
  teardown = [];
  generation += 1;
}

export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  route();
}

function markNav(path) {
  for (const a of nav.querySelectorAll('a')) {
    const href = a.getAttribute('href');
    const active = href === '/ui/' ? path === '/ui/' : path.startsWith(href);
    if (active) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function route() {
  stopView();
  if (!session.auth) {
    showLogin();
    return;
  }
  const path = location.pathname;
  markNav(path);
  const mine = generation;
  const ctx = {
    main: clear(main),
    session,
    navigate,
    params: new URLSearchParams(location.search),
    alive: () => mine === generation,
    onLeave: (fn) => teardown.push(fn),
  };
  let m;
  if (path === '/ui/' || path === '/ui') {
    document.title = 'Overview · cwhook';
    renderOverview(ctx);
  } else if (path === '/ui/events') {
    document.title = 'Events · cwhook';
    renderEvents(ctx);
  } else if ((m = path.match(/^\/ui\/events\/(\d+)$/))) {
    document.title = `Event ${m[1]} · cwhook`;
    renderEvent(ctx, m[1]);
  } else if (path === '/ui/rejections') {
    document.title = 'Rejections · cwhook';
    renderRejections(ctx);
  } else if (path === '/ui/subscriptions') {
    document.title = 'Subscriptions · cwhook';
    renderSubscriptions(ctx);
  } else {
    ctx.main.append(stateLine('No such page.', 'error'));
  }
}

function showLogin(message) {
  stopView();
  session.auth = null;
  setCsrf(null);
  nav.hidden = true;
  logoutButton.hidden = true;
  document.title = 'Log in · cwhook';
  renderLogin(clear(main), message, async (token) => {
    const r = await post('/ui/api/login', { token });
    setCsrf(r.csrf_token);
    await start();
  });
}

async function start() {
  let s;
  try {
    s = await get('/ui/api/session');
  } catch (e) {
    if (e.status === 401) {
      showLogin();
    } else {
      clear(main).append(stateLine(`Cannot reach the admin API: ${e.message}`, 'error'));
    }
    return;
  }
  session.auth = s.auth;
  session.replayTargets = s.replay_targets || [];
  setCsrf(s.csrf_token);
  nav.hidden = false;
  logoutButton.hidden = s.auth !== 'cookie';
  route();
  main.focus();
}

whenUnauthorized(() => {
  if (session.auth) showLogin('Your session has ended; log in again.');
});

logoutButton.addEventListener('click', async () => {
  try {
    await post('/ui/api/logout', {});
  } finally {
    showLogin('Logged out.');
  }
});

document.addEventListener('click', (e) => {
  const a = e.target.closest('a[href]');
  if (!a || !isPlainClick(e) || a.hasAttribute('download') || a.target) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith('/ui/')) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
  main.focus();
});

window.addEventListener('popstate', route);
start();
