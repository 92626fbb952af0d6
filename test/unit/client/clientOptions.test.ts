import { expect } from 'chai';
import { WebSocket } from 'ws';
import { resolveClientOptions, type MatsSocketClientOptions } from '../../../src/client/clientOptions.ts';
import { randomId } from '../../../src/client/randomId.ts';
import { ConfigError } from '../../../src/errors.ts';

const base: MatsSocketClientOptions = {
  appName: 'App',
  appVersion: '1',
  urls: 'ws://a/matssocket',
  webSocket: WebSocket,
};

function rejectsField(options: Partial<MatsSocketClientOptions>, field: string): void {
  expect(() => resolveClientOptions({ ...base, ...options }))
    .to.throw(ConfigError)
    .with.property('field', field);
}

describe('resolveClientOptions()', () => {
  it("fills in the official client's defaults", () => {
    const resolved = resolveClientOptions(base);
    expect(resolved).to.deep.include({
      urls: ['ws://a/matssocket'],
      debug: 0,
      requestTimeoutMs: 45_000,
      pipelineDelayMs: 10,
      pipelineMaxDelayMs: 50,
      ackDelayMs: 20,
      ack2DelayMs: 50,
      ackBatchMaxPending: 10,
      initialPingDelayMinMs: 3000,
      initialPingDelayMaxMs: 7000,
      pingIntervalMs: 15_000,
      reconnectDelayMinMs: 250,
      reconnectDelayMaxMs: 1000,
      connectTimeoutBaseMs: 500,
      connectTimeoutMaxMs: 15_000,
      connectTimeoutMinMs: 5000,
      retryDelayBaseMs: 500,
      retryDelayJitterMs: 1000,
      maxSendAttempts: 10,
      maxConnectionAttempts: undefined,
    });
    expect(resolveClientOptions({ ...base, urls: ['ws://a', 'ws://b'] }).connectTimeoutMinMs).to.equal(500);
  });

  it('keeps the URL order when shuffleUrls is false, and shuffles a copy otherwise', () => {
    const urls = Array.from({ length: 20 }, (_, i) => `ws://h${i}/matssocket`);
    expect(resolveClientOptions({ ...base, urls, shuffleUrls: false }).urls).to.deep.equal(urls);
    const shuffled = resolveClientOptions({ ...base, urls }).urls;
    expect([...shuffled].sort()).to.deep.equal([...urls].sort());
  });

  it('names the invalid field', () => {
    rejectsField({ appName: '' }, 'appName');
    rejectsField({ appVersion: 'v'.repeat(256) }, 'appVersion');
    rejectsField({ urls: [] }, 'urls');
    rejectsField({ urls: ['http://a'] }, 'urls');
    rejectsField({ requestTimeoutMs: -1 }, 'requestTimeoutMs');
    rejectsField({ ackBatchMaxPending: 0 }, 'ackBatchMaxPending');
    rejectsField({ debug: 1.5 }, 'debug');
    rejectsField({ initialPingDelayMinMs: 10, initialPingDelayMaxMs: 5 }, 'initialPingDelayMaxMs');
    rejectsField({ reconnectDelayMinMs: 10, reconnectDelayMaxMs: 5 }, 'reconnectDelayMaxMs');
    rejectsField({ pipelineDelayMs: 20, pipelineMaxDelayMs: 10 }, 'pipelineMaxDelayMs');
    rejectsField({ connectBackoff: { jitter: 2 } }, 'connectBackoff.jitter');
    rejectsField({ maxSendAttempts: 0 }, 'maxSendAttempts');
  });

  it('needs a WebSocket constructor when there is no global one', () => {
    const { webSocket: _omitted, ...withoutWebSocket } = base;
    const global = globalThis as { WebSocket?: unknown };
    const saved = global.WebSocket;
    try {
      delete global.WebSocket;
      expect(() => resolveClientOptions(withoutWebSocket))
        .to.throw(ConfigError)
        .with.property('field', 'webSocket');
      global.WebSocket = WebSocket;
      expect(resolveClientOptions(withoutWebSocket).webSocket).to.equal(WebSocket);
    } finally {
      if (saved === undefined) delete global.WebSocket;
      else global.WebSocket = saved;
    }
  });
});

describe('randomId()', () => {
  it('makes alphanumeric ids of the given length from the Web Crypto API', () => {
    expect(randomId()).to.match(/^[A-Za-z0-9]{6}$/);
    const id = randomId(16);
    expect(id).to.match(/^[A-Za-z0-9]{16}$/);
    expect(randomId(16)).to.not.equal(id);
  });
});
