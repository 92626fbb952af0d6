import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { ConnectionLimit } from '../ServerMetrics.ts';

export interface PreHelloGateLimits {
  /** `limits.preHelloMaxSocketBytes`: every byte read, framing included. */
  maxSocketBytes: number;
  /** `limits.preHelloMaxCompressedBytes`: payload bytes of permessage-deflate messages. */
  maxCompressedBytes: number;
}

/**
 * Sits between a TCP socket and `ws` on connections that may use permessage-deflate, and decides which bytes
 * `ws` gets before the session is established. `ws` inflates a compressed message whole, up to its server-wide
 * `maxPayload` (50 MiB), before our code sees it: about 1000 times the compressed size, so a 51 KB frame cost
 * 52 MB. The gate reads the frame headers itself and counts the payload of compressed messages; once a peer
 * passes a limit, the chunk that did it and everything after is dropped instead of handed on, so nothing it sent
 * past the limit is buffered or inflated. After {@link open} it passes everything through unparsed.
 *
 * Writes go to the socket in batches (`_writev`); a write's callback runs when the socket flushed it, so `ws`'s
 * `bufferedAmount` still counts everything not yet in the kernel.
 */
export class PreHelloGate extends Duplex {
  readonly #socket: Socket;
  readonly #limits: PreHelloGateLimits;
  readonly #onViolation: (limit: ConnectionLimit, reason: string) => void;
  #gating = true;
  #violated = false;
  #read = 0;
  #compressed = 0;
  /** Frame parsing state: header bytes gathered so far, payload bytes of the current frame still to come. */
  readonly #header = Buffer.alloc(14);
  #headerHave = 0;
  #payloadLeft = 0;
  #frameCompressed = false;
  #messageCompressed = false;

  constructor(
    socket: Socket,
    limits: PreHelloGateLimits,
    onViolation: (limit: ConnectionLimit, reason: string) => void,
  ) {
    super({ allowHalfOpen: false, decodeStrings: false });
    this.#socket = socket;
    this.#limits = limits;
    this.#onViolation = onViolation;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  /** Feeds the bytes the HTTP parser read past the upgrade request. */
  feed(head: Buffer): void {
    if (head.length > 0) this.#onData(head);
  }

  /** The session is established: pass everything through from now on. */
  open(): void {
    this.#gating = false;
  }

  setNoDelay(noDelay?: boolean): this {
    this.#socket.setNoDelay(noDelay);
    return this;
  }

  setTimeout(ms: number): this {
    this.#socket.setTimeout(ms);
    return this;
  }

  override _read(): void {
    this.#socket.resume();
  }

  override _write(
    chunk: Buffer | string,
    encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    this.#socket.write(chunk, encoding, callback);
  }

  override _writev(
    chunks: { chunk: Buffer | string; encoding: BufferEncoding }[],
    callback: (error?: Error | null) => void,
  ): void {
    const socket = this.#socket;
    socket.cork();
    chunks.forEach(({ chunk, encoding }, i) =>
      i === chunks.length - 1 ? socket.write(chunk, encoding, callback) : socket.write(chunk, encoding),
    );
    socket.uncork();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#socket.end(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#socket.destroy();
    callback(error);
  }

  #onData(chunk: Buffer): void {
    if (this.#violated) return;
    if (this.#gating) {
      const violation = this.#check(chunk);
      if (violation !== undefined) {
        this.#violated = true;
        this.#onViolation(...violation);
        return;
      }
    }
    if (!this.push(chunk)) this.#socket.pause();
  }

  /** Counts `chunk` and parses its frame headers; the limit and a reason when one is passed. */
  #check(chunk: Buffer): [ConnectionLimit, string] | undefined {
    let at = 0;
    while (at < chunk.length) {
      if (this.#payloadLeft > 0) {
        const n = Math.min(this.#payloadLeft, chunk.length - at);
        this.#payloadLeft -= n;
        at += n;
        continue;
      }
      this.#header[this.#headerHave++] = chunk[at++]!;
      const length = this.#headerLength();
      if (length === undefined || this.#headerHave < length) continue;
      this.#headerHave = 0;
      const payload = this.#startFrame();
      if (this.#frameCompressed) {
        this.#compressed += payload;
        if (this.#compressed > this.#limits.maxCompressedBytes) {
          return [
            'pre_hello_compressed_bytes',
            `More than ${this.#limits.maxCompressedBytes} compressed bytes received before HELLO was processed`,
          ];
        }
      }
      this.#payloadLeft = payload;
    }
    this.#read += chunk.length;
    if (this.#read > this.#limits.maxSocketBytes) {
      return [
        'pre_hello_bytes',
        `More than ${this.#limits.maxSocketBytes} bytes received before HELLO was processed`,
      ];
    }
    return undefined;
  }

  /** RFC 6455 5.2: 2 bytes, then a 2 or 8 byte length, then the 4 byte mask of client frames. */
  #headerLength(): number | undefined {
    if (this.#headerHave < 2) return undefined;
    const b1 = this.#header[1]!;
    const len7 = b1 & 0x7f;
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
  }

  /** Reads the complete header: sets the compression state and returns the payload length. */
  #startFrame(): number {
    const h = this.#header;
    const opcode = h[0]! & 0x0f;
    const len7 = h[1]! & 0x7f;
    // A 64-bit length past 2^53 is nonsense; Number() of it is only ever compared against limits.
    const payload = len7 === 126 ? h.readUInt16BE(2) : len7 === 127 ? Number(h.readBigUInt64BE(2)) : len7;
    if (opcode === 0x1 || opcode === 0x2) this.#messageCompressed = (h[0]! & 0x40) !== 0;
    this.#frameCompressed = opcode < 0x8 && this.#messageCompressed;
    return payload;
  }
}
