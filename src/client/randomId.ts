const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

interface CryptoLike {
  getRandomValues<T extends Uint8Array>(array: T): T;
}

/**
 * A random alphanumeric id of `length` characters (default 6), for trace ids and the like. Uses
 * `globalThis.crypto.getRandomValues` (browsers, Node 20), falling back to `Math.random` where it is missing: these
 * ids need to be unlikely to collide, not unguessable. Not `src/util/ids.ts`, which imports `node:crypto`.
 */
export function randomId(length = 6): string {
  const crypto = (globalThis as { crypto?: CryptoLike }).crypto;
  const bytes = new Uint8Array(length);
  if (crypto?.getRandomValues) crypto.getRandomValues(bytes);
  else for (let i = 0; i < length; i++) bytes[i] = Math.floor(Math.random() * 256);
  let id = '';
  // 256 % 62 != 0 gives a slight bias towards the first characters; irrelevant for these ids.
  for (const byte of bytes) id += alphabet[byte % alphabet.length];
  return id;
}
