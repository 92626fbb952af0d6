/** The part of a Node socket that {@link coalesceWrites} uses. */
export interface CorkableStream {
  write(...args: never[]): boolean;
  cork(): void;
  uncork(): void;
}

/**
 * Makes every write to `stream` within one tick go out in a single `writev` (one syscall): the stream is corked at
 * the first write of a tick and uncorked on `process.nextTick`, i.e. before any I/O, so no latency is added.
 *
 * Why: amqplib writes each frame (a publish, an ack) with its own `socket.write`, which with Nagle off is one
 * syscall each; on a loaded machine the loopback `write` is the biggest single cost of a round trip. Deliveries
 * arrive in batches, and the acks and publishes they cause are written in the same tick, so they coalesce.
 * Backpressure is unchanged: corked writes count against the stream's high-water mark and `drain` follows the
 * flush.
 */
export function coalesceWrites(stream: CorkableStream): void {
  const write = stream.write.bind(stream);
  let corked = false;
  const uncork = (): void => {
    corked = false;
    stream.uncork();
  };
  stream.write = (...args: never[]): boolean => {
    if (!corked) {
      corked = true;
      stream.cork();
      process.nextTick(uncork);
    }
    return write(...args);
  };
}

/**
 * The socket under an amqplib `ChannelModel` (`model.connection.stream`, not public API), if it can be corked.
 * @internal
 */
export function amqpSocketOf(model: unknown): CorkableStream | undefined {
  const stream = (model as { connection?: { stream?: Partial<CorkableStream> } } | undefined)?.connection
    ?.stream;
  if (
    stream &&
    typeof stream.write === 'function' &&
    typeof stream.cork === 'function' &&
    typeof stream.uncork === 'function'
  )
    return stream as CorkableStream;
  return undefined;
}
