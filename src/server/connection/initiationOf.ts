import type { DebugInfo } from '../../protocol/envelopes.ts';

/** When and where a server-initiated SEND/REQUEST/PUB was created. */
export interface Initiation {
  ts: number;
  nodeName: string;
}

/**
 * The creation stamps (`smcts`/`smcnn`, docs/protocol.md §5) of server-initiated envelopes about to be written,
 * by envelope identity. The `debug` field that carries them is cut to the session's debug options before the write,
 * so the writer notes them here first and the envelope recorder reads them for its message event. Weak: nothing is
 * kept once the envelope is gone.
 */
const initiations = new WeakMap<object, Initiation>();

/** Notes `created`'s stamps for `envelope` (the object that will be written). */
export function markInitiated(envelope: object, created: DebugInfo | undefined): void {
  if (typeof created?.smcts === 'number' && typeof created.smcnn === 'string') {
    initiations.set(envelope, { ts: created.smcts, nodeName: created.smcnn });
  }
}

/** The stamps noted for `envelope`, if any. */
export function initiationOf(envelope: object): Initiation | undefined {
  return initiations.get(envelope);
}
