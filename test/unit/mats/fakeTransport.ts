import type { Transport } from '../../../src/broker/Transport.ts';

/** A Transport stand-in for unit tests that never touch a broker. */
export const fakeTransport = {
  name: 'fake',
  state: 'idle',
  publish: () => Promise.resolve(),
  consume: () => ({ ready: Promise.resolve(), cancel: () => Promise.resolve() }),
} as unknown as Transport;
