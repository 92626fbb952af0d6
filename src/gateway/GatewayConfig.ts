import type { LogLevel } from '../cli/nodeConfig.ts';
import type { ServerJobOptions, ServerLimits, ServerTimings } from '../server/MatsSocketServerOptions.ts';
import type { DatabaseUrl } from '../store/database.ts';

/**
 * A gateway node's configuration, validated and with every default applied (docs/gateway.md §2 lists each field,
 * its default and its environment override). Produced by `loadGatewayConfig` from a file, or by
 * `resolveGatewayConfig` from a plain object.
 */
export interface GatewayConfig {
  /** Unique among running nodes and stable across restarts of this node. @default `<hostname>-<port>` */
  nodeName: string;
  /** The MatsSocket instance name shared by the nodes of a cluster; also the Mats application name. @default 'MatsSocket' */
  instanceName: string;
  /** @default 'info' */
  logLevel: LogLevel;
  listen: {
    /** Bind address. @default '127.0.0.1' */
    host: string;
    /** 0 picks a free port. @default 8080 */
    port: number;
    /** WebSocket path. @default '/matssocket' */
    path: string;
  };
  broker: {
    /** `amqp://…`/`amqps://…`, or `memory` for the in-process broker (no other process can reach it). */
    url: string;
    /** Prefix of every queue and of the pub/sub exchange (`<prefix>pubsub`). @default 'mats.' */
    queuePrefix: string;
    /** Concurrency of the node's own Mats stages (reply handler, terminators). @default the Mats layer's */
    concurrency: number | undefined;
  };
  database: {
    /** As given (for logs: redact it first). */
    url: string;
    /** Parsed. */
    parsed: DatabaseUrl;
    /** Pool size for MySQL/MariaDB and PostgreSQL. @default 10 */
    poolMax: number;
  };
  /** Client → backend: MatsSocket endpoints forwarding to Mats endpoints. @default [] */
  endpoints: readonly GatewayEndpoint[];
  /** Backend → client: Mats endpoints the node consumes, each pushing to one client terminator. @default [] */
  terminators: readonly GatewayTerminator[];
  /** Who may subscribe to which topics; a topic no rule matches is refused. @default [] (no topics) */
  topics: readonly TopicRule[];
  /** Backend → topic subscribers: the Mats endpoint the node consumes to publish. @default undefined (none) */
  publish: { from: string } | undefined;
  /** The server's protocol limits, passed through (docs/security.md, "Limits and their defaults"). @default {} (the server's defaults) */
  limits: ServerLimits;
  /** The server's delays and timeouts, passed through. @default {} */
  timings: ServerTimings;
  /** The server's scheduled jobs, passed through. @default {} */
  jobs: ServerJobOptions;
  /** Origins whose pages may open a WebSocket. @default undefined (all) */
  allowedOrigins: readonly string[] | undefined;
  /** Topic replay retention, ms; 0 turns replay off. @default undefined (the server's 300000) */
  topicReplayRetentionMs: number | undefined;
  /** Node reply queues (the server's `nodeReplyQueues`), 0..64. @default undefined (the server's 8) */
  nodeReplyQueues: number | undefined;
  /** Grace period of a graceful stop, ms. @default 5000 */
  stopGraceMs: number;
  admin: {
    /** Bearer token of the admin API; unset: no admin API. */
    token: string | undefined;
    /** Host names accepted in `Host` besides the loopback names and the bind address. @default [] */
    allowedHosts: readonly string[];
  };
  serverApi: {
    /** Key the backends' HTTP calls to the server API carry; unset: no server API. */
    key: string | undefined;
  };
  auth: GatewayAuthConfig;
}

/** The two ways a forward is sent (docs/protocol.md §8.6). */
export type ForwardMode = 'forward-essential' | 'forward-nonessential';

/** A MatsSocket endpoint that forwards every client SEND/REQUEST to one Mats endpoint. */
export interface GatewayEndpoint {
  /** The MatsSocket endpoint id clients address. */
  id: string;
  /** The Mats endpoint id forwarded to (its queues are `<queuePrefix><to>` and `…:i`). */
  to: string;
  /** @default 'forward-essential' */
  mode: ForwardMode;
  /**
   * Only with `forward-nonessential`: the forward's time to live, ms (a hop not consumed in time is dropped).
   * @default undefined (the client's request timeout + 15 s; none for SENDs)
   */
  timeoutMs: number | undefined;
  /** Who may use the endpoint (others are NACKed). @default undefined (every authenticated user) */
  allow: AllowRule | undefined;
}

/** A client terminator a backend may push to, through the Mats endpoint `from` that the node consumes. */
export interface GatewayTerminator {
  /** The client-side terminator id the message is sent to. */
  id: string;
  /** The Mats endpoint id backends send `{sessionId | userId, message}` to. */
  from: string;
}

/** Topics matching `pattern` may be subscribed to by the users `allow` admits. */
export interface TopicRule {
  /**
   * `.`-separated segments: literal text, `*` inside a segment (any characters but `.`), `**` as the last segment
   * (one or more segments), or a whole-segment placeholder `{userId}` / `{claims.<name>}` that must equal the
   * subscriber's value.
   */
  pattern: string;
  /** @default undefined (every authenticated user) */
  allow: AllowRule | undefined;
}

/** Admits a principal whose userId is listed, OR who has one of the roles, OR one of whose claims has a listed value. */
export interface AllowRule {
  users: readonly string[];
  roles: readonly string[];
  /** Claim name → accepted values (a claim that is an array matches when any element does). */
  claims: Readonly<Record<string, readonly (string | number | boolean)[]>>;
}

/** JWS algorithms a JWT may be signed with (never `none`). */
export { JWT_ALGORITHMS, type JwtAlgorithm } from '../server/auth/jwt/JwtAuthenticationOptions.ts';
import type { JwtAlgorithm } from '../server/auth/jwt/JwtAuthenticationOptions.ts';

/** Bearer JWTs, verified with a shared secret, a public key, or a JWKS endpoint (exactly one). */
export interface JwtAuthConfig {
  type: 'jwt';
  algorithms: readonly JwtAlgorithm[];
  /** For HS256 (at least 32 characters). */
  secret?: string;
  /** For RS256 and ES256: SPKI PEM (`-----BEGIN PUBLIC KEY-----`). */
  publicKeyPem?: string;
  /** For RS256 and ES256: https (or http to a loopback host). */
  jwksUrl?: string;
  /** Accepted `iss` values. @default undefined (not checked) */
  issuer?: readonly string[];
  /** Accepted `aud` values. @default undefined (not checked) */
  audience?: readonly string[];
  /** @default 'sub' */
  userIdClaim: string;
  /** @default 'roles' */
  rolesClaim: string;
  /** Leeway for `exp`/`nbf`, seconds. @default 0 */
  clockToleranceSec: number;
}

/** Development only: the authorization value names the user; nothing is verified. */
export interface InsecureDevAuthConfig {
  type: 'insecure-dev';
  /** Lets it serve on a non-loopback address. @default false */
  allowInsecureNonLoopback: boolean;
}

export type GatewayAuthConfig = JwtAuthConfig | InsecureDevAuthConfig;
