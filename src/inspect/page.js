'use strict';
// The inspector page: the history from {base}/json, then live events from {base}/events.
// Every value from the server goes into the DOM as text (never as HTML): paths and header
// values are whatever clients sent.
(function () {
  const BASE = location.pathname.replace(/\/+$/, '');

  // The bar segments: from one stamp to the next, coloured by stage.
  const SEGMENTS = [
    { key: 'parse', from: 'first_byte', to: 'head_parsed', name: 'parse' },
    { key: 'queue', from: 'queued', to: 'handler_start', name: 'queue wait' },
    { key: 'handler', from: 'handler_start', to: 'handler_end', name: 'handler' },
    { key: 'write', from: 'handler_end', to: 'written', name: 'write' },
  ];

  // The stamps, in order, with who takes them and where in the code.
  const STAMPS = [
    { key: 'accepted', name: 'accepted', step: null,
      where: 'loop · src/event_loop.rs (add_conn)' },
    { key: 'first_byte', name: 'first byte', step: 'wait for the client',
      where: 'loop · src/conn/read.rs (fill)' },
    { key: 'head_parsed', name: 'head parsed', step: 'parse',
      where: 'loop · src/conn/read.rs (process)' },
    { key: 'queued', name: 'queued', step: 'hand-off',
      where: 'loop · src/conn/read.rs (dispatch)' },
    { key: 'handler_start', name: 'handler start', step: 'queue wait',
      where: 'worker · src/pool/mod.rs (run_job)' },
    { key: 'handler_end', name: 'handler end', step: 'handler',
      where: 'worker · src/pool/mod.rs (run_job)' },
    { key: 'written', name: 'written', step: 'write',
      where: 'worker · src/pool/mod.rs, or loop · src/conn/write.rs' },
  ];

  const CLOSE_REASONS = {
    peer_closed: 'the client closed the connection between requests',
    peer_closed_mid_request: 'the client closed the connection while a request was being read or answered',
    io_error: 'a socket error (e.g. the client reset the connection)',
    done: 'the server closed it after the answer (Connection: close, an error status, or the per-connection request limit)',
    idle_timeout: 'no next request within idle_timeout',
    header_timeout: 'a request head did not arrive within header_read_timeout',
    write_timeout: 'the client did not read the answer within write_timeout',
    linger_timeout: 'the lingering close reached its deadline',
    draining: 'the server was draining (shutting down)',
    shutdown_deadline: 'still open when the drain deadline passed',
    forced_stop: 'the server was stopped at once',
    stream_aborted: 'a streamed answer was cut off: its producer failed, panicked or aborted',
    upgraded: 'handed to an upgrade callback',
    ws_closed: 'a WebSocket closed with the close handshake',
    ws_protocol_error: 'a WebSocket client broke the protocol (the close frame gave the code)',
    ws_timeout: 'a WebSocket client answered no ping for two intervals, or stalled a message',
    ws_overflow: 'a WebSocket client did not read (send queue full) or passed the memory budget',
    upstream_failed: 'the upstream failed or stalled while the proxy relayed its answer',
    tls_handshake_timeout: 'the TLS handshake did not finish within tls_handshake_timeout',
    tls_handshake_failed: 'the TLS handshake failed (not TLS, no common parameters, a bad message)',
  };

  const state = {
    reqs: [],              // oldest first, at most `capacity`
    closes: new Map(),     // conn id -> close event, oldest first
    capacity: 500,
    lastEv: 0,
    syncing: false,
    early: [],             // events that came while /json was loading
    classes: new Set(['1', '2', '3', '4', '5']),
    route: '*',
    path: '',
    scale: 'shared',
    paused: false,
    unseen: 0,
    selected: null,        // ev of the request in the detail panel
    routes: new Set(),
  };

  const $ = (id) => document.getElementById(id);

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // 1234 ns -> "1.23 µs"; three significant digits, the unit that fits.
  function dur(ns) {
    if (ns === null || ns === undefined) return '—';
    if (ns < 1000) return Math.round(ns) + ' ns';
    const units = [[1e3, 'µs'], [1e6, 'ms'], [1e9, 's']];
    let u = units[0];
    for (const x of units) if (ns >= x[0]) u = x;
    const v = ns / u[0];
    return (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) + ' ' + u[1];
  }

  // Axis labels: 500 µs, 1 ms, 2.5 ms (no trailing zeros).
  function short(ns) {
    return dur(ns).replace(/\.0+ /, ' ').replace(/(\.\d*?)0+ /, '$1 ');
  }

  function clock(ms) {
    if (!ms) return '';
    const d = new Date(ms);
    const p = (n, w) => String(n).padStart(w, '0');
    return p(d.getHours(), 2) + ':' + p(d.getMinutes(), 2) + ':' + p(d.getSeconds(), 2) +
      '.' + p(d.getMilliseconds(), 3);
  }

  function statusClass(s) {
    return s >= 100 && s < 600 ? String(Math.floor(s / 100)) : '0';
  }

  // Where a request's bar ends: the last byte written, or the last stage (or stream
  // write) it reached.
  function endOf(r) {
    const t = r.stamps;
    const flushes = r.flushes || [];
    const last = flushes.length ? flushes[flushes.length - 1] : 0;
    return Math.max(last, t.written || t.handler_end || t.handler_start || t.queued || t.head_parsed || t.first_byte);
  }

  // Where a segment ends; a stream cut short still wrote until its last flush.
  function stageEnd(r, s) {
    const to = r.stamps[s.to];
    if (to || s.key !== 'write' || !r.streamed) return to;
    const f = r.flushes || [];
    return f.length ? f[f.length - 1] : 0;
  }

  function spanOf(r) {
    return Math.max(0, endOf(r) - r.stamps.first_byte);
  }

  // A round axis step: 1, 2 or 5 times a power of ten, about `n` steps over `max`.
  function niceStep(max, n) {
    const raw = max / n;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    const m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }

  // ---- data -------------------------------------------------------------------------

  function apply(ev) {
    if (ev.kind === 'request') {
      state.reqs.push(ev);
      if (state.reqs.length > state.capacity) state.reqs.splice(0, state.reqs.length - state.capacity);
      if (state.paused) state.unseen++;
    } else if (ev.kind === 'close') {
      state.closes.delete(ev.conn);
      state.closes.set(ev.conn, ev);
      while (state.closes.size > state.capacity) state.closes.delete(state.closes.keys().next().value);
    }
    state.lastEv = Math.max(state.lastEv, ev.ev);
  }

  function onEvent(ev) {
    if (state.syncing) { state.early.push(ev); return; }
    if (ev.ev <= state.lastEv) return;            // already in the history we loaded
    if (ev.ev > state.lastEv + 1) { resync(); return; } // missed some: reload
    apply(ev);
    schedule();
  }

  function resync() {
    if (state.syncing) return;
    state.syncing = true;
    fetch(BASE + '/json', { cache: 'no-store' })
      .then((r) => { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then((doc) => {
        state.capacity = doc.capacity || state.capacity;
        state.reqs = doc.requests || [];
        state.closes = new Map();
        for (const c of doc.closes || []) state.closes.set(c.conn, c);
        state.lastEv = doc.last_ev || 0;
        const early = state.early;
        state.early = [];
        state.syncing = false;
        for (const ev of early) if (ev.ev === state.lastEv + 1) apply(ev);
        render();
      })
      .catch(() => {
        state.syncing = false;
        setTimeout(resync, 2000);
      });
  }

  // Live updates, unless the page is a snapshot: `?live=0`, or by default in headless
  // Chrome, whose renders (--dump-dom, --screenshot with --virtual-time-budget) wait for
  // every fetch to end, and an event stream never does. `?live=1` forces them on.
  const params = new URLSearchParams(location.search);
  const LIVE = params.has('live')
    ? params.get('live') !== '0'
    : !/HeadlessChrome/.test(navigator.userAgent);
  function connect() {
    if (!window.EventSource) return;
    const es = new EventSource(BASE + '/events');
    es.addEventListener('open', () => { live('on'); resync(); });
    es.addEventListener('error', () => live('off'));
    es.addEventListener('request', (e) => onEvent(JSON.parse(e.data)));
    es.addEventListener('close', (e) => onEvent(JSON.parse(e.data)));
  }

  function live(how) {
    const l = $('live');
    l.className = 'live ' + how;
    l.textContent = { on: 'live', off: 'reconnecting…', idle: 'connecting…', snapshot: 'snapshot' }[how];
  }

  // ---- the waterfall ----------------------------------------------------------------

  let pending = false;
  function schedule() {
    if (pending || state.paused) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; render(); });
  }

  function visible() {
    const out = [];
    for (let i = state.reqs.length - 1; i >= 0; i--) {
      const r = state.reqs[i];
      if (!state.classes.has(statusClass(r.status)) && statusClass(r.status) !== '0') continue;
      const route = r.route === null ? '' : r.route;
      if (state.route !== '*' && route !== state.route) continue;
      if (state.path && !r.path.includes(state.path)) continue;
      out.push(r);
    }
    return out;
  }

  // Draws one bar: `scale` ns per 100 %; positions relative to the first byte.
  function bar(r, scale, big) {
    const b = el('div', big ? 'bar bigbar' : 'bar');
    const t = r.stamps;
    const t0 = t.first_byte;
    const pct = (ns) => Math.min(100, Math.max(0, (ns / scale) * 100));
    for (const s of SEGMENTS) {
      const from = t[s.from], to = stageEnd(r, s);
      if (!from || !to || to < from) continue;
      if (to === from && s.key === 'parse') continue; // a head that came in one read
      const seg = el('div', 'seg seg-' + s.key);
      const left = pct(from - t0);
      seg.style.left = left + '%';
      seg.style.width = (pct(to - t0) - left) + '%';
      seg.title = s.name + ': ' + dur(to - from);
      b.appendChild(seg);
    }
    for (const f of r.flushes || []) {
      if (f - t0 > scale) break;
      const k = el('div', 'tick');
      k.style.left = pct(f - t0) + '%';
      k.title = 'flush at +' + dur(f - t0);
      b.appendChild(k);
    }
    if (spanOf(r) > scale) {
      const o = el('div', 'more', '»');
      o.title = 'continues: ' + dur(spanOf(r)) + ' in all';
      b.appendChild(o);
    } else if (!t.written) {
      const c = el('div', 'cut');
      c.style.left = 'calc(' + pct(endOf(r) - t0) + '% - 2px)';
      c.title = 'not written: the connection ended first';
      b.appendChild(c);
    }
    return b;
  }

  function axis(scale, step) {
    const a = $('axis');
    a.textContent = '';
    if (state.scale === 'fit') {
      a.appendChild(el('span', null, '0'));
      for (const p of [25, 50, 75]) {
        const s = el('span', null, p + '%');
        s.style.left = p + '%';
        a.appendChild(s);
      }
      a.title = 'each bar spans its own request, first byte to last';
      return;
    }
    a.title = 'time since each request\'s first byte';
    for (let v = 0; v <= scale + step / 1e6; v += step) {
      const s = el('span', null, v === 0 ? '0' : short(v));
      s.style.left = (v / scale) * 100 + '%';
      a.appendChild(s);
    }
  }

  function routeOptions() {
    for (const r of state.reqs) state.routes.add(r.route === null ? '' : r.route);
    const sel = $('route-filter');
    const have = new Set(Array.from(sel.options).map((o) => o.value));
    const add = Array.from(state.routes).filter((r) => !have.has(r)).sort();
    for (const r of add) {
      const o = el('option', null, r === '' ? '(no route: 404, 405, …)' : r);
      o.value = r;
      sel.appendChild(o);
    }
  }

  function render() {
    routeOptions();
    const rows = visible();
    let scale = 1, step = 1;
    if (state.scale === 'shared') {
      // A stream can last minutes: it would flatten every other bar, so the axis fits
      // the answers that are not streamed (when there are some) and longer bars are cut
      // at the edge, their total in the total column.
      const plain = rows.filter((r) => !r.streamed);
      const max = Math.max(1000, ...(plain.length ? plain : rows).map(spanOf));
      step = niceStep(max, 5);
      scale = Math.ceil(max / step) * step;
    }
    axis(scale, step);
    const body = $('rows');
    const frag = document.createDocumentFragment();
    for (const r of rows) {
      const tr = el('tr', 'req s' + statusClass(r.status));
      tr.dataset.ev = r.ev;
      tr.dataset.conn = r.conn;
      if (r.ev === state.selected) tr.classList.add('selected');
      tr.appendChild(el('td', 'time', clock(r.wall_ms)));
      tr.appendChild(el('td', 'conn', '#' + r.conn));
      tr.appendChild(el('td', 'seq', r.seq));
      tr.appendChild(el('td', 'method', r.method));
      const p = el('td', 'path', r.path);
      p.title = r.path;
      tr.appendChild(p);
      const rt = el('td', r.route === null ? 'route none' : 'route', r.route === null ? 'none' : r.route);
      tr.appendChild(rt);
      const st = el('td', 'status');
      st.appendChild(el('span', 'badge s' + statusClass(r.status), r.status || '—'));
      tr.appendChild(st);
      tr.appendChild(el('td', 'total num', dur(spanOf(r))));
      const cell = el('td', 'bar-cell');
      cell.appendChild(bar(r, state.scale === 'fit' ? Math.max(1, spanOf(r)) : scale, false));
      tr.appendChild(cell);
      frag.appendChild(tr);
    }
    body.textContent = '';
    body.appendChild(frag);
    $('empty').hidden = rows.length > 0;
    $('count').textContent = rows.length === state.reqs.length
      ? state.reqs.length + ' request' + (state.reqs.length === 1 ? '' : 's') + ' (keeps ' + state.capacity + ')'
      : rows.length + ' of ' + state.reqs.length + ' requests shown';
    if (state.selected !== null) detail();
  }

  // ---- the detail panel -------------------------------------------------------------

  function find(ev) {
    return state.reqs.find((r) => r.ev === ev) || null;
  }

  function section(parent, title) {
    parent.appendChild(el('h3', null, title));
  }

  function detail() {
    const box = $('detail');
    const r = find(state.selected);
    if (!r) { box.hidden = true; state.selected = null; return; }
    box.hidden = false;
    box.textContent = '';
    const x = el('button', 'x', '×');
    x.type = 'button';
    x.title = 'close (Esc)';
    x.addEventListener('click', () => select(null));
    box.appendChild(x);

    const h = el('h2');
    h.appendChild(el('span', null, r.method + ' '));
    h.appendChild(el('span', 'mono', r.path + ' '));
    h.appendChild(el('span', 'badge s' + statusClass(r.status), r.status || '—'));
    box.appendChild(h);
    box.appendChild(el('p', 'meta',
      'route ' + (r.route === null ? '(none)' : r.route) + ' · connection #' + r.conn +
      ', request ' + r.seq + ' on it · from ' + r.peer + ' · ' + clock(r.wall_ms) +
      (r.streamed ? ' · streamed answer' : '')));

    // The request's own bar, fitted, with each stage's duration under it.
    box.appendChild(bar(r, Math.max(1, spanOf(r)), true));
    const cap = el('div', 'caption');
    for (const s of SEGMENTS) {
      const from = r.stamps[s.from], to = stageEnd(r, s);
      if (!from || !to || to < from) continue;
      const c = el('span');
      const sw = el('i', 'seg-' + s.key);
      c.appendChild(sw);
      c.appendChild(document.createTextNode(s.name + ' ' + dur(to - from)));
      cap.appendChild(c);
    }
    const tot = el('span', null, 'total ' + dur(spanOf(r)) + (r.stamps.written ? '' : ' (not written)'));
    cap.appendChild(tot);
    box.appendChild(cap);

    section(box, 'Stages');
    const t = el('table', 'stages');
    const hr = el('tr');
    for (const c of ['stage · stamped by', 'at (since start)', 'from first byte', 'step before it']) hr.appendChild(el('th', null, c));
    t.appendChild(hr);
    let prev = 0;
    for (const s of STAMPS) {
      const v = r.stamps[s.key];
      const tr = el('tr', v ? '' : 'missing');
      const name = el('td', 'stage');
      name.appendChild(el('b', null, s.name));
      name.appendChild(el('div', 'where', s.where));
      tr.appendChild(name);
      const missing = s.key === 'accepted' ? 'first request only' : 'not reached';
      tr.appendChild(el('td', 'num', v ? (v / 1e6).toFixed(6) + ' ms' : missing));
      tr.appendChild(el('td', 'num', v ? (v >= r.stamps.first_byte ? '+' : '−') + dur(Math.abs(v - r.stamps.first_byte)) : ''));
      tr.appendChild(el('td', 'step', v && prev && s.step ? s.step + ' ' + dur(v - prev) : ''));
      t.appendChild(tr);
      if (v) prev = v;
    }
    box.appendChild(t);
    if (r.streamed) {
      const ticks = (r.flushes || []).map((f) => '+' + dur(f - r.stamps.first_byte)).join(', ');
      box.appendChild(el('p', 'note', 'Streamed: ' + r.flush_count + ' write' + (r.flush_count === 1 ? '' : 's') +
        ' to the socket by the loop (src/conn/write.rs)' + (ticks ? ' at ' + ticks : '') +
        (r.flush_count > (r.flushes || []).length ? ' (the first ' + r.flushes.length + ' are stamped)' : '') + '.'));
    }
    const batch = state.reqs.filter((o) => o.conn === r.conn && o.ev !== r.ev && o.stamps.queued === r.stamps.queued);
    if (batch.length) {
      box.appendChild(el('p', 'note', 'Pipelined: queued in one batch with request' + (batch.length > 1 ? 's ' : ' ') +
        batch.map((o) => o.seq).join(', ') + ' of this connection: one job for a worker, which runs them one after the other (so each waits for the ones before it) and writes all the answers at once.'));
    }

    section(box, 'Connection #' + r.conn + ' (' + r.peer + ')');
    const ul = el('ul', 'conn');
    const same = state.reqs.filter((o) => o.conn === r.conn).sort((a, b) => a.seq - b.seq);
    for (const o of same) {
      const li = el('li', o.ev === r.ev ? 'current' : '');
      li.appendChild(el('span', 'mono', '#' + o.seq));
      li.appendChild(document.createTextNode(o.method + ' ' + o.path + ' → ' + (o.status || '—') + ' · ' + dur(spanOf(o)) +
        (o.ev === r.ev ? '  (this one)' : '')));
      if (o.ev !== r.ev) li.addEventListener('click', () => select(o.ev));
      ul.appendChild(li);
    }
    box.appendChild(ul);
    if (same.length && same[0].seq > 1) {
      box.appendChild(el('p', 'meta', 'Requests 1–' + (same[0].seq - 1) + ' are no longer in the history.'));
    }
    const c = state.closes.get(r.conn);
    const p = el('p', 'note closed-reason');
    if (c) {
      p.appendChild(document.createTextNode('Closed at ' + clock(c.wall_ms) + ' after ' + c.requests +
        ' request' + (c.requests === 1 ? '' : 's') + ': '));
      p.appendChild(el('b', null, c.reason));
      p.appendChild(document.createTextNode(' — ' + (CLOSE_REASONS[c.reason] || 'see src/conn/mod.rs (Close)') + '.'));
    } else {
      p.textContent = 'Still open (or its close is no longer in the history).';
    }
    box.appendChild(p);

    section(box, 'Request headers');
    const ht = el('table', 'headers');
    for (const [n, v] of r.headers) {
      const tr = el('tr');
      tr.appendChild(el('td', null, n));
      const td = el('td');
      td.appendChild(el('span', v === '[redacted]' ? 'redacted' : '', v));
      tr.appendChild(td);
      ht.appendChild(tr);
    }
    box.appendChild(ht);
    box.appendChild(el('p', 'meta', 'As the handler chain left them (middleware may add some, e.g. X-Request-ID). ' +
      'Bodies are never recorded; Authorization, Proxy-Authorization and Cookie values are redacted on the worker.'));
  }

  function select(ev) {
    state.selected = ev;
    for (const tr of document.querySelectorAll('tr.req')) {
      tr.classList.toggle('selected', Number(tr.dataset.ev) === ev);
    }
    if (ev === null) $('detail').hidden = true; else detail();
    history.replaceState(null, '', ev === null ? location.pathname + location.search : '#ev=' + ev);
  }

  // ---- controls ---------------------------------------------------------------------

  $('rows').addEventListener('click', (e) => {
    const tr = e.target.closest('tr.req');
    if (tr) select(Number(tr.dataset.ev));
  });
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape') select(null); });
  for (const b of document.querySelectorAll('#class-filter .chip')) {
    b.addEventListener('click', () => {
      const k = b.dataset.class;
      if (state.classes.has(k)) state.classes.delete(k); else state.classes.add(k);
      b.classList.toggle('on', state.classes.has(k));
      render();
    });
  }
  $('route-filter').addEventListener('change', (e) => { state.route = e.target.value; render(); });
  $('path-filter').addEventListener('input', (e) => { state.path = e.target.value; render(); });
  for (const [id, mode] of [['scale-shared', 'shared'], ['scale-fit', 'fit']]) {
    $(id).addEventListener('click', () => {
      state.scale = mode;
      $('scale-shared').classList.toggle('on', mode === 'shared');
      $('scale-fit').classList.toggle('on', mode === 'fit');
      render();
    });
  }
  $('pause').addEventListener('click', () => {
    state.paused = !state.paused;
    const b = $('pause');
    b.classList.toggle('on', state.paused);
    state.unseen = 0;
    b.textContent = state.paused ? 'Resume' : 'Pause';
    if (!state.paused) render();
  });
  setInterval(() => {
    if (state.paused) $('pause').textContent = 'Resume' + (state.unseen ? ' (' + state.unseen + ' new)' : '');
  }, 500);

  $('origin').textContent = location.origin;
  // A link to one request: #ev=N opens its detail once the history is in.
  const m = /^#ev=(\d+)$/.exec(location.hash);
  if (m) state.selected = Number(m[1]);
  resync();
  if (LIVE) {
    live('idle');
    connect();
  } else {
    live('snapshot');
    $('pause').hidden = true;
    $('live').title = 'a snapshot of the history: reload to refresh, or add ?live=1';
  }
})();
