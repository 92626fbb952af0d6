/* global clearTimeout, document, fetch, history, localStorage, location, sessionStorage, setTimeout, URLSearchParams, window */
// The admin page (docs/operations.md §4): reads the admin API of the node that serves it, with the admin token as a
// bearer token. No framework and no CDN: plain DOM, charts drawn as SVG.
import { drawChart } from './adminCharts.js';
import { ago, badge, el, iso, num, showJsonText, td, when } from './adminDom.js';

const REFRESH_MS = 2000;
const PAGE = 25;
const TOKEN_KEY = 'matssocket-admin-token';
const $ = (id) => document.getElementById(id);

const state = {
  windowMs: 300_000,
  samples: [],
  capacity: 600,
  historyOff: false,
  sessions: { q: '', cursors: [undefined], page: 0, next: null, key: '', renderedAt: 0 },
  deadLetters: { cursors: [undefined], page: 0, next: null, key: '', renderedAt: 0 },
  selected: undefined,
  armed: { key: undefined, until: 0 },
  timer: undefined,
  searchTimer: undefined,
};

function say(text, failed = false) {
  const status = $('status');
  status.textContent = text;
  status.classList.toggle('failed', failed);
  clearTimeout(say.timer);
  say.timer = setTimeout(() => (status.textContent = ''), 4000);
}

/**
 * A button that asks for a second click (within 4 s) before it acts. The armed state lives in `state`, so the
 * table re-rendering under it does not disarm it.
 */
function confirmButton(key, label, action, cls = 'danger') {
  const armed = state.armed.key === key && Date.now() < state.armed.until;
  const b = el(
    'button',
    { type: 'button', class: `${cls}${armed ? ' armed' : ''}` },
    armed ? 'Confirm?' : label,
  );
  b.addEventListener('click', (event) => {
    event.stopPropagation();
    if (state.armed.key === key && Date.now() < state.armed.until) {
      state.armed = { key: undefined, until: 0 };
      void act(action);
      return;
    }
    state.armed = { key, until: Date.now() + 4000 };
    b.textContent = 'Confirm?';
    b.classList.add('armed');
    setTimeout(() => {
      if (state.armed.key !== key || Date.now() < state.armed.until) return;
      b.textContent = label;
      b.classList.remove('armed');
    }, 4100);
  });
  return b;
}

// ---- the admin API ----------------------------------------------------------------------------------------

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// The node prints the admin URL with `#token=...`: a fragment never reaches a server or a Referer. Kept in this
// tab (sessionStorage) and taken out of the address bar, so it ends up in no bookmark or screenshot.
function takeTokenFromUrl() {
  const match = /^#token=(.+)$/.exec(location.hash);
  if (!match) return false;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
  history.replaceState(null, '', location.pathname + location.search);
  return true;
}

async function api(path, body) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) throw new HttpError(401, 'no admin token');
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, {
    method: body === undefined ? 'GET' : 'POST',
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new HttpError(response.status, data.error ?? `HTTP ${response.status}`);
  return data;
}

async function act(action) {
  try {
    say(await action());
  } catch (error) {
    if (error.status === 401) return signedOut('The admin token was not accepted.');
    say(`failed: ${error.message}`, true);
  }
  await Promise.allSettled([loadSessions(true), loadDeadLetters(true)]);
}

// ---- sign in and out --------------------------------------------------------------------------------------

function signedOut(message = '') {
  clearTimeout(state.timer);
  state.timer = undefined;
  $('app').hidden = true;
  $('signOut').hidden = true;
  $('where').hidden = true;
  $('login').hidden = false;
  $('loginError').textContent = message;
  $('pulse').className = 'pulse';
  $('token').focus();
}

function signedIn() {
  $('login').hidden = true;
  $('app').hidden = false;
  $('signOut').hidden = false;
  $('where').hidden = false;
  $('loginError').textContent = '';
}

// ---- nodes ------------------------------------------------------------------------------------------------

async function loadNodes() {
  const data = await api('/api/nodes');
  $('node').textContent = data.node;
  document.title = `MatsSocket admin · ${data.node}`;
  $('nodeCount').textContent = `(${data.nodes.filter((n) => n.alive).length} alive of ${data.nodes.length})`;
  $('nodesHint').textContent =
    `${data.liveSessionsHere} sessions live here · ${data.connections} connections`;
  $('nodes').replaceChildren(
    ...(data.nodes.length === 0
      ? [el('tr', { class: 'empty' }, el('td', { colspan: 5 }, 'No node has registered yet.'))]
      : data.nodes.map((n) =>
          el(
            'tr',
            {},
            td(
              'Node',
              el(
                'span',
                {},
                el('span', { class: 'id' }, n.nodeName),
                ' ',
                n.thisNode ? badge('this node', 'here') : undefined,
              ),
            ),
            td(
              'State',
              n.startedTs === null
                ? badge('no node row', 'warn')
                : n.alive
                  ? badge('alive', 'ok')
                  : badge('dead', 'bad'),
            ),
            td('Sessions', String(n.sessions), 'num'),
            td('Last liveliness', when(n.livelinessTs)),
            td('Started', when(n.startedTs)),
          ),
        )),
  );
}

// ---- sessions ---------------------------------------------------------------------------------------------

function pagerLabel(pager, page, rows, total) {
  const from = rows === 0 ? 0 : page * PAGE + 1;
  pager.querySelector('[data-page="label"]').textContent =
    total === 0 ? 'none' : `${from}–${page * PAGE + rows} of ${total}`;
}

async function loadSessions(force = false) {
  const s = state.sessions;
  const params = new URLSearchParams({ limit: String(PAGE) });
  if (s.q) params.set('q', s.q);
  if (s.cursors[s.page]) params.set('after', s.cursors[s.page]);
  const data = await api(`/api/sessions?${params}`);
  if (data.sessions.length === 0 && s.page > 0) {
    s.page--;
    return loadSessions(force);
  }
  s.next = data.next;
  $('sessionTotal').textContent = `(${data.total})`;
  const pager = $('sessionPager');
  pager.querySelector('[data-page="prev"]').disabled = s.page === 0;
  pager.querySelector('[data-page="next"]').disabled = !data.next;
  pagerLabel(pager, s.page, data.sessions.length, data.total);
  const key = JSON.stringify(data.sessions) + state.armed.key;
  if (!force && key === s.key && Date.now() - s.renderedAt < 10_000) return;
  s.key = key;
  s.renderedAt = Date.now();
  $('sessions').replaceChildren(
    ...(data.sessions.length === 0
      ? [
          el(
            'tr',
            { class: 'empty' },
            el('td', { colspan: 7 }, s.q ? `No session or user id starts with "${s.q}".` : 'No sessions.'),
          ),
        ]
      : data.sessions.map((x) =>
          el(
            'tr',
            {},
            td(
              'Session',
              el(
                'span',
                {},
                el('span', { class: 'id' }, x.sessionId),
                ' ',
                x.liveHere ? badge('live here', 'here') : undefined,
              ),
            ),
            td('User', el('span', { class: 'id' }, x.userId)),
            td('App', el('span', {}, `${x.appName} `, el('span', { class: 'sub' }, x.appVersion))),
            td('Node', x.nodeName ? el('span', { class: 'id' }, x.nodeName) : badge('away')),
            td('Outbox', String(x.outboxDepth), 'num'),
            td('Last liveliness', when(x.livelinessTimestamp)),
            td(
              '',
              confirmButton(`close:${x.sessionId}`, 'Close', async () => {
                await api(`/api/sessions/${encodeURIComponent(x.sessionId)}/close`, {});
                return `closed ${x.sessionId}`;
              }),
              'actions',
            ),
          ),
        )),
  );
}

// ---- dead letters -----------------------------------------------------------------------------------------

const REASONS = {
  client_nack: ['NACKed by the client', 'warn'],
  delivery_limit: ['delivery limit reached', 'bad'],
  undeliverable: ['undeliverable', 'bad'],
};
const reasonBadge = (reason) => badge(reason, (REASONS[reason] ?? [])[1]);

async function loadDeadLetters(force = false) {
  const d = state.deadLetters;
  const params = new URLSearchParams({ limit: String(PAGE) });
  if (d.cursors[d.page]) params.set('before', d.cursors[d.page]);
  const data = await api(`/api/dead-letters?${params}`);
  if (data.deadLetters.length === 0 && d.page > 0) {
    d.page--;
    return loadDeadLetters(force);
  }
  d.next = data.next;
  $('deadLetterTotal').textContent = `(${data.total})`;
  $('purgeAll').replaceWith(purgeAllButton(data.total));
  const pager = $('deadLetterPager');
  pager.querySelector('[data-page="prev"]').disabled = d.page === 0;
  pager.querySelector('[data-page="next"]').disabled = !data.next;
  pagerLabel(pager, d.page, data.deadLetters.length, data.total);
  const key = JSON.stringify(data.deadLetters) + state.selected;
  if (!force && key === d.key && Date.now() - d.renderedAt < 10_000) return;
  d.key = key;
  d.renderedAt = Date.now();
  $('deadLetters').replaceChildren(
    ...(data.deadLetters.length === 0
      ? [el('tr', { class: 'empty' }, el('td', { colspan: 7 }, 'No dead letters.'))]
      : data.deadLetters.map((x) => {
          const row = el(
            'tr',
            { class: `clickable${x.id === state.selected ? ' selected' : ''}`, 'data-id': x.id },
            td('Id', String(x.id), 'num'),
            td('Dead-lettered', when(x.deadLetteredTs)),
            td('Reason', reasonBadge(x.reason)),
            td('Type', x.type),
            td(
              'Session',
              el(
                'span',
                {},
                el('span', { class: 'id' }, x.sessionId),
                el('span', { class: 'sub' }, x.userId ?? ''),
              ),
            ),
            td('Deliveries', String(x.deliveryCount), 'num'),
            td('', el('button', { type: 'button', class: 'ghost' }, 'Details'), 'actions'),
          );
          row.addEventListener('click', () => void showDeadLetter(x.id));
          return row;
        })),
  );
}

function purgeAllButton(total) {
  const b = confirmButton('purge:all', 'Purge all', async () => {
    const { purged } = await api('/api/dead-letters/purge', { all: true });
    closeDetail();
    return `purged ${purged} dead letters`;
  });
  b.id = 'purgeAll';
  b.disabled = total === 0;
  return b;
}

async function showDeadLetter(id) {
  let d;
  try {
    d = await api(`/api/dead-letters/${id}`);
  } catch (error) {
    say(`cannot load dead letter ${id}: ${error.message}`, true);
    return;
  }
  state.selected = id;
  $('dlId').textContent = `#${d.id}`;
  const [reasonText] = REASONS[d.reason] ?? [d.reason];
  const fields = [
    ['Reason', el('span', {}, reasonBadge(d.reason), ` ${reasonText}`)],
    ['Description', d.description ?? '-'],
    ['Type', d.type],
    ['Trace id', el('span', { class: 'id' }, d.traceId)],
    ['Session', el('span', { class: 'id' }, d.sessionId)],
    ['User', d.userId ?? '-'],
    ['Server message id', el('span', { class: 'id' }, d.smid)],
    ['Client message id', d.cmid ?? '-'],
    ['Deliveries', String(d.deliveryCount)],
    ['Stored', `${iso(d.originalStoredTs)} (${ago(d.originalStoredTs)})`],
    [
      'Last attempt',
      d.lastAttemptTs === null
        ? 'never written to a client'
        : `${iso(d.lastAttemptTs)} (${ago(d.lastAttemptTs)})`,
    ],
    ['Dead-lettered', `${iso(d.deadLetteredTs)} (${ago(d.deadLetteredTs)}) by ${d.deadLetteredByNode}`],
  ];
  $('dlFields').replaceChildren(...fields.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  showJsonText($('dlEnvelope'), d.envelope, '(none)');
  const binary = d.messageBinary
    ? `binary, ${Math.floor((d.messageBinary.length * 3) / 4)} bytes (base64):\n${d.messageBinary}`
    : '(no message)';
  showJsonText($('dlMessage'), d.messageText, binary);
  $('deadLetterDetail').hidden = false;
  for (const row of $('deadLetters').querySelectorAll('tr[data-id]')) {
    row.classList.toggle('selected', row.dataset.id === String(id));
  }
  $('deadLetterDetail').scrollIntoView({ block: 'nearest', behavior: 'smooth' });
}

function closeDetail() {
  state.selected = undefined;
  $('deadLetterDetail').hidden = true;
  for (const row of $('deadLetters').querySelectorAll('tr.selected')) row.classList.remove('selected');
}

// ---- charts -----------------------------------------------------------------------------------------------

async function loadHistory() {
  if (state.historyOff) return;
  const last = state.samples.at(-1);
  let data;
  try {
    data = await api(`/api/metrics/history${last ? `?since=${last.t}` : ''}`);
  } catch (error) {
    if (error.status !== 404) throw error;
    state.historyOff = true;
    $('charts').hidden = true;
    $('chartsOff').hidden = false;
    return;
  }
  state.capacity = data.capacity;
  state.samples.push(...data.samples);
  if (state.samples.length > state.capacity) state.samples.splice(0, state.samples.length - state.capacity);
  renderCharts();
}

function legend(figure, values) {
  values.forEach((v, i) => (figure.querySelector(`[data-now="${i}"]`).textContent = v));
}

function renderCharts() {
  if (state.historyOff || $('app').hidden) return;
  const s = state.samples;
  const times = s.map((x) => x.t);
  const css = window.getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim();
  const latest = s.at(-1);
  const inWindow = s.filter((x) => x.t > (latest?.t ?? 0) - state.windowMs);
  const charts = [
    [
      'chartMessages',
      [
        { values: s.map((x) => x.messagesIn), color: color('--s1'), area: true },
        { values: s.map((x) => x.messagesOut), color: color('--s2') },
      ],
      [num(latest?.messagesIn), num(latest?.messagesOut)],
    ],
    [
      'chartLatency',
      [
        { values: s.map((x) => x.roundTripMeanMs), color: color('--s3'), area: true },
        { values: s.map((x) => x.roundTripP95Ms), color: color('--s4'), dashed: true },
      ],
      [num(lastOf(s, 'roundTripMeanMs')), num(lastOf(s, 'roundTripP95Ms'))],
    ],
    [
      'chartOutbox',
      [{ values: s.map((x) => x.outboxDepth), color: color('--s5'), area: true }],
      [num(latest?.outboxDepth)],
    ],
    [
      'chartDead',
      [{ values: s.map((x) => x.deadLettered), color: color('--s6') }],
      [num(inWindow.reduce((a, x) => a + x.deadLettered, 0))],
    ],
  ];
  for (const [id, series, now] of charts) {
    const figure = $(id);
    drawChart(figure.querySelector('svg'), times, series, state.windowMs, { bars: id === 'chartDead' });
    legend(figure, now);
  }
}

/** The newest non-null value of a field within the last 10 samples (round trips exist only when replies flow). */
function lastOf(samples, field) {
  for (let i = samples.length - 1; i >= Math.max(0, samples.length - 10); i--) {
    if (samples[i][field] !== null) return samples[i][field];
  }
  return null;
}

// ---- the refresh loop -------------------------------------------------------------------------------------

async function refresh() {
  clearTimeout(state.timer);
  if (!sessionStorage.getItem(TOKEN_KEY)) return signedOut();
  const results = await Promise.allSettled([loadNodes(), loadHistory(), loadSessions(), loadDeadLetters()]);
  const failures = results.filter((r) => r.status === 'rejected').map((r) => r.reason);
  if (failures.some((e) => e.status === 401)) {
    sessionStorage.removeItem(TOKEN_KEY);
    return signedOut('The admin token was not accepted.');
  }
  if (failures.some((e) => e.status === 403)) {
    return signedOut('This host name is not allowed for the admin API (see allowedHosts).');
  }
  signedIn();
  renderCharts();
  const pulse = $('pulse');
  pulse.className = failures.length === 0 ? 'pulse ok' : 'pulse bad';
  pulse.title =
    failures.length === 0
      ? `updated ${new Date().toLocaleTimeString()}`
      : `last refresh failed: ${failures.map((e) => e.message).join('; ')}`;
  if (!document.hidden) state.timer = setTimeout(() => void refresh(), REFRESH_MS);
}

// ---- wiring -----------------------------------------------------------------------------------------------

$('loginForm').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
  $('token').value = '';
  void refresh();
});
$('signOut').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  signedOut('Signed out.');
});
$('sessionSearch').addEventListener('input', () => {
  clearTimeout(state.searchTimer);
  state.searchTimer = setTimeout(() => {
    Object.assign(state.sessions, { q: $('sessionSearch').value.trim(), cursors: [undefined], page: 0 });
    void loadSessions(true).catch((error) => say(`search failed: ${error.message}`, true));
  }, 250);
});
for (const [pagerId, list, load] of [
  ['sessionPager', state.sessions, loadSessions],
  ['deadLetterPager', state.deadLetters, loadDeadLetters],
]) {
  const pager = $(pagerId);
  pager.querySelector('[data-page="next"]').addEventListener('click', () => {
    if (!list.next) return;
    list.cursors[list.page + 1] = list.next;
    list.page++;
    void load(true);
  });
  pager.querySelector('[data-page="prev"]').addEventListener('click', () => {
    if (list.page === 0) return;
    list.page--;
    void load(true);
  });
}
$('dlClose').addEventListener('click', closeDetail);
$('dlRequeue').addEventListener('click', () => {
  const id = state.selected;
  if (id === undefined) return;
  void act(async () => {
    await api(`/api/dead-letters/${id}/requeue`, {});
    closeDetail();
    return `re-queued ${id}`;
  });
});
$('dlPurge').addEventListener('click', () => {
  const id = state.selected;
  if (id === undefined) return;
  void act(async () => {
    await api('/api/dead-letters/purge', { ids: [id] });
    closeDetail();
    return `purged ${id}`;
  });
});
for (const b of $('windowPicker').querySelectorAll('button')) {
  b.addEventListener('click', () => {
    state.windowMs = Number(b.dataset.window);
    for (const other of $('windowPicker').querySelectorAll('button')) {
      other.setAttribute('aria-pressed', String(other === b));
    }
    renderCharts();
  });
}
window.addEventListener('resize', () => renderCharts());
// A hidden tab polls nothing; it catches up when shown again.
document.addEventListener('visibilitychange', () => {
  if (!document.hidden && sessionStorage.getItem(TOKEN_KEY)) void refresh();
});
// Pasting the printed URL into an open admin tab changes only the fragment: no reload.
window.addEventListener('hashchange', () => {
  if (takeTokenFromUrl()) void refresh();
});
// Earlier versions of this page kept the token in localStorage, where it outlived the tab: remove it.
localStorage.removeItem(TOKEN_KEY);
takeTokenFromUrl();
void refresh();
