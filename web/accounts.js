// Account access: an admin sees every account, disables or enables it and revokes its sessions;
// anyone signs themself out everywhere. Each asks for confirmation first: they sign people out.
import { $, api, say } from '/assets/tandem.js';

// Shows the admin's Accounts card and fills it.
export function showAccounts(account) {
  $('#accounts').hidden = false;
  $('#refresh-accounts').onclick = () => refreshAccounts(account);
  refreshAccounts(account);
}

async function refreshAccounts(account) {
  try {
    const users = await api('GET', '/api/users', null, account.token);
    $('#account-list').replaceChildren(...users.map((u) => {
      const li = document.createElement('li');
      li.textContent = `${u.display_name} (${u.username}, ${u.role})${u.disabled ? ' · disabled' : ''} `;
      if (u.disabled) li.classList.add('disabled');
      if (u.id !== account.user.id) {
        li.append(button(u.disabled ? `Enable ${u.username}` : `Disable ${u.username}`, async () => {
          const question = u.disabled
            ? `Enable ${u.username}? They can sign in again.`
            : `Disable ${u.username}? They are signed out everywhere at once and cannot sign in or use their softphone until enabled again.`;
          if (!confirm(question)) return;
          await api('PATCH', `/api/users/${u.id}`, { disabled: !u.disabled }, account.token);
          say(`${u.username} is ${u.disabled ? 'enabled' : 'disabled'}.`);
        }, account), ' ');
      }
      li.append(button(`Revoke sessions of ${u.username}`, async () => {
        if (!confirm(`Sign ${u.username} out everywhere? Every device signed in as ${u.username} must sign in again.`)) return;
        await api('POST', `/api/users/${u.id}/revoke`, null, account.token);
        say(`${u.username} is signed out everywhere.`);
      }, account));
      return li;
    }));
  } catch (err) {
    say(`Could not list accounts: ${err.message}`, 'error');
  }
}

function button(label, act, account) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'secondary';
  b.textContent = label;
  b.addEventListener('click', async () => {
    try {
      await act();
      refreshAccounts(account);
    } catch (err) {
      say(`${label} failed: ${err.message}`, 'error');
    }
  });
  return b;
}

// "Sign out everywhere": every token of this account stops working, this page's included.
export function offerSignOutEverywhere(account) {
  const b = $('#signout-everywhere');
  b.hidden = false;
  b.onclick = async () => {
    if (!confirm('Sign out everywhere? Every device signed in as you, this one included, is signed out and leaves its sessions.')) return;
    try {
      await api('POST', `/api/users/${account.user.id}/revoke`, null, account.token);
      location.reload();
    } catch (err) {
      say(`Could not sign out everywhere: ${err.message}`, 'error');
    }
  };
}
