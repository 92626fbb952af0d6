import type { AmqpPublishOptions } from '../../src/broker/amqpProperties.ts';
import { openRawLoop } from '../pipeline/rawAmqp.ts';
import { LoopDriver, type PhaseResult, type PhaseTiming } from './LoopDriver.ts';

/** What the raw loop runs against and with. */
export interface RawLoopConfig {
  url: string;
  /** Queue and connection name prefix of this bench run. */
  prefix: string;
  timing: PhaseTiming;
  /** The DTO each request and reply carries. */
  payload: unknown;
  /** Coalesce each connection's writes per tick, as the AMQP transport does (`coalesceWrites.ts`). */
  coalesce: boolean;
  /** Publish through the transport's publish path and frame encoder (`directPublish.ts`), not amqplib's. */
  directPublish: boolean;
}

/** What the Mats wire format adds to every message (section 4.1), for the raw+wire loop. */
function matsLikeProperties(id: string): Partial<AmqpPublishOptions> {
  return {
    contentType: 'application/json',
    appId: 'MatsBench',
    type: 'REQUEST',
    timestamp: Math.floor(Date.now() / 1000),
    headers: {
      mats_TraceId: `bench.${id}`,
      mats_MsgId: `m_abcdefghij_Tlq2x7abc_${id}`,
      mats_CallType: 'REQUEST',
      mats_From: 'bench',
      mats_To: 'Bench.echo',
      mats_InitApp: 'MatsBench',
      mats_InitId: 'bench',
    },
  };
}

/**
 * The raw amqplib loop (`openRawLoop`); with `wire`, messages are as large and as annotated as Mats messages.
 * `onStoppable` receives a function that ends the loop at once (Ctrl-C): it deletes the queues and closes the
 * connections, and the failures that follow are expected.
 */
export async function rawPhase(
  config: RawLoopConfig,
  run: string,
  wire: boolean,
  onStoppable?: (stop: () => Promise<void>) => void,
): Promise<PhaseResult> {
  // A Mats envelope around the bench payload is about 600 bytes (591 measured).
  const pad = wire ? 'p'.repeat(480) : '';
  const loop = await openRawLoop({
    url: config.url,
    prefix: config.prefix,
    name: `${run}${wire ? 'w' : ''}`,
    inFlight: config.timing.inFlight,
    body: (id) => Buffer.from(JSON.stringify({ id, data: config.payload, pad })),
    ...(wire ? { extra: matsLikeProperties } : {}),
    coalesce: config.coalesce,
    directPublish: config.directPublish,
  });
  let stopping = false;
  onStoppable?.(() => {
    stopping = true;
    return loop.close();
  });
  try {
    // As in the Mats loop: a round trip that cannot complete ends the bench instead of skewing it.
    const fail = (error: Error): void => {
      if (!stopping) throw error;
    };
    return await new LoopDriver(config.timing, (onReply) => loop.request(onReply, fail)).run();
  } finally {
    if (!stopping) await loop.close();
  }
}
