// skiff's web view (docs/queue.md, "The web view"). Read-only: it calls
// the GET endpoints of docs/protocol.md with the session cookie that
// POST /ui/login set, and renders every string from a job with
// textContent, never as markup.
'use strict';

(function () {
  const POLL_MS = 2000;
  const LOG_WAIT_S = 25;
  const MAX_LINES = 20000;
  const PAGE = 50;
  const STATES = ['queued', 'leased', 'running', 'succeeded', 'failed',
    'canceled', 'timed_out', 'rejected', 'expired', 'lost'];
  const ENDED = new Set(STATES.slice(3));

  const main = document.getElementById('main');
  const loginBox = document.getElementById('login');
  let view = 0;        // bumped on every navigation: older loops stop
  let timer = null;
  let aborter = null;

  // ---- small helpers ----

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = String(v);
      else e.setAttribute(k, String(v));
    }
    for (const k of kids) {
      if (k === null || k === undefined) continue;
      e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return e;
  }

  function fmtTime(t) {
    if (t === null || t === undefined) return '';
    const d = new Date(t * 1000);
    return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  }

  function ago(t) {
    if (!t) return '';
    const s = Math.max(0, Math.round(Date.now() / 1000 - t));
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    return Math.floor(s / 3600) + ' h ago';
  }

  function dur(s) {
    if (s === null || s === undefined || s < 0) return '';
    if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s';
    return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  }

  function secs(v) {
    if (v === null || v === undefined) return '–';
    return v < 1 ? Math.round(v * 1000) + ' ms' : dur(v);
  }

  function jobDuration(j) {
    const start = j.leased || null;
    if (!start) return null;
    const end = j.completed || Date.now() / 1000;
    return end - start;
  }

  function stateTag(s) {
    return el('span', { class: 'state ' + s, text: s });
  }

  function jobLink(id, text) {
    return el('a', { href: '#/job/' + encodeURIComponent(id), text: text || id });
  }

  function live(ok) {
    document.getElementById('live').classList.toggle('stale', !ok);
  }

  class Unauthorized extends Error {}

  async function api(path, opts) {
    const r = await fetch(path, Object.assign({
      credentials: 'same-origin', cache: 'no-store',
      signal: aborter ? aborter.signal : undefined,
    }, opts || {}));
    if (r.status === 401) throw new Unauthorized();
    if (!r.ok) {
      let msg = r.status + '';
      try { msg += ': ' + (await r.json()).message; } catch (e) { /* no body */ }
      throw new Error(msg);
    }
    return r;
  }

  async function json(path) {
    return (await api(path)).json();
  }

  // ---- login ----

  function showLogin() {
    main.replaceChildren();
    loginBox.hidden = false;
    document.getElementById('logout').hidden = true;
    document.getElementById('token').focus();
  }

  document.getElementById('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const input = document.getElementById('token');
    const err = document.getElementById('login-error');
    err.textContent = '';
    try {
      // The token goes in a header, never a URL; the answer sets an
      // HttpOnly cookie and the token is dropped from the page.
      const r = await fetch('/ui/login', { method: 'POST',
        credentials: 'same-origin',
        headers: { 'Authorization': 'Bearer ' + input.value.trim() } });
      if (!r.ok) {
        let msg = 'the queue refused the token (' + r.status + ')';
        try { msg = (await r.json()).message; } catch (e) { /* none */ }
        err.textContent = msg;
        return;
      }
      input.value = '';
      loginBox.hidden = true;
      route();
    } catch (e) {
      err.textContent = String(e.message || e);
    }
  });

  document.getElementById('logout').addEventListener('click', async () => {
    await fetch('/ui/logout', { method: 'POST', credentials: 'same-origin' });
    showLogin();
  });

  // ---- the loop of a page: render, then again every POLL_MS ----

  // fn answers false when there is nothing more to poll for.
  function every(v, fn) {
    const tick = async () => {
      if (v !== view) return;
      try {
        if (await fn() === false) return;
        live(true);
      } catch (e) {
        if (v !== view) return;
        if (e instanceof Unauthorized) { showLogin(); return; }
        if (e.name !== 'AbortError') live(false);
      }
      if (v === view) timer = setTimeout(tick, POLL_MS);
    };
    tick();
  }

  // ---- pools ----

  function pagePools(v) {
    const body = el('tbody');
    main.replaceChildren(el('h1', { text: 'Pools' }),
      el('table', { id: 'pools' },
        el('thead', {}, el('tr', {},
          el('th', { text: 'Pool' }), el('th', { class: 'num', text: 'Queued' }),
          el('th', { class: 'num', text: 'Running' }),
          el('th', { class: 'num', text: 'Agents busy' }),
          el('th', { class: 'num', text: 'Agents idle' }),
          el('th', { class: 'num', text: 'Polls held' }),
          el('th', { class: 'num', text: 'Pickup p50' }),
          el('th', { class: 'num', text: 'Pickup p90' }),
          el('th', { class: 'num', text: 'Completed' }))),
        body),
      el('p', { class: 'muted', text: 'Pickup: from submit (or requeue) to ' +
        'the lease, since this queue started; p50 and p90 are bucket bounds ' +
        'of skiff_pickup_seconds.' }));
    every(v, async () => {
      const d = await json('/v1/pools');
      const pools = d.pools.sort((a, b) => a.pool < b.pool ? -1 : 1);
      body.replaceChildren(...pools.map((p) => el('tr', { 'data-pool': p.pool },
        el('td', { class: 'name' }, el('a', {
          href: '#/jobs?pool=' + encodeURIComponent(p.pool), text: p.pool })),
        el('td', { class: 'num queued', text: p.queued }),
        el('td', { class: 'num leased', text: p.leased }),
        el('td', { class: 'num busy', text: p.agents_busy }),
        el('td', { class: 'num idle', text: p.agents_idle }),
        el('td', { class: 'num', text: p.lease_waiters }),
        el('td', { class: 'num', text: secs(p.pickup_seconds.p50) }),
        el('td', { class: 'num', text: secs(p.pickup_seconds.p90) }),
        el('td', { class: 'num', text: p.completed }))));
      if (!pools.length)
        body.replaceChildren(el('tr', {}, el('td', { colspan: 9, class: 'muted',
          text: 'No pool yet: none has a job, an agent or a token.' })));
    });
  }

  // ---- agents ----

  function pageAgents(v) {
    const body = el('tbody');
    main.replaceChildren(el('h1', { text: 'Agents' }),
      el('table', { id: 'agents' },
        el('thead', {}, el('tr', {}, ...['Name', 'Pool', 'Labels', 'Capacity',
          'State', 'Version', 'Last seen', 'Running'].map((t) =>
          el('th', { text: t })))),
        body));
    every(v, async () => {
      const d = await json('/v1/agents');
      body.replaceChildren(...d.agents.map((a) => el('tr', { 'data-agent': a.id },
        el('td', { class: 'name', title: a.id, text: a.name }),
        el('td', { class: 'name', text: a.pool }),
        el('td', { class: 'name', text: (a.labels || []).join(', ') }),
        el('td', { class: 'num', text: a.capacity }),
        el('td', {}, stateTag(a.state)),
        el('td', { text: a.version }),
        el('td', { title: fmtTime(a.last_seen), text: ago(a.last_seen) }),
        el('td', {}, ...(a.jobs || []).map((j) => jobLink(j))))));
      if (!d.agents.length)
        body.replaceChildren(el('tr', {}, el('td', { colspan: 8, class: 'muted',
          text: 'No agent has registered.' })));
    });
  }

  // ---- jobs ----

  function pageJobs(v, params) {
    const q = { pool: params.get('pool') || '', state: params.get('state') || '',
      name: params.get('name') || '',
      page: Math.max(0, parseInt(params.get('page') || '0', 10) || 0) };
    const pool = el('input', { name: 'pool', value: q.pool, placeholder: 'any' });
    const state = el('select', { name: 'state' }, el('option', { value: '', text: 'any' }),
      ...STATES.map((s) => el('option', { value: s, text: s, selected: s === q.state })));
    const name = el('input', { name: 'name', value: q.name, placeholder: 'part of the name' });
    const form = el('form', { class: 'filters' },
      el('label', {}, 'Pool', pool), el('label', {}, 'State', state),
      el('label', {}, 'Name', name), el('button', { type: 'submit', text: 'Filter' }));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      location.hash = '#/jobs?' + new URLSearchParams({ pool: pool.value.trim(),
        state: state.value, name: name.value, page: '0' }).toString();
    });
    const body = el('tbody');
    const pager = el('div', { class: 'pager' });
    main.replaceChildren(el('h1', { text: 'Jobs' }), form,
      el('table', { id: 'jobs' },
        el('thead', {}, el('tr', {}, ...['Name', 'Pool', 'State', 'Attempt',
          'Agent', 'Queued', 'Started', 'Ended', 'Duration'].map((t) =>
          el('th', { text: t })))),
        body), pager);
    const go = (page) => '#/jobs?' + new URLSearchParams({ pool: q.pool,
      state: q.state, name: q.name, page: String(page) }).toString();
    every(v, async () => {
      const sp = new URLSearchParams({ limit: String(PAGE + 1),
        offset: String(q.page * PAGE) });
      if (q.pool) sp.set('pool', q.pool);
      if (q.state) sp.set('state', q.state);
      if (q.name) sp.set('name', q.name);
      const d = await json('/v1/jobs?' + sp.toString());
      const more = d.jobs.length > PAGE;
      body.replaceChildren(...d.jobs.slice(0, PAGE).map((j) => el('tr', { 'data-job': j.id },
        el('td', { class: 'name' }, jobLink(j.id, j.name)),
        el('td', { class: 'name', text: j.pool }),
        el('td', {}, stateTag(j.state)),
        el('td', { class: 'num', text: j.attempt + '/' + j.max_attempts }),
        el('td', { class: 'name', text: j.agent || '' }),
        el('td', { text: fmtTime(j.created) }),
        el('td', { text: fmtTime(j.leased) }),
        el('td', { text: fmtTime(j.completed) }),
        el('td', { class: 'num', text: dur(jobDuration(j)) }))));
      if (!d.jobs.length)
        body.replaceChildren(el('tr', {}, el('td', { colspan: 9, class: 'muted',
          text: 'No job matches.' })));
      pager.replaceChildren(
        q.page > 0 ? el('a', { href: go(q.page - 1), text: '← newer' }) : el('span'),
        el('span', { class: 'muted', text: 'page ' + (q.page + 1) }),
        more ? el('a', { href: go(q.page + 1), text: 'older →' }) : el('span'));
    });
  }

  // ---- a job ----

  // SGR colour codes into classes; every other escape sequence is dropped.
  function ansi(text, into) {
    const re = /\x1b\[([0-9;]*)([A-Za-z])/g;
    let cls = new Set(), last = 0, m;
    const put = (s) => {
      if (!s) return;
      if (!cls.size) { into.append(document.createTextNode(s)); return; }
      into.append(el('span', { class: [...cls].join(' '), text: s }));
    };
    while ((m = re.exec(text)) !== null) {
      put(text.slice(last, m.index));
      last = re.lastIndex;
      if (m[2] !== 'm') continue;
      for (const c of (m[1] === '' ? ['0'] : m[1].split(';'))) {
        const n = parseInt(c, 10);
        if (n === 0) cls = new Set();
        else if (n === 1) cls.add('a-bold');
        else if (n === 2) cls.add('a-dim');
        else if (n === 3) cls.add('a-italic');
        else if (n === 4) cls.add('a-under');
        else if ((n >= 30 && n <= 37) || (n >= 90 && n <= 97)) {
          cls = new Set([...cls].filter((k) => !k.startsWith('a-fg')));
          cls.add('a-fg' + n);
        } else if (n >= 40 && n <= 47) {
          cls = new Set([...cls].filter((k) => !k.startsWith('a-bg')));
          cls.add('a-bg' + n);
        } else if (n === 39) cls = new Set([...cls].filter((k) => !k.startsWith('a-fg')));
        else if (n === 49) cls = new Set([...cls].filter((k) => !k.startsWith('a-bg')));
      }
    }
    put(text.slice(last).replace(/\x1b/g, ''));
  }

  // docs/protocol.md section 10: "<ts> <tag> <data>", skf step records.
  const STEP_START = /^step (\d+)\/(\d+) '(.*)' started (?:in image (.*)|on the host)$/;
  const STEP_END = /^step (\d+)\/(\d+) '(.*)' exited with (-?\d+) after ([0-9.]+)s$/;
  const STEP_COE = /^step (\d+)\/(\d+) '(.*)' failed; continue_on_error is set$/;

  function pageJob(v, id) {
    const facts = el('dl', { class: 'facts', id: 'facts' });
    const title = el('h1', { id: 'job-name' });
    const stepsBody = el('tbody');
    const arts = el('tbody');
    const outs = el('tbody');
    const logBox = el('div', { class: 'log', id: 'log', 'aria-live': 'off' });
    const raw = el('a', { id: 'raw', href: '/v1/jobs/' + encodeURIComponent(id) + '/log',
      download: id + '.log', text: 'raw log' });
    const logNote = el('span', { class: 'muted', id: 'log-state' });
    main.replaceChildren(title, facts,
      el('h2', { text: 'Steps' }),
      el('table', { class: 'steps', id: 'steps' },
        el('thead', {}, el('tr', {}, ...['#', 'Step', 'Runs in', 'Duration', 'Exit code',
          'Continue on error'].map((t) => el('th', { text: t })))), stepsBody),
      el('h2', { text: 'Artifacts' }),
      el('table', { id: 'artifacts' }, el('thead', {}, el('tr', {},
        ...['Name', 'Size', 'SHA-256'].map((t) => el('th', { text: t })))), arts),
      el('h2', { text: 'Outputs' }),
      el('table', { id: 'outputs' }, el('thead', {}, el('tr', {},
        ...['Name', 'Value'].map((t) => el('th', { text: t })))), outs),
      el('h2', {}, 'Log ', raw, ' ', logNote), logBox);

    const steps = [];           // index i-1: {name, where, secs, code, failedOn}
    let planned = [];           // GET .../steps: what the job says it runs
    let nsteps = 0;
    let job = null;
    let lines = 0;
    const open = {};            // stream -> element of a record cut with '+'

    function renderSteps() {
      const rows = [];
      const n = Math.max(nsteps, steps.length, planned.length);
      for (let i = 0; i < n; i++) {
        const p = planned[i] || {};
        const s = Object.assign({}, steps[i] || {});
        if (s.where === undefined && p.name !== undefined)
          s.where = p.image === null ? 'host' : p.image;
        const code = s.code === undefined ? '' : String(s.code);
        const rowState = s.code === undefined ? (s.name === undefined ? 'pending' : 'running') : 'done';
        rows.push(el('tr', { class: rowState, 'data-step': i + 1 },
          el('td', { class: 'idx', text: (i + 1) + '/' + n }),
          el('td', { class: 'name', text: s.name !== undefined ? s.name :
            p.name !== undefined ? p.name : '(not started)' }),
          el('td', { class: 'name', text: s.where || '' }),
          el('td', { class: 'num', text: s.secs === undefined ? (rowState === 'running' ? 'running' : '') : dur(s.secs) }),
          el('td', { class: 'num exit', text: code }),
          el('td', { class: 'coe', text: s.failedOn ? 'yes (failed, went on)' :
            p.continue_on_error ? 'yes' : '' })));
      }
      if (!rows.length)
        rows.push(el('tr', {}, el('td', { colspan: 6, class: 'muted',
          text: 'No step has started yet.' })));
      stepsBody.replaceChildren(...rows);
    }

    function onSkf(data) {
      let m;
      if ((m = STEP_START.exec(data))) {
        const i = +m[1] - 1;
        nsteps = +m[2];
        steps[i] = Object.assign(steps[i] || {}, { name: m[3],
          where: m[4] !== undefined ? m[4] : 'host' });
        return 'step-start';
      }
      if ((m = STEP_END.exec(data))) {
        const i = +m[1] - 1;
        nsteps = +m[2];
        steps[i] = Object.assign(steps[i] || { name: m[3] },
          { code: +m[4], secs: parseFloat(m[5]) });
        return 'step-end';
      }
      if ((m = STEP_COE.exec(data))) {
        const i = +m[1] - 1;
        steps[i] = Object.assign(steps[i] || { name: m[3] }, { failedOn: true });
      }
      return '';
    }

    function addRecord(line) {
      const sp1 = line.indexOf(' '), sp2 = line.indexOf(' ', sp1 + 1);
      if (sp1 < 0 || sp2 < 0) return;
      const ts = line.slice(0, sp1), tag = line.slice(sp1 + 1, sp2);
      const data = line.slice(sp2 + 1);
      const stream = tag.replace(/\+$/, '');
      const cut = tag.endsWith('+');
      if (open[stream]) {       // continues a record cut short
        ansi(data, open[stream]);
        if (!cut) delete open[stream];
        return;
      }
      const rec = el('div', { class: 'rec ' + stream });
      rec.append(el('span', { class: 'ts', text: ts.slice(11, 23) }));
      if (stream === 'skf') {
        const kind = onSkf(data);
        if (kind) rec.classList.add(kind);
        rec.append(document.createTextNode(data));
      } else {
        ansi(data, rec);
      }
      if (cut) open[stream] = rec;
      logBox.append(rec);
      if (++lines > MAX_LINES) {
        logBox.firstChild.remove();
        if (!logBox.querySelector('.note'))
          logBox.prepend(el('div', { class: 'note', text: 'Earlier lines: see the raw log.' }));
      }
    }

    function renderJob(j) {
      title.textContent = j.name;
      const f = [['Id', j.id], ['Pool', j.pool], ['State', stateTag(j.state)],
        ['Attempt', j.attempt + ' of ' + j.max_attempts], ['Agent', j.agent || ''],
        ['Queued', fmtTime(j.created)], ['Started', fmtTime(j.leased)],
        ['Ended', fmtTime(j.completed)], ['Duration', dur(jobDuration(j))],
        ['Exit codes', (j.exit_codes || []).join(', ')],
        ['Result', j.result ? j.result + (j.reason ? ': ' + j.reason : '') : '']];
      if (j.cancel_requested) f.push(['Cancel', j.cancel_reason || 'requested']);
      facts.replaceChildren(...f.flatMap(([k, val]) => [el('dt', { text: k }),
        el('dd', { 'data-fact': k.toLowerCase() }, val)]));
      // The job's output variables (protocol.md 4.6), as text only.
      const o = j.outputs && typeof j.outputs === 'object' ? Object.entries(j.outputs) : [];
      outs.replaceChildren(...o.map(([k, val]) => el('tr', { 'data-output': k },
        el('td', { class: 'name', text: k }),
        el('td', { class: 'name value', text: String(val) }))));
      if (!o.length)
        outs.replaceChildren(el('tr', {}, el('td', { colspan: 2, class: 'muted',
          text: ENDED.has(j.state) ? 'None.' : 'None yet.' })));
    }

    async function loadArtifacts() {
      const d = await json('/v1/jobs/' + encodeURIComponent(id) + '/artifacts');
      arts.replaceChildren(...d.artifacts.map((a) => el('tr', {},
        el('td', { class: 'name' }, el('a', {
          href: '/v1/jobs/' + encodeURIComponent(id) + '/artifacts/' +
            a.name.split('/').map(encodeURIComponent).join('/') +
            '?attempt=' + d.attempt,
          download: a.name.split('/').pop(), text: a.name })),
        el('td', { class: 'num', title: a.size + ' bytes', text: size(a.size) }),
        el('td', { class: 'name sha', text: a.sha256 }))));
      if (!d.artifacts.length)
        arts.replaceChildren(el('tr', {}, el('td', { colspan: 3, class: 'muted',
          text: job && ENDED.has(job.state) ? 'None.' : 'None yet.' })));
    }

    // The log, followed as skiffctl logs --follow does (protocol.md 5.3).
    async function follow() {
      let offset = 0, attempt = 0, pending = new Uint8Array(0);
      const dec = new TextDecoder('utf-8');
      for (let round = 0; v === view && round < 1e6; round++) {
        const sp = new URLSearchParams({ offset: String(offset), wait: String(LOG_WAIT_S) });
        if (attempt) sp.set('attempt', String(attempt));
        let r;
        try {
          r = await api('/v1/jobs/' + encodeURIComponent(id) + '/log?' + sp.toString());
        } catch (e) {
          if (v !== view) return;
          if (e instanceof Unauthorized) { showLogin(); return; }
          live(false);
          await new Promise((res) => setTimeout(res, POLL_MS));
          continue;
        }
        const got = new Uint8Array(await r.arrayBuffer());
        const att = parseInt(r.headers.get('Skiff-Log-Attempt') || '0', 10);
        const complete = r.headers.get('Skiff-Log-Complete') === '1';
        if (attempt && att !== attempt) { offset = 0; }
        attempt = att;
        offset += got.length;
        const all = new Uint8Array(pending.length + got.length);
        all.set(pending); all.set(got, pending.length);
        const cut = all.lastIndexOf(10);
        if (cut >= 0) {
          for (const line of dec.decode(all.subarray(0, cut)).split('\n')) addRecord(line);
          pending = all.slice(cut + 1);
        } else {
          pending = all;
        }
        renderSteps();
        logNote.textContent = complete ? '(attempt ' + att + ', complete)' :
          '(attempt ' + att + ', following)';
        if (complete && got.length === 0) {
          if (job && job.attempt > att) { attempt = att + 1; offset = 0; continue; }
          return;
        }
      }
    }

    // Status and artifacts every POLL_MS until the job has ended and its
    // log is complete: then one last round, and no more requests.
    let logDone = false;
    renderSteps();
    json('/v1/jobs/' + encodeURIComponent(id) + '/steps').then((d) => {
      if (v !== view) return;
      planned = d.steps;
      renderSteps();
    }).catch(() => { /* the log's skf records still fill the timeline */ });
    every(v, async () => {
      const over = logDone && job && ENDED.has(job.state);
      job = await json('/v1/jobs/' + encodeURIComponent(id));
      renderJob(job);
      await loadArtifacts();
      return over ? false : true;
    });
    follow().then(() => { logDone = true; });
  }

  function size(n) {
    if (n < 1024) return n + ' B';
    const u = ['KiB', 'MiB', 'GiB', 'TiB'];
    let i = -1;
    do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
    return n.toFixed(1) + ' ' + u[i];
  }

  // ---- routing (the part of the URL after '#') ----

  function route() {
    view++;
    if (timer) clearTimeout(timer);
    timer = null;
    if (aborter) aborter.abort();
    aborter = new AbortController();
    loginBox.hidden = true;
    document.getElementById('logout').hidden = false;
    const h = location.hash.replace(/^#/, '') || '/pools';
    const [path, qs] = h.split('?');
    const params = new URLSearchParams(qs || '');
    for (const a of document.querySelectorAll('header nav a'))
      a.classList.toggle('on', h.startsWith(a.getAttribute('href').slice(1)));
    const v = view;
    if (path === '/agents') pageAgents(v);
    else if (path === '/jobs') pageJobs(v, params);
    else if (path.startsWith('/job/')) pageJob(v, decodeURIComponent(path.slice(5)));
    else pagePools(v);
  }

  window.addEventListener('hashchange', route);
  route();
}());
