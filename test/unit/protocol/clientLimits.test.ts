import { expect } from 'chai';
import { ConfigError, ProtocolError } from '../../../src/errors.ts';
import type { MatsFactory } from '../../../src/mats/MatsFactory.ts';
import { jsonDepthExceeds } from '../../../src/protocol/messageDepth.ts';
import {
  defaultClientFrameLimits,
  parseClientFrame,
  type ClientFrameLimits,
} from '../../../src/protocol/parseClientFrame.ts';
import type { C2SAck, C2SRequest, C2SSend } from '../../../src/protocol/envelopes.ts';
import {
  resolveServerOptions,
  type MatsSocketServerOptions,
} from '../../../src/server/MatsSocketServerOptions.ts';
import type { ClusterStoreAndForward } from '../../../src/store/ClusterStoreAndForward.ts';

const small: ClientFrameLimits = {
  maxEnvelopesPerFrame: 3,
  maxIdsPerEnvelope: 4,
  maxIdsPerFrame: 6,
  maxServerMessageIdLength: 8,
  maxClientTimeoutMs: 60_000,
  maxDescriptionLength: 5,
};

/** Parses with `limits`, collecting the names of the limits that tripped. */
function parse(frame: unknown[], limits = small): { envelopes: unknown[]; tripped: string[] } {
  const tripped: string[] = [];
  const envelopes = parseClientFrame(JSON.stringify(frame), limits, (l) => tripped.push(l));
  return { envelopes, tripped };
}

/** Expects a 4004 violation that names `limit` to the listener. */
function violates(frame: unknown[], limit: keyof ClientFrameLimits, limits = small): void {
  const tripped: string[] = [];
  expect(() => parseClientFrame(JSON.stringify(frame), limits, (l) => tripped.push(l)))
    .to.throw(ProtocolError)
    .with.property('closeCode', 4004);
  expect(tripped).to.deep.equal([limit]);
}

const ids = (n: number, prefix = 's'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe('parseClientFrame() client limits', () => {
  describe('numbers that reach the broker or the store', () => {
    it('clamps a REQUEST `to` of 2^53-1 (a broker TTL RabbitMQ refuses) to maxClientTimeoutMs', () => {
      const { envelopes, tripped } = parse([
        { t: 'REQUEST', eid: 'e', tid: 't', cmid: 1, to: Number.MAX_SAFE_INTEGER },
      ]);
      expect((envelopes[0] as C2SRequest).to).to.equal(60_000);
      expect(tripped).to.deep.equal(['maxClientTimeoutMs']);
    });

    it('clamps `to: 1e308` with the default limit to 24 h', () => {
      const [request] = parseClientFrame(
        '[{"t":"REQUEST","eid":"e","tid":"t","cmid":1,"to":1e308}]',
      ) as C2SRequest[];
      expect(request!.to).to.equal(24 * 3600_000);
      expect(request!.to! + 15_000).to.be.below(2 ** 32);
    });

    it('keeps a `to` within the limit as it is', () => {
      const { envelopes, tripped } = parse([{ t: 'REQUEST', eid: 'e', tid: 't', cmid: 1, to: 45_000 }]);
      expect((envelopes[0] as C2SRequest).to).to.equal(45_000);
      expect(tripped).to.deep.equal([]);
    });

    it('keeps only the defined debug bits of a huge `rd`', () => {
      const { envelopes } = parse([
        { t: 'SEND', eid: 'e', tid: 't', cmid: 1, rd: Number.MAX_SAFE_INTEGER },
        { t: 'REQUEST', eid: 'e', tid: 't', cmid: 2, rd: 2 ** 40 + 3 },
      ]);
      expect((envelopes[0] as C2SSend).rd).to.equal(255);
      expect((envelopes[1] as C2SRequest).rd).to.equal(3);
    });
  });

  describe('counts per frame and per envelope', () => {
    it('closes 4004 on more envelopes than maxEnvelopesPerFrame', () => {
      violates(
        ids(4).map((x) => ({ t: 'PING', x })),
        'maxEnvelopesPerFrame',
      );
      expect(parse(ids(3).map((x) => ({ t: 'PING', x }))).envelopes).to.have.length(3);
    });

    it('closes 4004 on more ids in one envelope than maxIdsPerEnvelope', () => {
      violates([{ t: 'NACK', ids: ids(5) }], 'maxIdsPerEnvelope');
      violates([{ t: 'ACK2', ids: ids(5) }], 'maxIdsPerEnvelope');
    });

    it('closes 4004 on more ids in one frame than maxIdsPerFrame', () => {
      violates(
        [
          { t: 'ACK', ids: ids(4, 'a') },
          { t: 'NACK', ids: ids(3, 'n') },
        ],
        'maxIdsPerFrame',
      );
      expect(
        parse([
          { t: 'ACK', ids: ids(4, 'a') },
          { t: 'ACK2', ids: ids(2, 'c') },
        ]).tripped,
      ).to.deep.equal([]);
    });

    it('defaults to 10000 envelopes per frame: a frame of 20000 SENDs is refused', () => {
      const frame = ids(20_000).map((cmid) => ({ t: 'SEND', eid: 'e', tid: 't', cmid }));
      expect(() => parseClientFrame(JSON.stringify(frame))).to.throw(ProtocolError, /more than 10000/);
    });

    it('defaults to 5000 ids per envelope: a NACK of 30000 ids is refused', () => {
      const frame = [{ t: 'NACK', ids: ids(30_000) }];
      expect(() => parseClientFrame(JSON.stringify(frame))).to.throw(ProtocolError, /more than 5000 ids/);
      expect(defaultClientFrameLimits.maxIdsPerFrame).to.equal(10_000);
    });
  });

  describe('string lengths', () => {
    it('closes 4004 on a smid longer than any the server makes (ACK, NACK ids, RESOLVE, SUB)', () => {
      const long = 'x'.repeat(9);
      violates([{ t: 'ACK', smid: long }], 'maxServerMessageIdLength');
      violates([{ t: 'NACK', ids: ['ok', long] }], 'maxServerMessageIdLength');
      violates([{ t: 'RESOLVE', smid: long, cmid: 1, tid: 't' }], 'maxServerMessageIdLength');
      violates([{ t: 'SUB', eid: 'topic', smid: long }], 'maxServerMessageIdLength');
      expect(parse([{ t: 'ACK', smid: 'x'.repeat(8) }]).tripped).to.deep.equal([]);
    });

    it('truncates an ACK/NACK desc to maxDescriptionLength characters (code points)', () => {
      const { envelopes, tripped } = parse([{ t: 'NACK', smid: 's', desc: '😀😀😀😀😀😀😀' }]);
      expect((envelopes[0] as C2SAck).desc).to.equal('😀😀😀😀😀');
      expect(tripped).to.deep.equal(['maxDescriptionLength']);
    });
  });
});

describe('jsonDepthExceeds()', () => {
  const nested = (depth: number): unknown => {
    let v: unknown = 1;
    for (let i = 0; i < depth; i++) v = i % 2 === 0 ? [v] : { a: v };
    return v;
  };

  it('counts arrays and objects, not scalars', () => {
    expect(jsonDepthExceeds(1, 0)).to.equal(false);
    expect(jsonDepthExceeds(null, 0)).to.equal(false);
    expect(jsonDepthExceeds([], 0)).to.equal(true);
    expect(jsonDepthExceeds(nested(3), 3)).to.equal(false);
    expect(jsonDepthExceeds(nested(4), 3)).to.equal(true);
  });

  it('finds the deep branch beside shallow ones', () => {
    expect(jsonDepthExceeds({ a: 1, b: [1, 2], c: { d: nested(5) } }, 6)).to.equal(true);
    expect(jsonDepthExceeds({ a: 1, b: [1, 2], c: { d: nested(4) } }, 6)).to.equal(false);
  });

  it('walks 100000 levels (which JSON.stringify cannot) without overflowing the stack', () => {
    const deep = JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`) as unknown;
    expect(() => JSON.stringify(deep)).to.throw(RangeError);
    expect(jsonDepthExceeds(deep, 1000)).to.equal(true);
  });
});

describe('resolveServerOptions() client input limits', () => {
  const base = (limits: NonNullable<MatsSocketServerOptions['limits']> = {}): MatsSocketServerOptions => ({
    nodeName: 'node1',
    matsFactory: {} as MatsFactory,
    store: { options: { nodeName: 'node1' } } as ClusterStoreAndForward,
    authenticationPlugin: () => ({
      initialAuthentication: (ctx) => ctx.invalidAuthentication('no'),
      reevaluateAuthentication: (ctx) => ctx.invalidAuthentication('no'),
    }),
    limits,
  });

  it('defaults match the parser defaults', () => {
    expect(resolveServerOptions(base()).limits).to.include({
      ...defaultClientFrameLimits,
      maxTraceIdLength: 1024,
      maxMessageDepth: 1000,
      maxInFlightPerConnection: 64,
      maxInFlightPerNode: 2048,
      maxAckIdsInFlightPerConnection: 10_000,
      maxQueuedInboundBytes: 64 * 1024 * 1024,
    });
  });

  it('refuses a maxClientTimeoutMs whose TTL (+15 s) RabbitMQ would refuse, and zero counts', () => {
    expect(() => resolveServerOptions(base({ maxClientTimeoutMs: 2 ** 32 }))).to.throw(
      ConfigError,
      /maxClientTimeoutMs/,
    );
    expect(resolveServerOptions(base({ maxClientTimeoutMs: 2 ** 32 - 1 - 15_000 })).limits).to.include({
      maxClientTimeoutMs: 4_294_952_295,
    });
    expect(() => resolveServerOptions(base({ maxInFlightPerConnection: 0 }))).to.throw(ConfigError);
  });
});
