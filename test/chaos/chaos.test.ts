import { eventually } from '../helpers/clientKit.ts';
import { requirePrivateService } from '../../harness/privateServices.ts';
import { testAuth } from '../../harness/startTestCluster.ts';
import { runId } from '../../harness/runState.ts';
import { LoadRun, type LoadAccounting } from '../faults/LoadRun.ts';
import { ChaosCluster } from './ChaosCluster.ts';
import {
  brokerDeadLetters,
  countRows,
  poisonDeadLetters,
  poisonDlq,
  storeLeftovers,
  topicLogCheck,
  type StoreLeftovers,
} from './chaosChecks.ts';
import { ChaosIds } from './chaosEndpoints.ts';
import { buildSchedule, chaosSeed, describeAction } from './chaosSchedule.ts';
import { ChaosWorkload, type Anomaly } from './ChaosWorkload.ts';

/** Length of the chaos phase, ms: short in CI (the whole suite stays under 3 minutes), longer on demand. */
const DURATION_MS = Number(process.env.CHAOS_DURATION_MS ?? 35_000);
const NODES = 3;
const CLIENTS = 6;
/** Poison requests (the backend always throws): exactly these must end dead-lettered. */
const POISON = 2;
/** Bound on mats_socket_inbox rows once every request is answered (each row lives until its ACK2). */
const SOCKET_INBOX_BOUND = CLIENTS * 4;
/** Bound on each settle wait: after it, whatever is missing is reported as lost. */
const SETTLE_MS = 30_000;

describe('Chaos soak: kill -9, service restarts, cuts and pauses under load [3 nodes + backend, RabbitMQ + MariaDB]', function () {
  const seed = chaosSeed();
  const replay = `CHAOS_SEED=${seed} CHAOS_DURATION_MS=${DURATION_MS} npm run test:chaos`;
  this.timeout(DURATION_MS + 4 * SETTLE_MS);
  let cluster: ChaosCluster | undefined;
  let load: LoadRun | undefined;

  before(async function () {
    this.timeout(120_000);
    console.log(`      chaos seed ${seed} (replay: ${replay})`);
    // The soak restarts and kills its RabbitMQ and MariaDB: servers of its own, never the machine's shared ones.
    requirePrivateService(this, 'rabbitmq');
    requirePrivateService(this, 'mariadb');
    cluster = await ChaosCluster.start(NODES);
    console.log(
      `      private services: ${cluster.rabbit.label} booted in ${cluster.rabbit.bootMs[0]} ms; ` +
        `${cluster.mariaDb.label} in ${cluster.mariaDb.bootMs[0]} ms`,
    );
  });

  after(async function () {
    this.timeout(60_000);
    await load?.close();
    await cluster?.stop();
  });

  it(`every request answered once, every server send delivered once in order, no silent topic gap (seed ${seed})`, async () => {
    const c = cluster!;
    const actions = buildSchedule({ seed, durationMs: DURATION_MS, nodes: c.nodes.map((n) => n.name) });
    console.log(`      schedule (${actions.length} faults): ${actions.map(describeAction).join('; ')}`);
    load = new LoadRun({
      urls: c.clientUrls,
      clients: CLIENTS,
      inflightPerClient: 1,
      endpointId: ChaosIds.echo,
      idPrefix: `chaos-${runId}`,
      authorization: testAuth('chaos'),
      requestTimeoutMs: 30_000,
      client: { shuffleUrls: true },
    });
    const work = new ChaosWorkload({ clients: load.clients, topicId: c.topicId, clock: c.clock });
    await eventually(() => work.allSubscribed, { timeoutMs: 20_000, what: 'every client subscribed' });
    const poisonIds = Array.from({ length: POISON }, (_, i) => `poison-${runId}-${i}`);
    const poisonOutcomes = poisonIds.map((tid, i) =>
      load!.clients[i % CLIENTS]!.request(ChaosIds.poison, tid, { tid }, { timeout: 5000 }).then(
        () => 'answered',
        () => 'failed',
      ),
    );
    load.start();
    work.start();

    await c.run(actions, (line) => console.log(line));
    const chaosEndedMs = c.clock();

    // Settle: stop issuing, then wait for conditions (each bounded; what is missing then is reported, not thrown).
    load.stop();
    await work.stop();
    const problems: Anomaly[] = [...work.anomalies];
    const settle = async (what: string, condition: () => boolean | Promise<boolean>): Promise<void> => {
      await eventually(async () => (await condition()) || undefined, {
        timeoutMs: SETTLE_MS,
        intervalMs: 100,
        what,
      }).catch((err: Error) => problems.push({ atMs: c.clock(), what: `settle: ${err.message}` }));
    };
    const lastSeq = async (): Promise<number> =>
      Number(
        (
          (await c.db.knex('mats_socket_topic').where({ topic_id: c.topicId }).first()) as {
            last_seq?: number;
          }
        )?.last_seq ?? 0,
      );
    await settle('every server send delivered', () => work.pushesSettled);
    const logSeq = await lastSeq();
    await settle('every subscriber at the last topic seq (or told SUB_LOST)', () =>
      work.topicSettled(logSeq),
    );
    let left: StoreLeftovers | undefined;
    await settle('both outboxes empty', async () => {
      left = await storeLeftovers(c.db.knex);
      return left.matsSocketOutbox === 0 && left.matsOutbox === 0;
    });
    const prefix = c.broker.prefix;
    await settle(`${POISON} poison messages in ${poisonDlq(prefix)}`, async () => {
      const depth = await c.broker.queueDepth(poisonDlq(prefix));
      return depth >= POISON;
    });
    const pushes = work.pushReport();
    const topic = work.topicReport(logSeq);
    const acc: LoadAccounting = await load.finish();
    const poison = await poisonDeadLetters(c.broker, poisonIds);
    const otherDlqs = [...(await brokerDeadLetters(c.rabbit, prefix))].filter(
      ([q, n]) => q !== poisonDlq(prefix) && n > 0,
    );
    left = await storeLeftovers(c.db.knex);
    const poisonFailed = (await Promise.all(poisonOutcomes)).filter((o) => o === 'failed').length;

    // Accounting: every figure of the run, then every problem with the fault that preceded it.
    const at = (ms: number): string => `t+${(ms / 1000).toFixed(1)}s`;
    const echoProblems = [
      ...(acc.lost.length > 0
        ? [
            `${acc.lost.length} requests lost (rejected, no answer): ${acc.lost
              .map((id) =>
                acc.lateReplyMs[id] !== undefined
                  ? `${id} (its reply reached the client ${acc.lateReplyMs[id]} ms after sending: late)`
                  : `${id} (no reply reached the client)`,
              )
              .join(', ')}`,
          ]
        : []),
      ...acc.mismatched.map((id) => `request ${id} answered with another id`),
      ...[...new Set([...acc.duplicateOutcomes, ...acc.duplicateWireReplies])].map(
        (id) => `request ${id} answered twice`,
      ),
    ];
    if (acc.resolved !== acc.sent) echoProblems.push(`${acc.sent} requests sent, ${acc.resolved} answered`);
    const log = await topicLogCheck(c.db.knex, c.topicId, work.publishedTraceIds);
    if (log.doubled.length > 0)
      echoProblems.push(`publishes logged twice (doubled): ${log.doubled.join(', ')}`);
    if (log.missing.length > 0)
      echoProblems.push(`answered publishes not in the topic log (lost): ${log.missing.join(', ')}`);
    problems.push(...pushes.problems, ...topic.problems);
    for (const [tid, ids] of poison) {
      if (ids.length === 1) continue;
      const how =
        ids.length === 0
          ? ''
          : new Set(ids).size === ids.length
            ? ' (distinct Mats messages: sent twice)'
            : ' (one Mats message dead-lettered again)';
      problems.push({
        atMs: chaosEndedMs,
        what: `poison ${tid} dead-lettered ${ids.length} times, want 1${how}: ${ids.join(', ')}`,
      });
    }
    if (poisonFailed !== POISON) echoProblems.push(`${POISON - poisonFailed} poison requests were answered`);
    for (const [q, n] of otherDlqs) echoProblems.push(`${n} unexpected dead letters in ${q}`);
    if (left.matsSocketDlq > 0) echoProblems.push(`${left.matsSocketDlq} unexpected rows in mats_socket_dlq`);
    if (left.matsSocketOutbox + left.matsOutbox > 0)
      echoProblems.push(
        `outbox rows left: mats_socket_outbox ${left.matsSocketOutbox}, mats_outbox ${left.matsOutbox}`,
      );
    if (left.matsSocketInbox > SOCKET_INBOX_BOUND)
      echoProblems.push(`mats_socket_inbox holds ${left.matsSocketInbox} rows (bound ${SOCKET_INBOX_BOUND})`);

    const restarts = c.processes.map((p) => `${p.name} ×${p.starts - 1}`).join(', ');
    const boots = (ms: readonly number[]): string => `×${ms.length - 1} (boots ${ms.join(', ')} ms)`;
    console.log(
      [
        `      ===== chaos soak accounting — seed ${seed} (replay: ${replay}) =====`,
        `      faults: ${c.log.length} in ${at(chaosEndedMs)}; restarts: ${restarts}`,
        `      service restarts: RabbitMQ ${boots(c.rabbit.bootMs)}, MariaDB ${boots(c.mariaDb.bootMs)}`,
        `      requests: sent ${acc.sent}, answered once ${acc.resolved}, lost ${acc.lost.length}, ` +
          `doubled ${new Set([...acc.duplicateOutcomes, ...acc.duplicateWireReplies]).size}, ` +
          `mixed up ${acc.mismatched.length}, RETRYs seen ${acc.wireRetries}`,
        `      server sends: ${work.pushRequests} push requests, expected ${pushes.expected}, delivered ${pushes.delivered}, ` +
          `lost ${pushes.lost}, doubled ${pushes.doubled}, out of order ${pushes.outOfOrder}`,
        `      topic: published ${work.published} (log last seq ${logSeq}), ${CLIENTS} subscribers: seen ${topic.seen}, ` +
          `reported lost (SUB_LOST) ${topic.reportedLost}, silently lost ${topic.silentlyLost}, redelivered ${topic.redelivered}`,
        `      poison: sent ${POISON}, timed out ${poisonFailed}, dead-lettered ${[...poison.values()].reduce((a, b) => a + b.length, 0)} ` +
          `(${poisonDlq(prefix)}); other dead letters: broker ${otherDlqs.length} queues, mats_socket_dlq ${left.matsSocketDlq}`,
        `      store: mats_socket_outbox ${left.matsSocketOutbox}, mats_outbox ${left.matsOutbox}, ` +
          `mats_socket_inbox ${left.matsSocketInbox} (bound ${SOCKET_INBOX_BOUND}), mats_inbox ${left.matsInbox}, ` +
          `session rows ${await countRows(c.db.knex, 'mats_socket_session')}`,
        `      problems: ${problems.length + echoProblems.length}`,
      ].join('\n'),
    );
    const lines = [
      ...problems
        .sort((a, b) => a.atMs - b.atMs)
        .map((p) => `${p.what} — seen ${at(p.atMs)}, after fault: ${c.faultBefore(p.atMs)}`),
      ...echoProblems,
    ];
    if (lines.length > 0) {
      const tails = c.processes.map((p) => `  ${p.name}: ${p.stderrTail(5).join(' | ')}`).join('\n');
      throw new Error(
        `chaos soak found ${lines.length} problem(s) with seed ${seed} (replay: ${replay}):\n` +
          lines.map((l) => `  - ${l}`).join('\n') +
          `\nfaults run: ${c.log.map((e) => `${describeAction(e.action)} @${at(e.startedMs)}`).join('; ')}` +
          `\nprocess stderr tails:\n${tails}`,
      );
    }
  });
});
