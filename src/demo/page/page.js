// The demo page's behaviour: the route table, the live tick stream and the users form.
// Every value from the server is put in the page with textContent, never as HTML.
'use strict';

const $ = (id) => document.getElementById(id);

/** A cell (or row) element with text content. */
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

/** One table row saying there is nothing (yet), across `cols` columns. */
function emptyRow(text, cols) {
  const tr = el('tr', undefined, 'empty');
  const td = el('td', text);
  td.colSpan = cols;
  tr.append(td);
  return tr;
}

// ---- Route table: GET /debug/routes -------------------------------------------------

async function loadRoutes() {
  const body = $('routes');
  try {
    const res = await fetch('/debug/routes', { headers: { Accept: 'application/json' } });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const routes = await res.json();
    body.replaceChildren(...routes.map((r) => {
      const tr = el('tr');
      const methods = el('td');
      for (const m of r.methods) methods.append(el('span', m, `m m-${m}`));
      tr.append(methods, el('td', r.pattern, 'mono'), el('td', r.group ?? '—', 'group'));
      return tr;
    }));
  } catch (e) {
    body.replaceChildren(emptyRow(`Could not load the routes: ${e.message}`, 3));
  }
}

// ---- Health: GET /healthz -----------------------------------------------------------

async function loadHealth() {
  const pill = $('health');
  try {
    const res = await fetch('/healthz');
    const h = await res.json();
    pill.textContent = `${h.status} · up ${h.uptime}`;
    pill.dataset.ok = String(res.ok);
  } catch {
    pill.textContent = 'unreachable';
    pill.dataset.ok = 'false';
  }
}

// ---- Live ticks: EventSource on GET /events -----------------------------------------

const BEATS = 40;

function startEvents() {
  const state = $('sse-state');
  const beats = $('beats');
  for (let i = 0; i < BEATS; i++) beats.append(el('span'));
  let received = 0;
  const setState = (s) => { state.dataset.state = s; state.textContent = s; };

  const source = new EventSource('/events');
  source.onopen = () => setState('live');
  source.addEventListener('tick', (ev) => {
    const tick = JSON.parse(ev.data);
    received += 1;
    $('tick-n').textContent = tick.n;
    $('tick-count').textContent = received;
    $('tick-time').textContent = new Date(tick.unix * 1000).toLocaleTimeString();
    setState('live');
    // Shift the strip left: the newest beat is on the right.
    const fresh = beats.querySelector('.fresh');
    if (fresh) fresh.className = 'on';
    const first = beats.firstElementChild;
    first.className = 'on fresh';
    beats.append(first);
  });
  // EventSource reconnects by itself (the server asks for 3 s); say so meanwhile.
  source.onerror = () => {
    setState(source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting');
  };
}

// ---- Users: GET/POST /api/v1/users with bearer auth ---------------------------------

/** A fresh Idempotency-Key: a random UUID (v4). */
function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // randomUUID needs a secure context (https or localhost); getRandomValues does not.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// One key per intended creation: kept when a submission fails on the network (the retry
// is the same operation, and the server replays its answer if the first one did land),
// replaced when the inputs change or a user was created.
let idemKey = '';
function renewKey() {
  idemKey = newKey();
  $('idem-key').textContent = idemKey;
}

function token() {
  return $('token').value.trim();
}

function showResult(kind, ...parts) {
  const box = $('result');
  box.dataset.kind = kind;
  box.replaceChildren(...parts.map((p) => (typeof p === 'string' ? document.createTextNode(p) : p)));
}

/** The error an API answer carries, as one line. */
function describeError(status, body) {
  if (status === 401) return 'the token was refused (401): use the server\'s DEMO_API_TOKEN';
  if (status === 429) return 'too many requests (429): wait a moment and retry';
  if (body && Array.isArray(body.fields)) {
    return body.fields.map((f) => `${f.field} ${f.message}`).join('; ');
  }
  return (body && body.error) || `HTTP ${status}`;
}

async function api(method, path, payload, extraHeaders) {
  const headers = { Accept: 'application/json', Authorization: `Bearer ${token()}`, ...extraHeaders };
  if (payload !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    body: payload === undefined ? undefined : JSON.stringify(payload),
  });
  let body = null;
  try { body = await res.json(); } catch { /* not JSON: keep null */ }
  return { res, body };
}

let lastCreated = null;

async function loadUsers() {
  const tbody = $('users');
  const count = $('user-count');
  if (!token()) {
    tbody.replaceChildren(emptyRow('Enter the API token to list users.', 3));
    count.textContent = '';
    return;
  }
  try {
    const { res, body } = await api('GET', '/api/v1/users');
    if (!res.ok) {
      tbody.replaceChildren(emptyRow(describeError(res.status, body), 3));
      count.textContent = '';
      return;
    }
    count.textContent = `(${body.count})`;
    if (body.users.length === 0) {
      tbody.replaceChildren(emptyRow('No users yet: create one.', 3));
      return;
    }
    tbody.replaceChildren(...body.users.map((u) => {
      const tr = el('tr', undefined, u.id === lastCreated ? 'new' : '');
      tr.append(el('td', u.id, 'mono'), el('td', u.name), el('td', u.email));
      return tr;
    }));
  } catch (e) {
    tbody.replaceChildren(emptyRow(`Could not load the users: ${e.message}`, 3));
  }
}

async function createUser(ev) {
  ev.preventDefault();
  const name = $('name').value.trim();
  const email = $('email').value.trim();
  if (!token()) return showResult('error', 'Enter the API token first.');
  const button = $('submit');
  button.disabled = true;
  showResult('busy', 'Creating…');
  try {
    const { res, body } = await api('POST', '/api/v1/users', { name, email }, { 'Idempotency-Key': idemKey });
    if (res.status === 201 || res.status === 200) {
      lastCreated = body.id;
      const replayed = res.headers.get('Idempotent-Replayed') === 'true' ? ' (replayed)' : '';
      showResult('ok', 'Created ', el('strong', `user #${body.id}`), ` — ${body.name} <${body.email}>${replayed}`);
      $('name').value = '';
      $('email').value = '';
      renewKey();
      await loadUsers();
    } else {
      showResult('error', `Not created: ${describeError(res.status, body)}`);
    }
  } catch (e) {
    showResult('error', `Network error (${e.message}): submitting again resends the same Idempotency-Key.`);
  } finally {
    button.disabled = false;
  }
}

function startUsers() {
  renewKey();
  $('user-form').addEventListener('submit', createUser);
  for (const id of ['name', 'email']) $(id).addEventListener('input', renewKey);
  $('token').addEventListener('change', loadUsers);
  $('refresh').addEventListener('click', loadUsers);
  loadUsers();
}

loadRoutes();
loadHealth();
setInterval(loadHealth, 10000);
startEvents();
startUsers();
