// SPEC M2 on the dashboard: the script library. Everyone listed sorts it; CSRs and agents add
// scripts and edit or delete their own; admins keep the categories. A refusal is shown beside
// the field it is about, and the form keeps what was typed so it can be fixed there.
import { $, say } from '/assets/tandem.js';

// Which field each refusal is about (docs/protocol.md, "Script library").
const FIELD = {
  invalid_name: 'script-name',
  script_name_taken: 'script-name',
  unknown_category: 'script-category',
  invalid_description: 'script-description',
  file_required: 'script-file',
  script_too_large: 'script-file',
  invalid_file_name: 'script-file',
  input_too_large: 'script-input',
};

// An API call that keeps the problem's code (the form needs it).
async function call(method, url, body, token) {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = res.status === 204 ? {} : await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = new Error(json.detail || `the server answered ${res.status}`);
    e.code = json.code;
    throw e;
  }
  return json;
}

function base64(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result).split(',')[1] || '');
    r.onerror = () => reject(r.error);
    r.readAsDataURL(file);
  });
}

export class ScriptLibrary {
  constructor(account) {
    this.account = account;
    this.scripts = [];
    this.categories = [];
    this.sort = { key: 'name', up: true };
    this.editing = null;
    $('#scripts').hidden = false;
    $('#script-categories').hidden = account.user.role !== 'admin';
    $('#script-form').hidden = account.user.role === 'admin';
    for (const b of document.querySelectorAll('#script-table button.sort')) {
      b.addEventListener('click', () => {
        this.sort = { key: b.dataset.sort, up: this.sort.key === b.dataset.sort ? !this.sort.up : true };
        this.draw();
      });
    }
    $('#script-form').addEventListener('submit', (e) => { e.preventDefault(); this.save(); });
    $('#script-cancel').addEventListener('click', () => this.edit(null));
    $('#category-form').addEventListener('submit', (e) => { e.preventDefault(); this.addCategory(); });
    this.refresh();
  }

  async refresh() {
    try {
      const token = this.account.token;
      [{ scripts: this.scripts }, { categories: this.categories }] = await Promise.all([
        call('GET', '/api/scripts', null, token), call('GET', '/api/script-categories', null, token),
      ]);
      this.draw();
    } catch (err) {
      say(`Could not load the script library: ${err.message}`, 'error');
    }
  }

  draw() {
    const { key, up } = this.sort;
    const sorted = [...this.scripts].sort((a, b) => {
      const x = a[key];
      const y = b[key];
      const c = typeof x === 'number' ? x - y : String(x).localeCompare(String(y), undefined, { sensitivity: 'base' });
      return up ? c : -c;
    });
    for (const th of document.querySelectorAll('#script-table th')) {
      const b = th.querySelector('button.sort');
      if (b) th.setAttribute('aria-sort', b.dataset.sort === key ? (up ? 'ascending' : 'descending') : 'none');
    }
    $('#script-table tbody').replaceChildren(...sorted.map((s) => {
      const tr = document.createElement('tr');
      const name = tr.insertCell();
      name.textContent = s.name;
      name.title = s.description;
      if (!s.published) name.append(' (private)');
      tr.insertCell().textContent = s.category_name;
      tr.insertCell().textContent = s.owner_name;
      tr.insertCell().textContent = new Date(s.updated_at).toLocaleString();
      const actions = tr.insertCell();
      if (s.owner === this.account.user.id) {
        actions.append(this.button(`Edit ${s.name}`, 'Edit', () => this.edit(s)),
          this.button(`Delete ${s.name}`, 'Delete', () => this.remove(s)));
      }
      return tr;
    }));
    $('#scripts-empty').hidden = sorted.length > 0;
    const sel = $('#script-category');
    const keep = sel.value;
    sel.replaceChildren(new Option('Choose a category', ''), ...this.categories.map((c) => new Option(c.name, c.id)));
    sel.value = this.categories.some((c) => c.id === keep) ? keep : '';
    $('#category-list').replaceChildren(...this.categories.map((c) => {
      const li = document.createElement('li');
      li.append(`${c.name} (${c.scripts} ${c.scripts === 1 ? 'script' : 'scripts'}) `,
        this.button(`Rename ${c.name}`, 'Rename', () => this.renameCategory(c)),
        this.button(`Delete ${c.name}`, 'Delete', () => this.deleteCategory(c)));
      return li;
    }));
  }

  button(label, text, onClick) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'secondary';
    b.textContent = text;
    b.setAttribute('aria-label', label);
    b.addEventListener('click', onClick);
    return b;
  }

  clearErrors() {
    for (const p of document.querySelectorAll('#scripts .field-error')) { p.hidden = true; p.textContent = ''; }
    for (const el of document.querySelectorAll('#scripts [aria-invalid]')) el.removeAttribute('aria-invalid');
  }

  // Shows the refusal beside its field and puts the cursor there.
  fieldError(id, text) {
    const field = $(`#${id}`);
    const p = $(`#${id}-error`);
    p.textContent = `${text.charAt(0).toUpperCase()}${text.slice(1)}.`;
    p.hidden = false;
    field.setAttribute('aria-invalid', 'true');
    field.focus();
  }

  edit(s) {
    this.editing = s;
    this.clearErrors();
    const f = $('#script-form');
    f.reset();
    $('#script-form-title').textContent = s ? `Edit ${s.name}` : 'Add a script';
    $('#script-save').textContent = s ? 'Save changes' : 'Add script';
    $('#script-cancel').hidden = !s;
    $('#script-remove-input-row').hidden = !s?.input_name;
    if (s) {
      $('#script-name').value = s.name;
      $('#script-category').value = s.category;
      $('#script-description').value = s.description;
      $('#script-published').checked = s.published;
      $('#script-name').focus();
    }
  }

  async save() {
    this.clearErrors();
    const file = $('#script-file').files[0];
    const input = $('#script-input').files[0];
    const body = {
      name: $('#script-name').value,
      category: $('#script-category').value,
      description: $('#script-description').value,
      published: $('#script-published').checked,
    };
    try {
      if (file) body.file = { name: file.name, content_base64: await base64(file) };
      if (input) body.input = { name: input.name, content_base64: await base64(input) };
      if (this.editing && !input && $('#script-remove-input').checked) body.remove_input = true;
      const saved = this.editing
        ? await call('PATCH', `/api/scripts/${this.editing.id}`, body, this.account.token)
        : await call('POST', '/api/scripts', body, this.account.token);
      say(`${saved.name} is ${this.editing ? 'saved' : 'in the library'}${saved.published ? '' : ' (private: only you see it)'}.`);
      this.edit(null);
      await this.refresh();
    } catch (err) {
      const field = FIELD[err.code];
      if (field) this.fieldError(field, err.message);
      else say(`The script was not saved: ${err.message}`, 'error');
    }
  }

  async remove(s) {
    if (!confirm(`Delete the script ${s.name}? It cannot be run any more.`)) return;
    try {
      await call('DELETE', `/api/scripts/${s.id}`, null, this.account.token);
      say(`${s.name} is deleted.`);
      if (this.editing?.id === s.id) this.edit(null);
      await this.refresh();
    } catch (err) {
      say(`Could not delete ${s.name}: ${err.message}`, 'error');
    }
  }

  async addCategory() {
    this.clearErrors();
    try {
      const c = await call('POST', '/api/script-categories', { name: $('#category-name').value }, this.account.token);
      $('#category-form').reset();
      say(`The category ${c.name} is added.`);
      await this.refresh();
    } catch (err) {
      this.fieldError('category-name', err.message);
    }
  }

  async renameCategory(c) {
    const name = prompt(`New name for ${c.name}`, c.name);
    if (!name) return;
    try {
      await call('PATCH', `/api/script-categories/${c.id}`, { name }, this.account.token);
      say(`${c.name} is now ${name}.`);
      await this.refresh();
    } catch (err) {
      say(`Could not rename ${c.name}: ${err.message}`, 'error');
    }
  }

  async deleteCategory(c) {
    if (!confirm(`Delete the category ${c.name}?`)) return;
    try {
      await call('DELETE', `/api/script-categories/${c.id}`, null, this.account.token);
      say(`The category ${c.name} is deleted.`);
      await this.refresh();
    } catch (err) {
      say(`Could not delete ${c.name}: ${err.message}`, 'error');
    }
  }
}
