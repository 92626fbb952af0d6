import { performance } from 'node:perf_hooks';
import type { Knex } from 'knex';
import { TransactionScript } from '../store/TransactionScript.ts';
import type { OutgoingMessage } from '../broker/Transport.ts';
import { silentLogger, type Logger } from '../logging.ts';
import { currentAmbientContext, runOutsideStageContext } from './ambientContext.ts';
import { InitiateBuilder } from './InitiateBuilder.ts';
import { LazyTransaction } from './LazyTransaction.ts';
import { ConfigError } from '../errors.ts';
import { MatsBackendError, MatsIllegalCallError, MatsMessageSendError } from './MatsErrors.ts';
import type { MatsInitiate } from './MatsInitiate.ts';
import type { MatsRuntime } from './MatsRuntime.ts';
import { OutgoingCollector } from './OutgoingCollector.ts';
import { StageContextImpl } from './StageContextImpl.ts';

/** Options of one `initiate` call. */
export interface InitiateOptions {
  /**
   * Join this caller-owned knex transaction: the messages are written to `mats_outbox` in it (regardless of the
   * initiator's outbox setting) and published after the caller commits (see {@link MatsInitiator.initiate}).
   * Needs the factory's db. @default none (the initiation commits on its own)
   */
  trx?: Knex.Transaction;
}

/** Options of an initiator. */
export interface MatsInitiatorOptions {
  /** Write the messages to `mats_outbox` before publishing (then a publish failure is never seen by the caller). @default the factory's `outbox` */
  outbox?: boolean;
}

/**
 * Starts flows (`docs/mats-semantics.md` 1.4). Get the default one with `factory.getDefaultInitiator()` (which joins the
 * ambient stage transaction when used inside a stage) or a named one with `factory.getOrCreateInitiator(name)`
 * (which never joins: it commits and sends on its own, once per stage attempt).
 */
export interface MatsInitiator {
  readonly name: string;
  /**
   * Runs `fn`, then sends every message it produced together, or none.
   *
   * - Outside a stage: begins a DB transaction if `fn` uses `init.sql()` or the outbox is on; commits; publishes
   *   with confirms. Errors: what `fn` throws propagates unchanged (nothing was committed); a DB failure gives
   *   {@link MatsBackendError} (nothing committed); a publish failure after the commit, with the outbox off, gives
   *   {@link MatsMessageSendError}. With the outbox on, a publish failure is logged and the sweeper sends later.
   * - Default initiator inside a stage: the messages join the stage's outgoing messages (sent only if the stage
   *   commits); `init.sql()` is the stage's transaction.
   * - With `{ trx }`: the messages are inserted into `mats_outbox` in `trx`, and nothing is published yet. When the
   *   caller's outermost transaction settles (knex's `executionPromise`), the rows it committed are published
   *   and then deleted, together with those of every other initiation joined to the
   *   same transaction. If that publish fails, the sweeper publishes them after `outboxSweepMinAgeMs`. Passing
   *   the ambient stage's own transaction joins the stage instead.
   *
   * If `fn` produced no messages, no broker work is done. Resolves with the produced matsMessageIds.
   */
  initiate(fn: (init: MatsInitiate) => unknown, options?: InitiateOptions): Promise<string[]>;
  /**
   * Several initiations joined to the caller's transaction `trx`, as `initiate(fn, { trx })` for each of `fns`
   * (each with its own flags, traceId and properties), but with **one** `mats_outbox` insert for all: what a group
   * commit of many callers' work needs. Never joins an ambient stage. Resolves with each initiation's
   * matsMessageIds, in order. What a `fn` throws propagates unchanged; a DB failure gives
   * {@link MatsBackendError}; either way the caller's transaction should roll back.
   */
  initiateJoinedMany(
    fns: ReadonlyArray<(init: MatsInitiate) => unknown>,
    trx: Knex.Transaction | TransactionScript,
  ): Promise<string[][]>;
}

/** Metric label sets of one initiatorId: without and with each outcome. */
interface InitiatorLabels {
  readonly base: Readonly<Record<string, string>>;
  readonly ok: Readonly<Record<string, string>>;
  readonly error: Readonly<Record<string, string>>;
}

/** @internal */
export class MatsInitiatorImpl implements MatsInitiator {
  readonly name: string;
  readonly #runtime: MatsRuntime;
  readonly #joinsStage: boolean;
  readonly #outbox: boolean;
  readonly #logger: Logger;
  readonly #labelCache = new Map<string, InitiatorLabels>();
  /** False with the default silent logger: the completion line is then not even built. */
  readonly #logEnabled: boolean;

  constructor(runtime: MatsRuntime, name: string, joinsStage: boolean, options: MatsInitiatorOptions = {}) {
    this.name = name;
    this.#runtime = runtime;
    this.#joinsStage = joinsStage;
    this.#outbox = options.outbox ?? runtime.options.outbox;
    if (this.#outbox && !runtime.store)
      throw new ConfigError('outbox', `initiator '${name}': the outbox needs the factory db`);
    this.#logger = runtime.logger.child({ initiator: name });
    this.#logEnabled = runtime.options.logger !== silentLogger;
  }

  initiate(fn: (init: MatsInitiate) => unknown, options: InitiateOptions = {}): Promise<string[]> {
    const ambient = currentAmbientContext();
    if (ambient instanceof StageContextImpl) {
      const join = options.trx === undefined ? this.#joinsStage : ambient.ownsTransaction(options.trx);
      if (join) return ambient.initiateJoined(fn);
    }
    if (options.trx !== undefined) return this.initiateJoinedMany([fn], options.trx).then((ids) => ids[0]!);
    return this.#standalone(fn);
  }

  async initiateJoinedMany(
    fns: ReadonlyArray<(init: MatsInitiate) => unknown>,
    trx: Knex.Transaction | TransactionScript,
  ): Promise<string[][]> {
    const runtime = this.#runtime;
    if (!runtime.store) {
      throw new MatsIllegalCallError(
        'initiate({ trx }) and initiateJoinedMany need the factory db (the messages go to mats_outbox)',
      );
    }
    const ids: string[][] = [];
    const rows: { message: OutgoingMessage; matsMessageId: string; causeMessageId: undefined }[] = [];
    const finished: { fields: Record<string, unknown>; t0: number; initiatorId: string }[] = [];
    for (const fn of fns) {
      const t0 = performance.now();
      const collector = new OutgoingCollector(undefined);
      const builder = new InitiateBuilder(
        runtime,
        collector,
        undefined,
        () => (trx instanceof TransactionScript ? trx.knex() : Promise.resolve(trx)),
        this.#logger,
      );
      try {
        const result = runOutsideStageContext(() => fn(builder));
        if (result instanceof Promise) await result;
      } finally {
        builder.close();
      }
      const pending = collector.messages;
      const mids = pending.map((p) => p.matsMessageId);
      const initiatorId = pending[0]?.initiatorId ?? this.name;
      ids.push(mids);
      if (pending.length === 0) continue;
      try {
        const finalized = runtime.finalize(pending, 0);
        const outgoing = finalized instanceof Promise ? await finalized : finalized;
        outgoing.forEach((message, i) =>
          rows.push({ message, matsMessageId: mids[i]!, causeMessageId: undefined }),
        );
      } catch (err) {
        this.#finish({ initiatorId }, 'error', t0, initiatorId, 'Mats initiation failed; nothing sent', err);
        throw new MatsBackendError(`Initiation by '${initiatorId}' failed; nothing was committed or sent`, {
          cause: err,
        });
      }
      const fields = {
        userLambdaMs: performance.now() - t0,
        initiatorId,
        traceId: pending[0]?.traceId,
        matsMessageIdsOut: mids,
      };
      finished.push({ fields, t0, initiatorId });
    }
    if (rows.length > 0) {
      try {
        await runtime.store.insertOutbox(trx, rows);
      } catch (err) {
        for (const f of finished) {
          this.#finish(f.fields, 'error', f.t0, f.initiatorId, 'Mats initiation failed; nothing sent', err);
        }
        throw new MatsBackendError(`Initiations by '${this.name}' failed; nothing was committed or sent`, {
          cause: err,
        });
      }
      runtime.outbox!.afterCallerCommit(trx, rows);
    }
    for (const f of finished) {
      this.#finish(f.fields, 'ok', f.t0, f.initiatorId, 'Mats initiation joined the caller transaction');
    }
    return ids;
  }

  async #standalone(fn: (init: MatsInitiate) => unknown): Promise<string[]> {
    const runtime = this.#runtime;
    const t0 = performance.now();
    const collector = new OutgoingCollector(undefined);
    const tx = new LazyTransaction(runtime.options.db);
    const builder = new InitiateBuilder(runtime, collector, undefined, () => tx.get(), this.#logger);
    const fields: Record<string, unknown> = {};
    try {
      // Outside the ambient stage: code in `fn` must not join a stage this (named) initiator runs inside of.
      const result = runOutsideStageContext(() => fn(builder));
      if (result instanceof Promise) await result;
    } catch (err) {
      await tx.rollback();
      throw err;
    } finally {
      builder.close();
    }
    fields.userLambdaMs = performance.now() - t0;
    const pending = collector.messages;
    const mids = pending.map((p) => p.matsMessageId);
    const initiatorId = pending[0]?.initiatorId ?? this.name;
    Object.assign(fields, { initiatorId, traceId: pending[0]?.traceId, matsMessageIdsOut: mids });
    if (pending.length === 0 && !tx.started) return mids;

    const outbox = this.#outbox;
    let outgoing: OutgoingMessage[];
    const tCommit = performance.now();
    try {
      const finalized = runtime.finalize(pending, 0);
      outgoing = finalized instanceof Promise ? await finalized : finalized;
      if (outbox && outgoing.length > 0) {
        const trx = await tx.get();
        await runtime.store!.insertOutbox(
          trx,
          outgoing.map((message, i) => ({ message, matsMessageId: mids[i]!, causeMessageId: undefined })),
        );
      }
      if (tx.started) {
        await tx.commit();
        fields.dbCommitMs = performance.now() - tCommit;
      }
    } catch (err) {
      await tx.rollback();
      this.#finish(
        fields,
        'error',
        t0,
        initiatorId,
        'Mats initiation failed before commit; nothing sent',
        err,
      );
      throw new MatsBackendError(`Initiation by '${initiatorId}' failed; nothing was committed or sent`, {
        cause: err,
      });
    }

    if (outgoing.length > 0) {
      const tConfirm = performance.now();
      try {
        if (runtime.transport.state !== 'connected') await runtime.ensureConnected();
        try {
          await runtime.transport.publish(outgoing);
        } catch (err) {
          await runtime.retryNacked(outgoing, err);
        }
        fields.confirmMs = performance.now() - tConfirm;
        runtime.instruments.outMessages.inc(this.#labels(initiatorId).base, outgoing.length);
        if (outbox) runtime.outbox!.scheduleDelete(mids);
      } catch (err) {
        if (outbox) {
          this.#logger.warn(
            { ...fields, err },
            'Mats initiation publish failed; the outbox sweeper will send',
          );
        } else if (!tx.started) {
          // No DB work: nothing was committed, so for the caller this is an initiation that did not happen.
          this.#finish(
            fields,
            'error',
            t0,
            initiatorId,
            'Mats initiation could not publish (no DB work)',
            err,
          );
          throw new MatsBackendError(`Initiation by '${initiatorId}': the messages could not be published`, {
            cause: err,
          });
        } else {
          this.#finish(
            fields,
            'error',
            t0,
            initiatorId,
            'Mats initiation committed but could not publish',
            err,
          );
          throw new MatsMessageSendError(
            `Initiation by '${initiatorId}': committed, but the messages could not be published`,
            mids,
            { cause: err },
          );
        }
      }
    }
    this.#finish(fields, 'ok', t0, initiatorId, 'Mats initiation completed');
    return mids;
  }

  /** Metric labels per initiatorId, built once (the label cap bounds how many are recorded). */
  #labels(initiatorId: string): InitiatorLabels {
    let labels = this.#labelCache.get(initiatorId);
    if (!labels) {
      const base = { app: this.#runtime.options.appName, stage: '', initiator: initiatorId };
      labels = { base, ok: { ...base, outcome: 'ok' }, error: { ...base, outcome: 'error' } };
      if (this.#labelCache.size < 1000) this.#labelCache.set(initiatorId, labels);
    }
    return labels;
  }

  #finish(
    fields: Record<string, unknown>,
    outcome: 'ok' | 'error',
    t0: number,
    initiatorId: string,
    msg: string,
    err?: unknown,
  ): void {
    const runtime = this.#runtime;
    const totalMs = performance.now() - t0;
    const cached = this.#labels(initiatorId);
    const labels = cached.base;
    const i = runtime.instruments;
    i.execTotal.observe(cached[outcome], totalMs / 1000);
    if (typeof fields.userLambdaMs === 'number') i.execUserLambda.observe(labels, fields.userLambdaMs / 1000);
    if (typeof fields.dbCommitMs === 'number') i.execDbCommit.observe(labels, fields.dbCommitMs / 1000);
    if (typeof fields.confirmMs === 'number') i.execConfirm.observe(labels, fields.confirmMs / 1000);
    if (!this.#logEnabled) return;
    const line = {
      ...fields,
      initiatingApp: runtime.options.appName,
      callType: 'INITIATE',
      outcome,
      totalMs,
    };
    // Per initiation, so debug (one completion line, docs/mats-semantics.md 7); failures stay at error.
    if (outcome === 'ok') this.#logger.debug(line, msg);
    else this.#logger.error({ ...line, err }, msg);
  }
}
