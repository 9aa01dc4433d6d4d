// Subscriptions: the configuration's [[subscriptions]] next to what Manage's system/callbacks
// holds, as the plan `cwhook subscriptions sync` would carry out. Applying asks first (a
// modal dialog naming every change) and sends the plan's id, so a plan that changed since it
// was shown is refused by the daemon rather than applied unseen.
import { get, post } from './api.js';
import { el, stateLine } from './dom.js';

const STATE_KIND = {
  missing: 'bad',
  inactive: 'bad',
  'description differs': 'warn',
  extra: 'warn',
  'in sync': 'ok',
};

function stateSpan(state) {
  return el('span', { class: `status sub-${STATE_KIND[state] || 'warn'}`, text: state });
}

function summaryText(s) {
  const parts = [];
  if (s.missing) parts.push(`${s.missing} missing`);
  if (s.inactive) parts.push(`${s.inactive} inactive`);
  if (s.description_differs) parts.push(`${s.description_differs} with another description`);
  if (s.extra) parts.push(`${s.extra} extra`);
  parts.push(`${s.in_sync} in sync`);
  return parts.join(', ');
}

function changeText(row) {
  const what = `${row.type} / ${row.level} ${row.objectId} → ${row.url}`;
  switch (row.action) {
    case 'create': return `Create ${what}`;
    case 're-enable': return `Re-enable #${row.id} ${what}`;
    case 'update': return `Set the description of #${row.id} to “${row.description}”`;
    case 'delete': return `Delete #${row.id} ${what}`;
    default: return `${row.action} ${what}`;
  }
}

export function renderSubscriptions(ctx) {
  const prune = ctx.params.get('prune') === 'true';
  const pruneBox = el('input', { type: 'checkbox', id: 's-prune', checked: prune });
  pruneBox.addEventListener('change', () => {
    ctx.navigate(pruneBox.checked ? '/ui/subscriptions?prune=true' : '/ui/subscriptions');
  });
  const status = el('div', { 'aria-live': 'polite', id: 'subs-state' });
  const summary = el('p', { id: 'subs-summary' });
  const tbody = el('tbody', { id: 'subs-body' });
  const table = el('div', { class: 'table-wrap' }, el('table', { id: 'subscriptions' },
    el('thead', {}, el('tr', {}, ['State', 'Plan', 'ID', 'Type', 'Level', 'Object', 'URL', 'Description', 'Result']
      .map((h) => el('th', { scope: 'col', text: h })))),
    tbody));
  const applyButton = el('button', { type: 'button', id: 'subs-apply', text: 'Apply this plan…', disabled: true });
  const result = el('p', { class: 'state', role: 'status', id: 'subs-result' });
  const flag = prune ? ' --prune' : '';
  const cli = el('div', {},
    el('code', { class: 'cli', text: `$ cwhook subscriptions sync --dry-run${flag}` }),
    el('code', { class: 'cli', text: `$ cwhook subscriptions sync${flag}` }));

  // The confirmation: a modal dialog (Escape or Cancel closes it, nothing sent).
  const changes = el('ul', { id: 'subs-changes' });
  const confirmButton = el('button', { type: 'button', id: 'subs-confirm-apply', text: 'Apply in Manage' });
  const cancelButton = el('button', { type: 'button', class: 'secondary', id: 'subs-cancel', text: 'Cancel' });
  const dialog = el('dialog', { id: 'subs-confirm', 'aria-labelledby': 'subs-confirm-title' },
    el('h2', { id: 'subs-confirm-title', text: 'Change Manage’s subscriptions?' }),
    el('p', { text: 'These changes are made in Manage now:' }), changes,
    el('div', { class: 'row' }, confirmButton, cancelButton));
  cancelButton.addEventListener('click', () => dialog.close());
  ctx.onLeave(() => { if (dialog.open) dialog.close(); });

  ctx.main.append(el('h1', { text: 'Subscriptions' }),
    el('p', { class: 'muted', text: 'What the configuration declares ([[subscriptions]]) next to what Manage holds. '
      + 'Entries of other integrations (another URL) are not shown and never touched.' }),
    el('div', { class: 'toolbar' },
      el('label', { for: 's-prune' }, pruneBox, 'Delete extra entries (ours, not declared)'),
      applyButton),
    summary, status, table, result, cli, dialog);

  let plan = null;

  function fillRows(rows) {
    tbody.replaceChildren(...rows.map((r) => el('tr', {},
      el('td', {}, stateSpan(r.state)),
      el('td', { text: r.action }),
      el('td', { class: 'num', text: r.id ?? '—' }),
      el('td', { text: r.type }),
      el('td', { text: r.level }),
      el('td', { class: 'num', text: r.objectId }),
      el('td', { class: 'url', text: r.url }),
      el('td', { text: r.description || '—' }),
      el('td', { class: r.result && !r.applied ? 'error' : '', text: r.result || '' }))));
  }

  async function load() {
    status.replaceChildren(stateLine('Asking Manage…'));
    applyButton.disabled = true;
    try {
      const r = await get(`/api/subscriptions${prune ? '?prune=true' : ''}`);
      if (!ctx.alive()) return;
      plan = r;
      if (!r.configured) {
        summary.textContent = `${r.declared} declared.`;
        status.replaceChildren(stateLine(`Manage cannot be asked: ${r.detail}. Set the [manage] keys to compare.`, 'error'));
        fillRows([]);
        return;
      }
      summary.textContent = `${r.declared} declared: ${summaryText(r.summary)}.`
        + (r.others ? ` ${r.others} ${r.others === 1 ? 'entry' : 'entries'} of other integrations not shown.` : '');
      fillRows(r.plan);
      if (r.plan.length === 0) {
        status.replaceChildren(stateLine('Nothing declared and nothing of ours in Manage.'));
      } else if (!r.changes) {
        status.replaceChildren(stateLine(r.summary.extra && !prune
          ? 'In sync; the extra entries are deleted only with the box above ticked.'
          : 'Manage holds exactly what is declared: nothing to apply.', 'notice'));
      } else {
        status.replaceChildren();
      }
      applyButton.disabled = !r.changes;
    } catch (e) {
      if (ctx.alive()) status.replaceChildren(stateLine(`Could not compare with Manage: ${e.message}`, 'error'));
    }
  }

  applyButton.addEventListener('click', () => {
    if (!plan || !plan.changes) return;
    changes.replaceChildren(...plan.plan
      .filter((r) => r.action !== 'unchanged' && r.action !== 'delete-if-prune')
      .map((r) => el('li', { text: changeText(r) })));
    result.textContent = '';
    dialog.showModal();
    cancelButton.focus();
  });

  confirmButton.addEventListener('click', async () => {
    confirmButton.disabled = true;
    try {
      const r = await post('/api/subscriptions/sync', { plan_id: plan.plan_id, prune });
      if (!ctx.alive()) return;
      dialog.close();
      const done = r.plan.filter((x) => x.applied).length;
      result.className = 'state notice';
      result.textContent = `Applied: ${done} change(s) made in Manage.`;
      await load();
    } catch (e) {
      if (!ctx.alive()) return;
      dialog.close();
      result.className = 'state error';
      if (e.code === 'plan_changed') {
        result.textContent = 'Nothing was changed: Manage changed since this plan was shown. Here is the new plan; look at it and apply again.';
        await load();
      } else if (e.code === 'sync_incomplete' && e.data) {
        result.textContent = 'Some changes failed; the Result column says why.';
        fillRows(e.data.plan);
      } else {
        result.textContent = `Apply failed: ${e.message}`;
      }
    } finally {
      confirmButton.disabled = false;
    }
  });

  load();
}
