import { ConfigError } from '../errors.ts';
import {
  checkNumber,
  resolveTransportOptions,
  type ResolvedTransportOptions,
  type TransportOptions,
} from './TransportOptions.ts';

/** Options of {@link AmqpTransport}: the common {@link TransportOptions} plus the RabbitMQ connection. */
export interface AmqpTransportOptions extends TransportOptions {
  /** `amqp://user:pass@host:port/vhost` of the broker (credentials here; heartbeat left to the server). @default 'amqp://guest:guest@127.0.0.1:5672' */
  url?: string;
  /** Confirm channels publishes are spread over. @default 4 */
  publishChannels?: number;
  /** Unconfirmed publishes allowed per publish channel before further publishes wait. @default 1000 */
  maxUnconfirmedPerChannel?: number;
  /** TCP connect timeout of each connection attempt, in ms. @default 10000 */
  connectTimeoutMs?: number;
  /**
   * Send the frames written to a connection within one tick in one `writev` (see `coalesceWrites.ts`): fewer
   * syscalls per message, no added latency. @default true
   */
  coalesceWrites?: boolean;
  /**
   * Publish through our own encoder (`directPublish.ts`, `publishFrames.ts`: the same frames as amqplib's
   * `publish()`, byte for byte, at a quarter of the CPU) instead of amqplib's. Turn off to rule it out when
   * chasing a problem. @default true
   */
  directPublish?: boolean;
}

export interface ResolvedAmqpTransportOptions extends ResolvedTransportOptions {
  url: string;
  publishChannels: number;
  maxUnconfirmedPerChannel: number;
  connectTimeoutMs: number;
  coalesceWrites: boolean;
  directPublish: boolean;
}

/** Applies defaults and validates; throws `ConfigError` naming the offending field. */
export function resolveAmqpTransportOptions(options: AmqpTransportOptions): ResolvedAmqpTransportOptions {
  const url = options.url ?? 'amqp://guest:guest@127.0.0.1:5672';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError('url', 'is not a valid URL');
  }
  if (parsed.protocol !== 'amqp:' && parsed.protocol !== 'amqps:') {
    throw new ConfigError('url', `must use amqp: or amqps:, was ${parsed.protocol}`);
  }
  if (parsed.searchParams.has('heartbeat') && parsed.searchParams.get('heartbeat') === '0') {
    // amqplib 2.x: heartbeat 0 disables heartbeats; a dead peer would then go unnoticed.
    throw new ConfigError('url', 'heartbeat=0 disables heartbeats; omit it to use the server value');
  }
  return {
    ...resolveTransportOptions(options),
    url,
    publishChannels: checkNumber('publishChannels', options.publishChannels ?? 4, 1, true),
    maxUnconfirmedPerChannel: checkNumber(
      'maxUnconfirmedPerChannel',
      options.maxUnconfirmedPerChannel ?? 1000,
      1,
      true,
    ),
    connectTimeoutMs: checkNumber('connectTimeoutMs', options.connectTimeoutMs ?? 10_000, 1),
    coalesceWrites: checkBoolean('coalesceWrites', options.coalesceWrites ?? true),
    directPublish: checkBoolean('directPublish', options.directPublish ?? true),
  };
}

function checkBoolean(field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new ConfigError(field, `must be a boolean, was ${typeof value}`);
  return value;
}
