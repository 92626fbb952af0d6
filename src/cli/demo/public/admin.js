/* global document, fetch, history, localStorage, location, setInterval, window */
// The admin page: polls /api/overview and calls the small admin JSON API with the admin token as a bearer token.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const time = (ms) => (ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '-');
  const TOKEN_KEY = 'matssocket-admin-token';

  // The start-up line prints the admin URL with `#token=...`: a fragment never reaches the server or a Referer.
  // Stored, then removed from the address bar so it does not end up in bookmarks or screenshots.
  function takeTokenFromUrl() {
    const fromUrl = /^#token=(.+)$/.exec(location.hash);
    if (!fromUrl) return false;
    localStorage.setItem(TOKEN_KEY, decodeURIComponent(fromUrl[1]));
    history.replaceState(null, '', location.pathname + location.search);
    return true;
  }
  takeTokenFromUrl();
  // Pasting the printed URL into an open admin tab changes only the fragment: no reload.
  window.addEventListener('hashchange', () => {
    if (takeTokenFromUrl()) void refresh();
  });

  async function api(path, body) {
    const token = localStorage.getItem(TOKEN_KEY) ?? '';
    const headers = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(path, {
      method: body === undefined ? 'GET' : 'POST',
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    $('tokenForm').hidden = response.status !== 401;
    const data = await response.json();
    if (!response.ok) throw new Error(`${response.status}: ${JSON.stringify(data)}`);
    return data;
  }

  function row(cells, actions = []) {
    const tr = document.createElement('tr');
    for (const cell of cells) {
      const td = document.createElement('td');
      td.textContent = String(cell);
      tr.append(td);
    }
    const td = document.createElement('td');
    for (const [label, handler] of actions) {
      const button = document.createElement('button');
      button.textContent = label;
      button.addEventListener('click', () => void act(handler));
      td.append(button);
    }
    tr.append(td);
    return tr;
  }

  async function act(handler) {
    try {
      $('status').textContent = (await handler()) ?? 'done';
    } catch (error) {
      $('status').textContent = `failed: ${error.message}`;
    }
    await refresh();
  }

  async function refresh() {
    let overview;
    try {
      overview = await api('/api/overview');
    } catch (error) {
      $('status').textContent = `cannot load the overview: ${error.message}`;
      return;
    }
    $('node').textContent = overview.node;
    $('sessionCount').textContent = overview.sessions.length;
    $('liveCount').textContent = overview.liveSessionsHere;
    $('sessions').replaceChildren(
      ...overview.sessions.map((s) =>
        row(
          [
            s.sessionId,
            s.userId,
            `${s.appName} ${s.appVersion}`,
            s.nodeName ?? '(away)',
            s.liveHere ? 'yes' : 'no',
            s.outboxDepth,
            time(s.createdTimestamp),
          ],
          [
            [
              'Close',
              async () => (await api(`/api/sessions/${s.sessionId}/close`, {}), `closed ${s.sessionId}`),
            ],
          ],
        ),
      ),
    );
    $('deadLetterCount').textContent = overview.deadLetters.length;
    $('deadLetters').replaceChildren(
      ...overview.deadLetters.map((d) =>
        row(
          [d.id, d.sessionId, d.type, d.traceId, d.reason, d.deliveryCount, time(d.deadLetteredTs)],
          [
            [
              'Inspect',
              async () => (
                ($('deadLetterDetail').textContent = JSON.stringify(
                  await api(`/api/dead-letters/${d.id}`),
                  null,
                  2,
                )),
                `inspected ${d.id}`
              ),
            ],
            [
              'Re-queue',
              async () => (await api(`/api/dead-letters/${d.id}/requeue`, {}), `re-queued ${d.id}`),
            ],
            ['Purge', async () => (await api('/api/dead-letters/purge', { ids: [d.id] }), `purged ${d.id}`)],
          ],
        ),
      ),
    );
    if ($('status').textContent === 'loading...') $('status').textContent = 'up to date';
  }

  $('tokenForm').addEventListener('submit', (event) => {
    event.preventDefault();
    localStorage.setItem(TOKEN_KEY, $('token').value.trim());
    $('token').value = '';
    void refresh();
  });
  $('purgeAll').addEventListener(
    'click',
    () => void act(async () => `purged ${(await api('/api/dead-letters/purge', { all: true })).purged}`),
  );
  void refresh();
  setInterval(() => void refresh(), 2000);
})();
