import { randomBytes } from 'node:crypto';
import { MatsIllegalCallError } from './MatsErrors.ts';

/** Endpoint ids given by applications (`docs/mats-semantics.md` 1.1). `:` is excluded, so `<queue>:i` never collides. */
const ENDPOINT_ID = /^[A-Za-z0-9._-]{1,200}$/;

/** Throws {@link MatsIllegalCallError} unless `id` is a legal application endpoint id. */
export function validateEndpointId(id: string, what = 'endpoint id'): void {
  if (typeof id !== 'string' || !ENDPOINT_ID.test(id)) {
    throw new MatsIllegalCallError(`Illegal ${what} '${String(id)}': must match ${ENDPOINT_ID.source}`);
  }
}

/** Makes an internally generated id (which contains e.g. a node name) legal: other characters become `_`. */
export function sanitizeId(id: string): string {
  const cleaned = id.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 200);
  return cleaned.length > 0 ? cleaned : '_';
}

/** Stage id of stage `index` of endpoint `endpointId`: stage 0 is the endpoint id, stage k is `<id>.stage<k>`. */
export function stageIdOf(endpointId: string, index: number): string {
  return index === 0 ? endpointId : `${endpointId}.stage${index}`;
}

/**
 * Resolves an application endpoint id: a leading `.` is prefixed with the factory's common group id
 * (`.placeOrder` → `OrderService.placeOrder`). The result is validated.
 */
export function resolveEndpointId(id: string, commonGroupId: string): string {
  const full = id.startsWith('.') ? `${commonGroupId}${id}` : id;
  validateEndpointId(full);
  return full;
}

/** A new random flow id: `m_` + 10 random alphanumerics + `_T` + base36 epoch millis. */
export function newFlowId(nowMs: number): string {
  return `m_${randomChars(10)}_T${nowMs.toString(36)}`;
}

/** `length` random characters of [A-Za-z0-9] (crypto-random, from a pooled buffer: flow ids are made per message). */
export function randomChars(length: number): string {
  let out = '';
  while (out.length < length) {
    if (poolPos >= pool.length) {
      pool = randomBytes(4096);
      poolPos = 0;
    }
    const b = pool[poolPos++]!;
    // 248 = 4 × 62: rejecting the top values keeps the characters uniformly distributed.
    if (b < 248) out += BASE62[b % 62];
  }
  return out;
}

let pool = randomBytes(4096);
let poolPos = 0;

/**
 * A flow id derived from a seed, for child flows started inside a stage: a redelivered stage that initiates the
 * same children again produces the same flow and message ids, so receivers with an inbox drop the duplicates.
 */
export function derivedFlowId(seed: string, timestampMs: number): string {
  return `m_${hashChars(seed, 10)}_T${timestampMs.toString(36)}`;
}

/** A message id within a flow: `<flowId>_<suffix>`. */
export function messageIdOf(flowId: string, suffix: string): string {
  return `${flowId}_${suffix}`;
}

/**
 * A flow-unique message id suffix derived from the incoming message id and the position of the outgoing message
 * in the stage run (deterministic, see {@link derivedFlowId}).
 */
export function derivedSuffix(seed: string): string {
  return hashChars(seed, 8);
}

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * `length` base-62 characters of a 64-bit FNV-1a hash of `seed` (two 32-bit lanes). Not cryptographic: the ids only
 * need to be unique within a flow and stable across redeliveries, and this runs for every outgoing message.
 */
function hashChars(seed: string, length: number): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ seed.length;
  for (let i = 0; i < seed.length; i++) {
    const c = seed.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995) ^ (h2 >>> 15);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 0x85ebca6b) ^ h2;
  h2 = Math.imul(h2 ^ (h2 >>> 13), 0xc2b2ae35) ^ h1;
  let out = '';
  for (let i = 0; i < length; i++) {
    const lane = i % 2 === 0 ? h1 : h2;
    out += BASE62[(lane >>> 0) % 62];
    if (i % 2 === 0) h1 = Math.imul(h1 ^ (h1 >>> 15), 0x2c1b3c6d) + i;
    else h2 = Math.imul(h2 ^ (h2 >>> 15), 0x297a2d39) + i;
  }
  return out;
}
