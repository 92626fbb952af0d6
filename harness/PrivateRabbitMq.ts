import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AmqpAdmin } from '../src/broker/AmqpTransport.ts';
import {
  envWithout,
  findProgram,
  freePort,
  PrivateServiceProcess,
  tcpOpen,
  type PrivateServiceTimings,
  type ServiceCommand,
} from './PrivateServiceProcess.ts';
import { runId } from './runState.ts';

const execFileAsync = promisify(execFile);

/**
 * Debian's /usr/sbin/rabbitmq-server and rabbitmqctl are wrappers that switch to the `rabbitmq` user (and its HOME,
 * hence the shared node's Erlang cookie): the scripts behind them run as the caller, with our environment.
 */
const RABBITMQ_SCRIPTS = ['/usr/lib/rabbitmq/bin'];

/** The RabbitMQ scripts this machine has, or undefined when one is missing. */
export function rabbitMqPrograms(): { server: string; ctl: string } | undefined {
  const server = findProgram('rabbitmq-server', RABBITMQ_SCRIPTS);
  const ctl = findProgram('rabbitmqctl', RABBITMQ_SCRIPTS);
  return server && ctl ? { server, ctl } : undefined;
}

let instances = 0;

/**
 * A RabbitMQ node of the test's own (see {@link PrivateServiceProcess}): node `msrt<runId>x<n>@localhost`, AMQP on
 * 127.0.0.1:<free port>, distribution on another free port, no plugins, its own Mnesia, log and HOME directories
 * (HOME holds the Erlang cookie its {@link ctl} shares). A graceful stop is SIGTERM to `rabbitmq-server` (it stops
 * the node as `rabbitmqctl stop` does); `kill -9` hits the Erlang VM and the script alike.
 */
export class PrivateRabbitMq extends PrivateServiceProcess {
  readonly label: string;
  readonly port: number;
  readonly nodeName: string;
  /** `amqp://guest:guest@127.0.0.1:<port>` (guest may log in over loopback). */
  readonly url: string;
  readonly #distPort: number;
  readonly #programs: { server: string; ctl: string };

  private constructor(port: number, distPort: number, timings: PrivateServiceTimings) {
    super('rabbitmq', timings);
    const programs = rabbitMqPrograms();
    if (!programs) throw new Error('rabbitmq-server or rabbitmqctl not found (install rabbitmq-server)');
    this.#programs = programs;
    this.port = port;
    this.#distPort = distPort;
    this.nodeName = `msrt${runId}x${++instances}@localhost`;
    this.url = `amqp://guest:guest@127.0.0.1:${port}`;
    this.label = `private RabbitMQ ${this.nodeName} (127.0.0.1:${port}, ${this.dir})`;
  }

  /** Creates and starts one. */
  static async start(timings: PrivateServiceTimings = {}): Promise<PrivateRabbitMq> {
    const node = new PrivateRabbitMq(await freePort(), await freePort(), timings);
    try {
      await node.start();
    } catch (err) {
      await node.close();
      throw err;
    }
    return node;
  }

  /** `rabbitmqctl -q -n <node> ...args` against this node; stdout. */
  async ctl(...args: string[]): Promise<string> {
    try {
      const { stdout } = await execFileAsync(this.#programs.ctl, ['-q', '-n', this.nodeName, ...args], {
        cwd: this.dir,
        env: this.#env(),
        timeout: 30_000,
      });
      return stdout;
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`${this.label}: rabbitmqctl ${args[0]} failed: ${e.message}\n${e.stderr ?? ''}`, {
        cause: err,
      });
    }
  }

  /**
   * Raises the memory alarm (high watermark 1 byte) and resolves once the node reports it: from then on the node
   * blocks every connection that publishes, until {@link clearMemoryAlarm}.
   */
  async raiseMemoryAlarm(): Promise<void> {
    await this.ctl('set_vm_memory_high_watermark', 'absolute', '1');
    await this.#untilAlarm(true);
  }

  /** Sets the high watermark back to the default (40 % of RAM) and resolves once the alarm has cleared. */
  async clearMemoryAlarm(): Promise<void> {
    await this.ctl('set_vm_memory_high_watermark', '0.4');
    await this.#untilAlarm(false);
  }

  async #untilAlarm(on: boolean): Promise<void> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const alarms = await this.ctl('eval', 'rabbit_alarm:get_alarms().');
      if (/resource_limit,\s*memory/.test(alarms) === on) return;
      if (Date.now() > deadline) throw new Error(`${this.label}: memory alarm still ${on ? 'off' : 'on'}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  protected prepare(): Promise<void> {
    for (const d of ['home', 'mnesia', 'log']) mkdirSync(join(this.dir, d));
    // The cookie the node and rabbitmqctl share (both read $HOME/.erlang.cookie); Erlang wants it private.
    writeFileSync(join(this.dir, 'home', '.erlang.cookie'), randomBytes(15).toString('hex').toUpperCase(), {
      mode: 0o400,
    });
    writeFileSync(join(this.dir, 'enabled_plugins'), '[].\n');
    writeFileSync(join(this.dir, 'rabbitmq-env.conf'), '');
    writeFileSync(
      join(this.dir, 'rabbitmq.conf'),
      [`listeners.tcp.default = 127.0.0.1:${this.port}`, 'vm_memory_high_watermark.relative = 0.4', ''].join(
        '\n',
      ),
    );
    return Promise.resolve();
  }

  /** The environment of the node and of rabbitmqctl: nothing of the machine's RabbitMQ set-up leaks in. */
  #env(): Record<string, string> {
    return {
      ...envWithout(['RABBITMQ_', 'ERL_']),
      HOME: join(this.dir, 'home'),
      RABBITMQ_NODENAME: this.nodeName,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(this.port),
      RABBITMQ_DIST_PORT: String(this.#distPort),
      RABBITMQ_MNESIA_BASE: join(this.dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(this.dir, 'log'),
      RABBITMQ_PID_FILE: join(this.dir, 'rabbitmq.pid'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(this.dir, 'enabled_plugins'),
      RABBITMQ_CONF_ENV_FILE: join(this.dir, 'rabbitmq-env.conf'),
      RABBITMQ_CONFIG_FILE: join(this.dir, 'rabbitmq.conf'),
      RABBITMQ_ADVANCED_CONFIG_FILE: join(this.dir, 'advanced.config'),
      ERL_EPMD_ADDRESS: '127.0.0.1',
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    };
  }

  protected command(): ServiceCommand {
    return { file: this.#programs.server, args: [], env: this.#env() };
  }

  protected async ready(): Promise<boolean> {
    if (!(await tcpOpen(this.port))) return false;
    // The listener opens at the end of the boot; a full AMQP handshake proves the node serves.
    const admin = await AmqpAdmin.connect(this.url, `ready-probe.${this.nodeName}`);
    await admin.close();
    return true;
  }

  protected logFiles(): string[] {
    const log = join(this.dir, 'log', `${this.nodeName}.log`);
    return existsSync(log) ? [log] : [];
  }
}
