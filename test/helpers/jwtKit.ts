import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  exportJWK,
  exportSPKI,
  generateKeyPair,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose';
import {
  authenticated,
  invalidAuthentication,
  stillValid,
  type AuthenticationContext,
  type AuthenticationPlugin,
  type AuthenticationResult,
  type ConnectionInfo,
} from '../../src/server/auth/AuthenticationPlugin.ts';

/** A 32-byte HS256 secret (the least the plugin accepts). */
export const TEST_SECRET = 'test-secret-of-exactly-32-bytes!';

/** Epoch seconds, `deltaMs` from now (fractional: the tests need expiries shorter than a second). */
export function epochSec(deltaMs = 0, nowMs = Date.now()): number {
  return (nowMs + deltaMs) / 1000;
}

export interface TestKeyPair {
  alg: 'RS256' | 'ES256';
  kid: string;
  privateKey: CryptoKey;
  publicKeyPem: string;
  publicJwk: JWK;
}

/** A fresh key pair with its SPKI PEM and public JWK (carrying `kid` and `alg`). */
export async function testKeyPair(alg: 'RS256' | 'ES256', kid = `${alg}-key`): Promise<TestKeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicKeyPem: await exportSPKI(publicKey), publicJwk };
}

/** Signs `payload` with HS256 and the given secret (default {@link TEST_SECRET}). */
export function signHs256(payload: JWTPayload, secret = TEST_SECRET): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));
}

/** Signs `payload` with the key pair, its `kid` in the header. */
export function signWith(pair: TestKeyPair, payload: JWTPayload): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: pair.alg, kid: pair.kid }).sign(pair.privateKey);
}

/**
 * The server's side of one connection, as far as a plugin sees it: applies results the way the server does
 * (docs/protocol.md §7.2 step 8), so a test can drive a plugin frame by frame.
 */
export class FakeAuthContext implements AuthenticationContext {
  readonly connection: ConnectionInfo = {
    connectionId: 'test-connection',
    request: {} as ConnectionInfo['request'],
    origin: undefined,
    remoteAddress: '127.0.0.1',
  };
  sessionId: string | undefined = 'test-session';
  principal: unknown = undefined;
  userId: string | undefined;
  authorization: string | undefined;
  lastAuthenticatedTimestamp = 0;
  remoteAddress: string | undefined = '127.0.0.1';
  originatingAddress: string | undefined;

  setRemoteAddress(address: string): void {
    this.remoteAddress = address;
  }

  setOriginatingRemoteAddress(address: string): void {
    this.originatingAddress = address;
  }

  authenticated(principal: unknown, userId: string, allowedDebugOptions?: number): AuthenticationResult {
    return authenticated(principal, userId, allowedDebugOptions);
  }

  stillValid(): AuthenticationResult {
    return stillValid();
  }

  invalidAuthentication(reason: string): AuthenticationResult {
    return invalidAuthentication(reason);
  }

  /** One incoming frame carrying `value` (or the value in force): initial or re-evaluation, result applied. */
  async frame(plugin: AuthenticationPlugin, value?: string): Promise<AuthenticationResult> {
    const auth = value ?? this.authorization ?? '';
    const result =
      this.principal === undefined
        ? await plugin.initialAuthentication(this, auth)
        : await plugin.reevaluateAuthentication(this, auth, this.principal);
    this.apply(result, auth);
    return result;
  }

  /** The forwarder's check before delivering outbox messages (docs/protocol.md §8.13). */
  async outgoing(plugin: AuthenticationPlugin): Promise<AuthenticationResult> {
    const auth = this.authorization ?? '';
    const result = plugin.reevaluateAuthenticationForOutgoingMessage
      ? await plugin.reevaluateAuthenticationForOutgoingMessage(
          this,
          auth,
          this.principal,
          this.lastAuthenticatedTimestamp,
        )
      : await plugin.reevaluateAuthentication(this, auth, this.principal);
    this.apply(result, auth);
    return result;
  }

  apply(result: AuthenticationResult, value: string): void {
    if (result.kind === 'authenticated') {
      this.principal = result.principal;
      this.userId = result.userId;
    }
    this.authorization = value;
    if (result.kind !== 'invalid') this.lastAuthenticatedTimestamp = Date.now();
  }
}

/** A JSON Web Key Set served over loopback HTTP; `keys` and `status` may change between requests. */
export class JwksServer {
  keys: JWK[] = [];
  status = 200;
  requests = 0;
  readonly #server: Server;

  private constructor() {
    this.#server = createServer((_req, res) => {
      this.requests++;
      res.writeHead(this.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: this.keys }));
    });
  }

  static async start(keys: JWK[] = []): Promise<JwksServer> {
    const jwks = new JwksServer();
    jwks.keys = keys;
    await new Promise<void>((resolve) => jwks.#server.listen(0, '127.0.0.1', resolve));
    return jwks;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/.well-known/jwks.json`;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve, reject) => this.#server.close((err) => (err ? reject(err) : resolve())));
  }
}
