import type { DebugInfo } from './envelopes.ts';

/**
 * Debug option bits (docs/protocol.md section 5). CUSTOM_A and CUSTOM_B produce no fields in this protocol; they are
 * passed to application code.
 */
export const DebugOption = {
  /** Timestamps: `cmrts`, `mmsts`, `mmrrts`, `smcts`, `mscts`. */
  TIMESTAMPS: 1,
  /** Node names: `cmrnn`, `mmrrnn`, `smcnn`, `mscnn`. */
  NODES: 2,
  /** Application-defined. */
  CUSTOM_A: 64,
  /** Application-defined. */
  CUSTOM_B: 128,
} as const;

export type DebugOption = (typeof DebugOption)[keyof typeof DebugOption];

/** Every defined debug bit. */
export const ALL_DEBUG_OPTIONS =
  DebugOption.TIMESTAMPS | DebugOption.NODES | DebugOption.CUSTOM_A | DebugOption.CUSTOM_B;

/** The grant rule: the effective set is always `requested AND allowed`. */
export function resolveDebugOptions(requested: number | undefined, allowed: number): number {
  return (requested ?? 0) & allowed;
}

/**
 * Section 5 rule 1: the session's S2C debug options after a frame. The last envelope with an `rd` field wins, and
 * the result is `rd AND allowed` (with the allowed set in force after the frame's authentication). A frame without
 * `rd` leaves `current` unchanged; `rd: 0` resets it to empty.
 */
export function s2cDebugOptionsAfterFrame(
  envelopes: readonly { rd?: number }[],
  allowed: number,
  current: number,
): number {
  let result = current;
  for (const envelope of envelopes) {
    if (envelope.rd !== undefined) result = resolveDebugOptions(envelope.rd, allowed);
  }
  return result;
}

/** Reply-path fields recorded while a client REQUEST is handled (section 5, replies to a C2S REQUEST). */
export interface ReplyDebugFields {
  /** Client message received by server, epoch ms. */
  cmrts: number;
  /** Node that received the client message. */
  cmrnn: string;
  /** Backend message sent, epoch ms (forwarded path only). */
  mmsts?: number;
  /** Backend reply received, epoch ms (forwarded path only). */
  mmrrts?: number;
  /** Node that received the backend reply (forwarded path only). */
  mmrrnn?: string;
}

/**
 * The `debug` object of a reply to a client REQUEST, before it is written (section 5): `undefined` when `resolved`
 * is empty, else `resd` plus the TIMESTAMPS/NODES subsets of `fields`. The forwarded path passes the `mm*` fields,
 * the insta path does not. `mscts`/`mscnn` are added at write time by {@link stampDebugAtWrite}.
 */
export function replyDebugInfo(resolved: number, fields: ReplyDebugFields): DebugInfo | undefined {
  if (resolved === 0) return undefined;
  const debug: DebugInfo = { resd: resolved };
  if (resolved & DebugOption.TIMESTAMPS) {
    debug.cmrts = fields.cmrts;
    if (fields.mmsts !== undefined) debug.mmsts = fields.mmsts;
    if (fields.mmrrts !== undefined) debug.mmrrts = fields.mmrrts;
  }
  if (resolved & DebugOption.NODES) {
    debug.cmrnn = fields.cmrnn;
    if (fields.mmrrnn !== undefined) debug.mmrrnn = fields.mmrrnn;
  }
  return debug;
}

/**
 * Adds `mscts`/`mscnn` to a reply's `debug` object as the writing node (section 5: "set by the node that writes the
 * frame to the socket, at write time"), per its `resd`. Returns a new object; `undefined` stays `undefined`.
 */
export function stampDebugAtWrite(
  debug: DebugInfo | undefined,
  nodeName: string,
  now: number,
): DebugInfo | undefined {
  if (debug === undefined) return undefined;
  const resd = debug.resd ?? 0;
  const stamped: DebugInfo = { ...debug };
  if (resd & DebugOption.TIMESTAMPS) stamped.mscts = now;
  if (resd & DebugOption.NODES) stamped.mscnn = nodeName;
  return stamped;
}

/** The `debug` object recorded when a server-initiated SEND, REQUEST or PUB is created (section 5 rule 2). */
export function serverInitiatedDebugAtCreation(nodeName: string, now: number): DebugInfo {
  return { smcts: now, smcnn: nodeName };
}

/**
 * Section 5 rule 3, for server-initiated SEND, REQUEST and PUB at write time, with `opts` the session's current S2C
 * debug options: empty removes `debug`; otherwise `resd = opts`, and `smcts`/`mscts` (TIMESTAMPS) and
 * `smcnn`/`mscnn` (NODES) are kept/added or removed. Returns a new object.
 */
export function serverInitiatedDebugAtWrite(
  created: DebugInfo | undefined,
  opts: number,
  nodeName: string,
  now: number,
): DebugInfo | undefined {
  if (opts === 0) return undefined;
  const debug: DebugInfo = { resd: opts };
  if (opts & DebugOption.TIMESTAMPS) {
    if (created?.smcts !== undefined) debug.smcts = created.smcts;
    debug.mscts = now;
  }
  if (opts & DebugOption.NODES) {
    if (created?.smcnn !== undefined) debug.smcnn = created.smcnn;
    debug.mscnn = nodeName;
  }
  return debug;
}
