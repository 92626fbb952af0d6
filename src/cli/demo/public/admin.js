/* global document, fetch, setInterval */
// The admin page: polls /api/overview and calls the small admin JSON API.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const time = (ms) => (ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '-');

  async function api(path, body) {
    const response = await fetch(path, {
      method: body === undefined ? 'GET' : 'POST',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
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

  $('purgeAll').addEventListener(
    'click',
    () => void act(async () => `purged ${(await api('/api/dead-letters/purge', { all: true })).purged}`),
  );
  void refresh();
  setInterval(() => void refresh(), 2000);
})();
