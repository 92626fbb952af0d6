/* global MatsSocket, document, location, window */
// The demo page: a MatsSocket client (the browser bundle, global `MatsSocket`) against this node.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/matssocket`;
  let client;
  let traceCounter = 0;
  // The reconnect demo: was the connection dropped (and the session resumed) while the slow request was pending?
  const slow = { pending: false, droppedWhilePending: false, resumedWhilePending: false };

  const traceId = (what) => `demo.${what}.${Date.now().toString(36)}.${++traceCounter}`;
  const json = (value) => JSON.stringify(value, null, 2);

  function log(text) {
    const li = document.createElement('li');
    li.textContent = `${new Date().toISOString().slice(11, 23)} ${text}`;
    $('log').prepend(li);
  }

  function setState(state) {
    $('state').textContent = state;
    $('state').dataset.state = state;
    $('sessionId').textContent = client?.sessionId ?? '-';
  }

  function setConnected(connected) {
    for (const id of ['echo', 'slow', 'drop', 'push', 'poison', 'chat', 'close']) $(id).disabled = !connected;
    $('connect').disabled = connected;
    $('user').disabled = connected;
  }

  function addItem(listId, text, max = 20) {
    const li = document.createElement('li');
    li.textContent = text;
    $(listId).prepend(li);
    while ($(listId).children.length > max) $(listId).lastChild.remove();
  }

  function connect() {
    const user = $('user').value.trim() || 'demo-user';
    client = new MatsSocket.MatsSocketClient({
      appName: 'MatsSocketDemo',
      appVersion: '1.0.0',
      urls: [wsUrl],
    });
    window.demoClient = client;
    client.setCurrentAuthorization(`DummyAuth:${user}:-1`);
    client.on('connection', (event) => {
      const extra = event.type === 'LOST_CONNECTION' ? ` (close ${event.code} ${event.reason})` : '';
      const resumed = event.type === 'SESSION_ESTABLISHED' && event.resumed ? ' (resumed)' : '';
      log(`connection: ${event.type}${extra}${resumed}`);
      if (event.type === 'SESSION_ESTABLISHED' && event.resumed && slow.droppedWhilePending) {
        slow.resumedWhilePending = true;
        $('slowStatus').textContent = 'pending - reconnected and resumed, waiting for the reply';
      }
      setState(client.state);
    });
    client.on('session:closed', (event) => {
      log(`session closed by the server: ${event.code} ${event.reason}`);
      setState(client.state);
    });
    client.on('subscription', (event) => log(`subscription ${event.topicId}: ${event.type}`));
    client.on('error', (event) => log(`client error: ${event.type}: ${event.message}`));
    client.terminator('Demo.push', (event) => {
      addItem('pushes', `${event.data.text} (from ${event.data.node})`);
      log(`server push received: ${event.data.text}`);
    });
    client.subscribe('Demo.ticker', (event) => {
      $('ticker').textContent = `tick ${event.data.tick} from ${event.data.node}`;
    });
    client.subscribe('Demo.chat', (event) =>
      addItem('chatMessages', `${event.data.from}: ${event.data.text}`),
    );
    setConnected(true);
    setState(client.state);
    log(`client created for ${wsUrl} as ${user}`);
  }

  async function closeSession() {
    await client.close('closed from the demo page');
    log('session closed');
    setConnected(false);
    setState('NOT CONNECTED');
    client = undefined;
  }

  async function echo() {
    $('echoResult').textContent = 'waiting...';
    try {
      const reply = await client.request('Demo.echo', traceId('echo'), { text: $('echoText').value });
      $('echoResult').textContent = json(reply.data);
      log(`reply to Demo.echo in ${Math.round(reply.roundTripMs ?? 0)} ms`);
    } catch (error) {
      $('echoResult').textContent = `failed: ${error.message}`;
    }
  }

  async function slowRequest() {
    Object.assign(slow, { pending: true, droppedWhilePending: false, resumedWhilePending: false });
    $('slowStatus').textContent = 'pending';
    $('slowResult').textContent = '';
    const delayMs = Number($('slowDelay').value) || 3000;
    try {
      const reply = await client.request('Demo.slow', traceId('slow'), { text: 'slow one', delayMs });
      $('slowStatus').textContent = slow.resumedWhilePending
        ? 'reply received after the reconnect'
        : 'reply received';
      $('slowResult').textContent = json(reply.data);
      log(`slow reply received${slow.resumedWhilePending ? ' after the reconnect' : ''}`);
    } catch (error) {
      $('slowStatus').textContent = `failed: ${error.message}`;
    } finally {
      slow.pending = false;
    }
  }

  function drop() {
    if (slow.pending) slow.droppedWhilePending = true;
    try {
      client.reconnect('Demo: connection dropped by the user');
      log('connection dropped by the user');
      if (slow.pending) $('slowStatus').textContent = 'pending - connection dropped';
    } catch (error) {
      log(`cannot drop: ${error.message}`);
    }
  }

  async function send(endpointId, message, what) {
    try {
      await client.send(endpointId, traceId(what), message);
      log(`${endpointId} acknowledged`);
    } catch (error) {
      log(`${endpointId} failed: ${error.message}`);
    }
  }

  $('connect').addEventListener('click', connect);
  $('close').addEventListener('click', () => void closeSession());
  $('echo').addEventListener('click', () => void echo());
  $('slow').addEventListener('click', () => void slowRequest());
  $('drop').addEventListener('click', drop);
  $('push').addEventListener('click', () => void send('Demo.pushMe', { count: 3 }, 'push'));
  $('poison').addEventListener('click', () => void send('Demo.poison', {}, 'poison'));
  $('chat').addEventListener('click', () => void send('Demo.publish', { text: $('chatText').value }, 'chat'));
  setConnected(false);
})();
