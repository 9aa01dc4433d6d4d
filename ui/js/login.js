// The login form: the admin token (`cwhook admin token` prints it) for a session cookie.
import { el } from './dom.js';

export function renderLogin(main, message, submit) {
  const input = el('input', {
    id: 'token', name: 'token', type: 'password', autocomplete: 'current-password', required: true,
    spellcheck: 'false',
  });
  const note = el('p', { id: 'login-message', role: 'alert', class: 'state', text: message || '' });
  const button = el('button', { type: 'submit', text: 'Log in' });
  const form = el('form', { 'aria-labelledby': 'login-title' },
    el('label', { for: 'token' }, 'Admin token', input),
    button, note);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    button.disabled = true;
    note.className = 'state';
    note.textContent = 'Checking…';
    try {
      await submit(input.value);
    } catch (err) {
      note.className = 'state error';
      note.textContent = err.status === 401 ? 'That is not the admin token.'
        : err.status === 429 ? `Too many failed logins: ${err.message}` : `Login failed: ${err.message}`;
      button.disabled = false;
      input.select();
    }
  });
  main.append(el('section', { class: 'login' },
    el('h1', { id: 'login-title', text: 'cwhook console' }),
    el('p', { class: 'state', text: 'Log in with the admin token (`cwhook admin token` prints it).' }),
    form));
  input.focus();
}
