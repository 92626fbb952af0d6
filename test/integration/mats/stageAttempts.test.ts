import { expect } from 'chai';
import type { Knex } from 'knex';
import { dlqName } from '../../../src/mats/MatsWire.ts';
import { describeMats, RecordingLogger, Sink, SQL_ENVS, STANDARD_ENVS, waitFor } from './matsTestKit.ts';
import { SpyTransport } from './SpyTransport.ts';

/**
 * `knex` whose next transaction commit (once `loseNext()` returned true) really commits and then fails as a
 * connection dropped during COMMIT would: the caller cannot know the outcome.
 */
function losingCommitKnex(knex: Knex, loseNext: () => boolean): Knex {
  return new Proxy(knex, {
    get(target, prop, receiver) {
      if (prop !== 'transaction') return Reflect.get(target, prop, receiver) as unknown;
      return async (...args: unknown[]) => {
        if (args.length > 0) return (target.transaction as (...a: unknown[]) => unknown)(...args);
        const trx = await target.transaction();
        if (loseNext()) {
          const commit = trx.commit.bind(trx);
          trx.commit = (async (value?: unknown) => {
            await commit(value);
            throw Object.assign(new Error('Connection lost: The server closed the connection.'), {
              code: 'PROTOCOL_CONNECTION_LOST',
              fatal: true,
            });
          }) as unknown as typeof trx.commit;
        }
        return trx;
      };
    },
  });
}

function stageOutcome(lines: RecordingLogger, stageId: string, outcomes: readonly string[]) {
  return waitFor(
    () => lines.lines.find((l) => l.obj.stageId === stageId && outcomes.includes(String(l.obj.outcome))),
    `an outcome of ${stageId}`,
  );
}

describeMats(
  'Mats stage attempts: a lost COMMIT outcome (C)',
  (env) => {
    it('C: a COMMIT that succeeded but reported a dropped connection is a success, not a failed attempt', async () => {
      const e = env();
      let lose = false;
      const db = losingCommitKnex(e.db.knex, () => {
        const now = lose;
        lose = false;
        return now;
      });
      const lines = new RecordingLogger();
      // Outbox on, inbox off: the retry finds its own outbox rows (same ids) under the unique key.
      const f = e.createFactory('n', { db, outbox: true, logger: lines });
      const ep = e.uid('C.ep');
      const term = e.uid('C.term');
      const sink = new Sink<unknown>();
      let runs = 0;
      f.single(ep, (ctx) => {
        if (++runs === 1) lose = true;
        ctx.goTo(term, 'once');
        return undefined;
      });
      f.terminator(term, (_c, _s, m) => sink.push(m));
      expect(await f.waitForReceiving(10_000)).to.equal(true);
      await f.getDefaultInitiator().initiate((init) => init.traceId('C').from('t').to(ep).send(null));
      expect(await sink.first()).to.equal('once');
      const outcome = await stageOutcome(lines, ep, ['duplicate', 'dlq', 'ok']);
      expect(outcome.obj.outcome).to.equal('duplicate');
      expect(await e.broker.queueDepth(dlqName(e.prefix, ep))).to.equal(0);
    });
  },
  SQL_ENVS,
);

describeMats(
  'Mats stage attempts: publish failing after the commit, outbox off (D)',
  (env) => {
    it('D: is not a delivery attempt: published again with backoff, no dead letter, the lambda ran once', async () => {
      const e = env();
      const spy = new SpyTransport(e.createTransport('spy'));
      const lines = new RecordingLogger();
      const f = e.createFactory('n', { transport: spy, outbox: false, logger: lines });
      const ep = e.uid('D.ep');
      const term = e.uid('D.term');
      const sink = new Sink<unknown>();
      let runs = 0;
      f.single(ep, (ctx) => {
        // maxDeliveryAttempts is 2: three failed publishes would have dead-lettered it.
        if (++runs === 1) spy.failNextPublishes(3);
        ctx.goTo(term, 'after the alarm');
        return undefined;
      });
      f.terminator(term, (_c, _s, m) => sink.push(m));
      expect(await f.waitForReceiving(10_000)).to.equal(true);
      await f.getDefaultInitiator().initiate((init) => init.traceId('D').from('t').to(ep).send(null));
      expect(await sink.first()).to.equal('after the alarm');
      expect((await stageOutcome(lines, ep, ['ok', 'dlq', 'error'])).obj.outcome).to.equal('ok');
      expect(runs).to.equal(1);
      expect(spy.events.filter((ev) => ev.kind === 'reject')).to.have.length(0);
      expect(await e.broker.queueDepth(dlqName(e.prefix, ep))).to.equal(0);
    });
  },
  STANDARD_ENVS,
);
