import { ConfigError } from '../errors.ts';
import { silentLogger, type Logger } from '../logging.ts';
import type { BackoffOptions } from '../util/backoff.ts';

/** Options every {@link Transport} implementation takes. */
export interface TransportOptions {
  /** Connection name shown by the broker (RabbitMQ: `<name>-consume` / `<name>-publish`), e.g. the node name. */
  name: string;
  /** The durable `direct` pub/sub exchange topics are published to. @default 'mats.pubsub' */
  exchange?: string;
  /** How long a publish waits for the broker's confirms before failing with `TRANSPORT_CONFIRM_TIMEOUT`, in ms. @default 30000 */
  confirmTimeoutMs?: number;
  /**
   * Reconnect backoff after a connection loss, and the retry delay of a consumer whose channel the broker closed.
   * @default { initialMs: 500, factor: 2, maxMs: 30000, jitter: 0.2 }
   */
  reconnect?: BackoffOptions;
  /** How long `close()` waits for outstanding confirms and consumer cancels before closing anyway, in ms. @default 5000 */
  closeTimeoutMs?: number;
  /**
   * Largest encoded header table accepted by `publish`, in bytes. amqplib cannot encode more than 64 KiB; the
   * Mats layer keeps headers under 16 KiB. @default 65536
   */
  maxHeaderBytes?: number;
  /** Where the transport logs connection events. @default silentLogger */
  logger?: Logger;
}

export interface ResolvedTransportOptions {
  name: string;
  exchange: string;
  confirmTimeoutMs: number;
  reconnect: Required<BackoffOptions>;
  closeTimeoutMs: number;
  maxHeaderBytes: number;
  logger: Logger;
}

/** Validates a positive (or non-negative) finite number option; throws `ConfigError` naming the field. */
export function checkNumber(field: string, value: number, min: number, integer = false): number {
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value < min ||
    (integer && !Number.isInteger(value))
  ) {
    throw new ConfigError(
      field,
      `must be a finite ${integer ? 'integer' : 'number'} >= ${min}, was ${String(value)}`,
    );
  }
  return value;
}

/** Applies defaults and validates; throws `ConfigError` naming the offending field. */
export function resolveTransportOptions(options: TransportOptions): ResolvedTransportOptions {
  if (typeof options.name !== 'string' || options.name.length === 0) {
    throw new ConfigError('name', 'must be a non-empty string');
  }
  const exchange = options.exchange ?? 'mats.pubsub';
  if (typeof exchange !== 'string' || exchange.length === 0 || exchange.startsWith('amq.')) {
    throw new ConfigError(
      'exchange',
      `must be a non-empty name not starting with 'amq.', was '${String(exchange)}'`,
    );
  }
  const r = options.reconnect ?? {};
  const reconnect: Required<BackoffOptions> = {
    initialMs: checkNumber('reconnect.initialMs', r.initialMs ?? 500, 0),
    factor: checkNumber('reconnect.factor', r.factor ?? 2, 1),
    maxMs: checkNumber('reconnect.maxMs', r.maxMs ?? 30_000, 0),
    jitter: checkNumber('reconnect.jitter', r.jitter ?? 0.2, 0),
  };
  if (reconnect.jitter > 1) throw new ConfigError('reconnect.jitter', 'must be at most 1');
  if (reconnect.maxMs < reconnect.initialMs) {
    throw new ConfigError('reconnect.maxMs', 'must be at least reconnect.initialMs');
  }
  return {
    name: options.name,
    exchange,
    confirmTimeoutMs: checkNumber('confirmTimeoutMs', options.confirmTimeoutMs ?? 30_000, 1),
    reconnect,
    closeTimeoutMs: checkNumber('closeTimeoutMs', options.closeTimeoutMs ?? 5000, 0),
    maxHeaderBytes: checkNumber('maxHeaderBytes', options.maxHeaderBytes ?? 65_536, 64, true),
    logger: options.logger ?? silentLogger,
  };
}
