import type { Socket } from 'node:net';
import { constants as zlibConstants, deflateRawSync } from 'node:zlib';
import type { RawClient } from '../helpers/rawClient.ts';
import { testAuth } from '../../harness/startTestCluster.ts';

/** Close codes by which the protocol contains a misbehaving client (docs/protocol.md section 6). */
export const CONTAINING_CLOSE_CODES: readonly number[] = [1001, 1008, 1009, 1011, 1013, 4004];

/** The client messages a hostile connection got answers for, by kind (ids of ACK/NACK/RETRY; closes). */
export interface Answers {
  acked: number;
  nacked: number;
  retried: number;
  /** The NACK descriptions seen (first few). */
  nackDescs: string[];
}

/** Counts the ACK/NACK/RETRY answers to client messages among every frame `client` received so far. */
export function answersOf(client: RawClient): Answers {
  const a: Answers = { acked: 0, nacked: 0, retried: 0, nackDescs: [] };
  for (const frame of client.frames) {
    for (const e of frame) {
      const n = Array.isArray(e.ids) ? e.ids.length : 1;
      if (e.t === 'ACK') a.acked += n;
      else if (e.t === 'NACK') {
        a.nacked += n;
        if (typeof e.desc === 'string' && a.nackDescs.length < 3) a.nackDescs.push(e.desc.slice(0, 120));
      } else if (e.t === 'RETRY') a.retried += n;
    }
  }
  return a;
}

/** "closed 1009 'Frame of ...'" or "open" (plus the answers, when any). */
export function describeHostile(client: RawClient): string {
  const a = answersOf(client);
  const answers =
    a.acked + a.nacked + a.retried > 0
      ? `, answers: ${a.acked} ACK, ${a.nacked} NACK, ${a.retried} RETRY` +
        (a.nackDescs.length > 0 ? ` (NACK: ${a.nackDescs[0]})` : '')
      : '';
  const c = client.closeInfo;
  return (c ? `closed ${c.code} '${c.reason.slice(0, 80)}'` : 'still open') + answers;
}

/** Waits until the connection closed or `answered` holds (polled), bounded; returns whether it closed. */
export async function closedOrAnswered(
  client: RawClient,
  answered: (a: Answers) => boolean,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (client.closeInfo) return true;
    if (answered(answersOf(client))) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return client.closeInfo !== undefined;
}

/** A problem unless the hostile connection was closed with one of the protocol's containing codes. */
export function closedByProtocol(
  client: RawClient | undefined,
  what: string,
  options: { resetWhileWriting?: boolean } = {},
): string[] {
  const c = client?.closeInfo;
  if (!c) return [`${what}: the hostile connection was not closed`];
  // A peer still writing a large frame when the node closes gets a TCP reset for the data that follows, which
  // can overtake the close frame: it sees 1006. The node did cut it off (the attack's figures show it).
  if (options.resetWhileWriting && c.code === 1006) return [];
  if (!CONTAINING_CLOSE_CODES.includes(c.code)) return [`${what}: closed with ${c.code} '${c.reason}'`];
  return [];
}

/** A HELLO envelope for `userId` (a new session unless `sid`). */
export function hello(userId: string, sid?: string): Record<string, unknown> {
  return {
    t: 'HELLO',
    clv: 'AbuseClient,1.0; User-Agent: mocha',
    an: 'Abuse',
    av: '1.0.0',
    auth: testAuth(userId),
    ...(sid !== undefined ? { sid } : {}),
  };
}

/** `count` SEND envelopes to `eid`, with cmids from `firstCmid`. */
export function sends(eid: string, count: number, firstCmid = 0, tid = 'flood'): object[] {
  return Array.from({ length: count }, (_, i) => ({ t: 'SEND', eid, tid, cmid: firstCmid + i }));
}

/** A JSON text of `depth` nested arrays (`[[[...]]]`), built without recursion. */
export function nestedArrayJson(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}

/**
 * A client text frame as bytes, written past `ws`'s sender so the test pays no CPU for it during the attack:
 * FIN, RSV1 when `compressed` (permessage-deflate), masked with the all-zero key (RFC 6455 allows any key; XOR with
 * zeros leaves the payload as it is).
 */
export function rawTextFrame(payload: Buffer, compressed: boolean): Buffer {
  const len = payload.length;
  const lengthBytes = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const header = Buffer.alloc(2 + lengthBytes + 4);
  header[0] = 0x80 | (compressed ? 0x40 : 0) | 0x1;
  if (lengthBytes === 0) header[1] = 0x80 | len;
  else if (lengthBytes === 2) {
    header[1] = 0x80 | 126;
    header.writeUInt16BE(len, 2);
  } else {
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([header, payload]);
}

/** The permessage-deflate payload of `text` (RFC 7692: raw deflate, sync-flushed, the trailing 00 00 ff ff cut). */
export function deflateForWebSocket(text: string): Buffer {
  const out = deflateRawSync(Buffer.from(text, 'utf8'), {
    finishFlush: zlibConstants.Z_SYNC_FLUSH,
    level: 9,
  });
  return out.subarray(0, out.length - 4);
}

/** Writes prepared frame bytes straight to the connection's TCP socket; resolves when the kernel took them. */
export function writeRaw(client: RawClient, bytes: Buffer): Promise<void> {
  const socket = (client.ws as unknown as { _socket: Socket })._socket;
  return new Promise((resolve) => {
    if (socket.write(bytes)) return resolve();
    const done = (): void => {
      socket.off('drain', done).off('close', done);
      resolve();
    };
    socket.on('drain', done).on('close', done);
  });
}
