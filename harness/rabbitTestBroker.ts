import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { AmqpAdmin, AmqpTransport } from '../src/broker/AmqpTransport.ts';
import { ErrorCode } from '../src/errors.ts';
import type { PrivateRabbitMq } from './PrivateRabbitMq.ts';
import { serviceUrls } from './services.ts';
import { testTransportTimings, type TestBroker } from './TestBroker.ts';

const execFileAsync = promisify(execFile);

/** `rabbitmqctl -q ...args` against the shared node. */
async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('rabbitmqctl', ['-q', ...args], { timeout: 30_000 });
  return stdout;
}

/** The RabbitMQ node a test broker works on: the shared one, or a private node of the suite. */
interface RabbitTarget {
  url: string;
  ctl: (...args: string[]) => Promise<string>;
  server: PrivateRabbitMq | undefined;
}

/** An {@link AmqpAdmin} connection made on first use, and again after {@link close} or a failed connect. */
function reconnectingAdmin(
  url: string,
  name: string,
): { admin(): Promise<AmqpAdmin>; close(): Promise<void> } {
  let current: Promise<AmqpAdmin> | undefined;
  return {
    admin: () =>
      (current ??= AmqpAdmin.connect(url, name).catch((error: unknown) => {
        current = undefined;
        throw error;
      })),
    async close() {
      const a = current;
      current = undefined;
      await (await a?.catch(() => undefined))?.close();
    },
  };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

async function rabbitTestBroker(prefix: string, target: RabbitTarget): Promise<TestBroker> {
  const { url, ctl: rabbitmqctl, server } = target;
  // Not named with the prefix, so dropConnections() leaves it alone.
  const admins = reconnectingAdmin(url, `admin.${prefix}`);
  await admins.admin();
  // A private node may have been restarted since the last call, and the admin connection with it: one retry on a
  // fresh connection when not even a channel could be opened.
  const withAdmin = async <T>(op: (a: AmqpAdmin) => Promise<T>): Promise<T> => {
    try {
      return await op(await admins.admin());
    } catch (error) {
      if (!server || (error as { code?: unknown }).code !== ErrorCode.TRANSPORT_UNAVAILABLE) throw error;
      await admins.close();
      return op(await admins.admin());
    }
  };
  const admin = {
    queueDepth: (q: string) => withAdmin((a) => a.queueDepth(q)),
    drainQueue: (q: string, max?: number) => withAdmin((a) => a.drainQueue(q, max)),
    deleteQueue: (q: string) => withAdmin((a) => a.deleteQueue(q)),
    declareQueue: (q: string, kind: 'quorum' | 'classic') => withAdmin((a) => a.declareQueue(q, kind)),
    deleteExchange: (e: string) => withAdmin((a) => a.deleteExchange(e)),
  };
  const transports: AmqpTransport[] = [];
  const policies: string[] = [];

  async function queuesOfSuite(): Promise<string[]> {
    const out = await rabbitmqctl('list_queues', '--no-table-headers', 'name');
    return out
      .split('\n')
      .map((l) => l.trim())
      .filter((n) => n.includes(prefix));
  }

  return {
    kind: 'rabbitmq',
    prefix,
    canBlock: server !== undefined,
    createTransport(name, options = {}) {
      const t = new AmqpTransport({
        ...testTransportTimings,
        exchange: `${prefix}pubsub`,
        ...options,
        url: options.url ?? url,
        name: `${prefix}${name}`,
      });
      transports.push(t);
      return t;
    },
    async dropConnections(transportName = '') {
      // One `rabbitmqctl eval` (a single CLI VM start, ~1-2 s) instead of list_connections + a close_connection per
      // connection; closes exactly the connections whose client-provided name starts with the suite prefix (and
      // the transport name, if given).
      // Each close is caught: close_connection checks that the connection is registered, then gen_server:calls its
      // reader; a reader that ends in between (its client closing this connection because we just dropped its
      // other one, or a transport of the previous test closing) made the call exit `noproc`, which aborted the
      // whole eval with the remaining connections still open (flaky S31). Not waiting for the readers to end: tests
      // rely on this resolving while the clients are still reconnecting.
      const namePrefix = `${prefix}${transportName}`;
      if (!/^[\w.-]+$/.test(namePrefix)) throw new Error(`unsafe name prefix ${namePrefix}`);
      const code = [
        `Prefix = <<"${namePrefix}">>,`,
        'Pids = [proplists:get_value(pid, I) || I <- rabbit_networking:connection_info_all([pid, client_properties]),',
        '  case lists:keyfind(<<"connection_name">>, 1, proplists:get_value(client_properties, I, [])) of',
        '    {_, longstr, N} -> binary:longest_common_prefix([N, Prefix]) =:= byte_size(Prefix);',
        '    _ -> false',
        '  end],',
        '[catch rabbit_networking:close_connection(P, "test: dropConnections()") || P <- Pids],',
        'length(Pids).',
      ].join(' ');
      await rabbitmqctl('eval', code);
    },
    queueDepth: (queue) => admin.queueDepth(queue),
    drainQueue: (queue, max) => admin.drainQueue(queue, max),
    deleteQueue: (queue) => admin.deleteQueue(queue),
    declareClassicQueue: (queue) => admin.declareQueue(queue, 'classic'),
    async setBackstop(queue, backstop) {
      const policy = `${prefix}backstop.${policies.length}`;
      policies.push(policy);
      const definition = JSON.stringify({
        'delivery-limit': backstop.deliveryLimit,
        'dead-letter-exchange': '',
        'dead-letter-routing-key': backstop.deadLetterQueue,
      });
      await rabbitmqctl(
        'set_policy',
        '--apply-to',
        'queues',
        '--priority',
        '100',
        policy,
        `^${escapeRegExp(queue)}$`,
        definition,
      );
      // Policies apply asynchronously: wait until an existing queue shows it.
      const deadline = Date.now() + 10_000;
      for (;;) {
        const rows = (await rabbitmqctl('list_queues', '--no-table-headers', 'name', 'policy')).split('\n');
        const row = rows.map((r) => r.split('\t')).find((cols) => cols[0] === queue);
        if (!row || row[1] === policy) return;
        if (Date.now() > deadline) throw new Error(`policy ${policy} not applied to ${queue}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    blockPublishing() {
      if (!server) {
        return Promise.reject(
          new Error('no memory alarm on the shared RabbitMQ (canBlock = false): use a private node'),
        );
      }
      return server.raiseMemoryAlarm();
    },
    unblockPublishing() {
      return server ? server.clearMemoryAlarm() : Promise.resolve();
    },
    async close() {
      await Promise.all(transports.map((t) => t.close()));
      try {
        // A private node goes away whole with its directory; only the shared one needs tidying.
        if (!server) {
          for (const q of await queuesOfSuite()) await admin.deleteQueue(q);
          await admin.deleteExchange(`${prefix}pubsub`);
          for (const p of policies) await rabbitmqctl('clear_policy', p);
        }
      } finally {
        await admins.close();
      }
    },
  };
}

/** A test broker on RabbitMQ: the shared node, or `server`, a private node of the suite. */
export function createRabbitTestBroker(prefix: string, server?: PrivateRabbitMq): Promise<TestBroker> {
  const target: RabbitTarget = server
    ? { url: server.url, ctl: (...args) => server.ctl(...args), server }
    : { url: serviceUrls.rabbitmq, ctl: rabbitmqctl, server: undefined };
  return rabbitTestBroker(prefix, target);
}
