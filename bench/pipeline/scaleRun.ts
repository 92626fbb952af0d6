import { createTestDatabase } from '../../harness/databases.ts';
import { NodeProcess } from '../../harness/NodeProcess.ts';
import { runId } from '../../harness/runState.ts';
import { serviceUrls } from '../../harness/services.ts';
import { createTestBroker } from '../../harness/transports.ts';
import { backlog } from './backlog.ts';
import { serverStatements } from './nodeSystems.ts';
import { idleScale, storm } from './scale.ts';

/** Which scale measurements to run (absent: not run); see docs/benchmarks.md. */
export interface ScaleOptions {
  idle?: number;
  storm?: number;
  stormSleepMs: number;
  backlog?: number;
  backlogSessions: number;
}

/**
 * The scale measurements on two node processes (RabbitMQ, a fresh MariaDB database, the fault tests' fast
 * timings): idle sessions' memory, the storm of moving sessions, the outbox backlog drain. Prints and returns
 * their figures; nothing when none is asked for.
 */
export async function scaleRun(o: ScaleOptions): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  if (o.idle === undefined && o.storm === undefined && o.backlog === undefined) return out;
  const db = await createTestDatabase('mysql');
  const broker = await createTestBroker('rabbitmq');
  const nodes: NodeProcess[] = [];
  const config = (i: number) => ({
    nodeName: `bench${i}_${runId}`,
    instanceName: `B${runId}`,
    amqpUrl: serviceUrls.rabbitmq,
    dbUrl: db.url,
    queuePrefix: broker.prefix,
  });
  try {
    for (const i of [1, 2]) nodes.push(await NodeProcess.start(config(i)));
    if (o.idle !== undefined) Object.assign(out, await idleScale(nodes[1]!, o.idle));
    if (o.storm !== undefined)
      Object.assign(
        out,
        await storm(nodes[0]!, nodes[1]!, o.storm, o.stormSleepMs, () => serverStatements(db.knex)),
      );
    if (o.backlog !== undefined) Object.assign(out, await backlog(config(3), o.backlog, o.backlogSessions));
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    await broker.close();
    await db.drop();
  }
  for (const [k, v] of Object.entries(out)) console.log(`${k}: ${Number.isInteger(v) ? v : v.toFixed(1)}`);
  return out;
}
