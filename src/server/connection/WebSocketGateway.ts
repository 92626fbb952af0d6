import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type PerMessageDeflateOptions, type WebSocket } from 'ws';
import { randomId } from '../../util/ids.ts';
import type { AuthenticationPlugin, ConnectionInfo } from '../auth/AuthenticationPlugin.ts';
import { normalizeOrigin, type ResolvedServerOptions } from '../MatsSocketServerOptions.ts';
import type { ServerCore } from '../ServerCore.ts';
import type { ConnectionLimit } from '../ServerMetrics.ts';
import { MatsSocketConnection } from './MatsSocketConnection.ts';
import { PreHelloGate } from './PreHelloGate.ts';
import { UnauthenticatedConnections } from './UnauthenticatedConnections.ts';

export const MATSSOCKET_SUBPROTOCOL = 'matssocket';

const STOPPING_REASON = 'This server is going down, perform a (re)connect to another instance.';

interface PendingUpgrade {
  info: ConnectionInfo;
  plugin: AuthenticationPlugin;
  headers: Record<string, string | string[]>;
}

/** What a connection holds until its session is established: its slot and its socket byte budget. */
interface PreHello {
  conn?: MatsSocketConnection;
  /**
   * What `ws` is to read: the socket, or a gate in front of it. Called right before `ws` takes it (reading starts
   * here).
   */
  socketForWs: (head: Buffer) => { wsSocket: Duplex; wsHead: Buffer };
  /** Gives back the slot and stops counting bytes (idempotent). */
  end: () => void;
}

/**
 * The WebSocket side of a node (docs/protocol.md 2.1): `ws` in `noServer` mode on the `upgrade` event of one or more HTTP
 * servers, so the same HTTP server keeps serving its other paths. Selects the subprotocol `matssocket` (refuses
 * 400 without it), runs the plugin's `checkOrigin` (403) and `checkHandshake` (403, may add headers to the 101),
 * negotiates permessage-deflate, and hands each socket to a {@link MatsSocketConnection}.
 *
 * Until a connection's session is established its peer is unauthenticated, and what it can make the node hold
 * is bounded here: the `allowedOrigins` policy (403), a slot among `maxUnauthenticatedConnections` (total and per
 * IP, else 503), `preHelloMaxSocketBytes` read from the socket and `preHelloMaxCompressedBytes` of deflated
 * payload (then 1009). `ws` fixes `maxPayload` per server, so our own counts are what stop a large or
 * highly compressed pre-HELLO frame before it is buffered or inflated whole.
 */
export class WebSocketGateway {
  readonly #core: ServerCore;
  readonly #wss: WebSocketServer;
  readonly #pending = new WeakMap<IncomingMessage, PendingUpgrade>();
  readonly #connections = new Set<MatsSocketConnection>();
  readonly #detachers: (() => void)[] = [];
  readonly #unauthenticated: UnauthenticatedConnections;

  constructor(core: ServerCore) {
    this.#core = core;
    this.#unauthenticated = new UnauthenticatedConnections({
      total: core.options.limits.maxUnauthenticatedConnections,
      perIp: core.options.limits.maxUnauthenticatedConnectionsPerIp,
    });
    this.#wss = new WebSocketServer({
      noServer: true,
      // Our code enforces both limits (20 KiB before HELLO, 50 MiB after) and closes 1009 with a reason; ws's own
      // check, a little higher, stops larger frames by their header before they are buffered (without a reason).
      maxPayload: core.options.limits.maxFrameBytes + 1024 * 1024,
      perMessageDeflate: compressionOf(core.options.compression),
      clientTracking: false,
      handleProtocols: (protocols) =>
        protocols.has(MATSSOCKET_SUBPROTOCOL) ? MATSSOCKET_SUBPROTOCOL : false,
    });
    this.#wss.on('headers', (headers, request) => {
      const pending = this.#pending.get(request);
      if (!pending) return;
      for (const [name, value] of Object.entries(pending.headers)) {
        for (const v of Array.isArray(value) ? value : [value]) headers.push(`${name}: ${v}`);
      }
    });
  }

  /** The live connections of this node (with or without a session). */
  get connections(): ReadonlySet<MatsSocketConnection> {
    return this.#connections;
  }

  /** Serves WebSocket upgrades on `path` (the query string is ignored) of `server`. */
  attach(server: HttpServer, path: string): void {
    const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
      const pathname = new URL(request.url ?? '/', 'http://localhost').pathname;
      if (pathname !== path) {
        // Another listener may serve it; if we are alone, nobody will.
        if (server.listenerCount('upgrade') === 1) refuse(socket, 404, 'Not Found');
        return;
      }
      void this.#handleUpgrade(request, socket, head);
    };
    server.on('upgrade', onUpgrade);
    this.#detachers.push(() => server.off('upgrade', onUpgrade));
  }

  async #handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const core = this.#core;
    socket.on('error', (err) => core.logger.debug({ err }, 'upgrade socket error'));
    const offered = (request.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim());
    if (!offered.includes(MATSSOCKET_SUBPROTOCOL)) {
      refuse(socket, 400, 'Bad Request');
      return;
    }
    const allowed = core.options.allowedOrigins;
    const origin = request.headers.origin;
    if (allowed && origin !== undefined && !allowed.has(normalizeOrigin(origin) ?? '')) {
      core.metrics.limitTripped('origin');
      core.logger.info({ origin }, 'WebSocket upgrade refused: Origin not in allowedOrigins');
      refuse(socket, 403, 'Forbidden');
      return;
    }
    const preHello = this.#admit(request, socket);
    if (!preHello) return;
    const info: ConnectionInfo = {
      connectionId: randomId(16),
      request,
      origin: request.headers.origin,
      remoteAddress: request.socket.remoteAddress,
      originatingAddress: firstForwardedFor(request),
    };
    let plugin: AuthenticationPlugin;
    const headers: Record<string, string | string[]> = {};
    try {
      plugin = core.options.authenticationPlugin(info);
      if (plugin.checkOrigin && !(await plugin.checkOrigin(info.origin))) {
        refuse(socket, 403, 'Forbidden');
        return;
      }
      if (plugin.checkHandshake && !(await plugin.checkHandshake(request, headers))) {
        refuse(socket, 403, 'Forbidden');
        return;
      }
    } catch (err) {
      core.logger.info({ err }, 'WebSocket handshake refused: the authentication plugin threw');
      refuse(socket, 403, 'Forbidden');
      return;
    }
    if (socket.destroyed) return;
    this.#pending.set(request, { info, plugin, headers });
    const { wsSocket, wsHead } = preHello.socketForWs(head);
    this.#wss.handleUpgrade(request, wsSocket, wsHead, (ws) => void this.#onOpen(ws, info, plugin, preHello));
  }

  /**
   * Takes an unauthenticated slot (or refuses 503) and bounds what the peer can send until its session is
   * established: socket bytes, and with permessage-deflate possible also compressed bytes, through a
   * {@link PreHelloGate} that `ws` reads instead of the socket. Without compression a byte count on the socket
   * does (no extra stream layer): its chunk that passes the budget is the last one `ws` gets.
   */
  #admit(request: IncomingMessage, socket: Duplex): PreHello | undefined {
    const core = this.#core;
    if (socket.destroyed) return undefined;
    const ip = request.socket.remoteAddress ?? '';
    const release = this.#unauthenticated.admit(ip);
    if (typeof release === 'string') {
      core.metrics.limitTripped(release);
      core.logger.info(
        { ip, limit: release },
        'WebSocket upgrade refused: too many unauthenticated connections',
      );
      refuse(socket, 503, 'Service Unavailable');
      return undefined;
    }
    const limits = core.options.limits;
    let gate: PreHelloGate | undefined;
    let read = 0;
    const onViolation = (limit: ConnectionLimit, reason: string): void => {
      preHello.end();
      core.metrics.limitTripped(limit);
      const conn = preHello.conn;
      if (!conn) {
        socket.destroy();
        return;
      }
      conn.close(1009, reason);
      if (gate) {
        // The gate drops what comes in; the close frame goes out before the FIN.
        gate.end();
        return;
      }
      // Read no more (ws would buffer it); the close frame goes out before the FIN, then the socket is dropped.
      socket.pause();
      socket.end(() => socket.destroy());
    };
    const onData = (chunk: Buffer): void => {
      read += chunk.length;
      if (read > limits.preHelloMaxSocketBytes) {
        onViolation(
          'pre_hello_bytes',
          `More than ${limits.preHelloMaxSocketBytes} bytes received before HELLO was processed`,
        );
      }
    };
    const preHello: PreHello = {
      socketForWs: (head) => {
        if (!(core.options.compression && offersDeflate(request)) || !isNetSocket(socket)) {
          socket.on('data', onData);
          return { wsSocket: socket, wsHead: head };
        }
        gate = new PreHelloGate(
          socket,
          {
            maxSocketBytes: limits.preHelloMaxSocketBytes,
            maxCompressedBytes: limits.preHelloMaxCompressedBytes,
          },
          (limit, reason) => onViolation(limit, reason),
        );
        gate.feed(head);
        return { wsSocket: gate, wsHead: Buffer.alloc(0) };
      },
      end: () => {
        release();
        gate?.open();
        socket.off('data', onData);
        socket.off('close', preHello.end);
      },
    };
    socket.once('close', preHello.end);
    return preHello;
  }

  async #onOpen(
    ws: WebSocket,
    info: ConnectionInfo,
    plugin: AuthenticationPlugin,
    preHello: PreHello,
  ): Promise<void> {
    const core = this.#core;
    const conn = new MatsSocketConnection(ws, info, plugin, core, preHello.end);
    preHello.conn = conn;
    this.#connections.add(conn);
    ws.once('close', () => {
      // Keep it until its session action is done, so stop() can wait for it.
      void (conn.ended ?? Promise.resolve()).finally(() => this.#connections.delete(conn));
    });
    if (core.isStopping()) {
      conn.close(1012, STOPPING_REASON);
      return;
    }
    try {
      if (plugin.onOpen && !(await plugin.onOpen(info)))
        conn.close(1008, 'Refused by the authentication plugin (onOpen)');
    } catch (err) {
      conn.log.info({ err }, 'onOpen threw');
      conn.close(1008, 'The authentication plugin threw in onOpen');
    }
  }

  /** Stops serving upgrades on the attached HTTP servers. */
  detach(): void {
    for (const d of this.#detachers.splice(0)) d();
  }

  /** Closes the WebSocketServer (connections must have been closed before). */
  close(): Promise<void> {
    this.detach();
    return new Promise((resolve) => this.#wss.close(() => resolve()));
  }
}

function refuse(socket: Duplex, status: number, text: string): void {
  if (socket.destroyed) return;
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () =>
    socket.destroy(),
  );
}

/** Whether the client offers permessage-deflate (ws then negotiates it when compression is on). */
function offersDeflate(request: IncomingMessage): boolean {
  return (request.headers['sec-websocket-extensions'] ?? '').includes('permessage-deflate');
}

function isNetSocket(socket: Duplex): socket is Socket {
  return socket instanceof Socket;
}

/** ws's permessage-deflate settings; see `MatsSocketServerOptions.compression`. */
function compressionOf(compression: ResolvedServerOptions['compression']): PerMessageDeflateOptions | false {
  if (!compression) return false;
  return {
    serverNoContextTakeover: true,
    clientNoContextTakeover: true,
    threshold: compression.thresholdBytes,
  };
}

/**
 * The first address of `X-Forwarded-For` (the originating client, as the proxies in front report it), at most 256
 * characters; undefined without the header. Untrusted: the client may send the header itself.
 */
export function firstForwardedFor(request: IncomingMessage): string | undefined {
  const header = request.headers['x-forwarded-for'];
  const value = Array.isArray(header) ? header[0] : header;
  const first = value?.split(',')[0]?.trim();
  return first ? first.slice(0, 256) : undefined;
}
