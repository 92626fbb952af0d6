import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type PerMessageDeflateOptions, type WebSocket } from 'ws';
import { randomId } from '../../util/ids.ts';
import type { AuthenticationPlugin, ConnectionInfo } from '../auth/AuthenticationPlugin.ts';
import type { ResolvedServerOptions } from '../MatsSocketServerOptions.ts';
import type { ServerCore } from '../ServerCore.ts';
import { MatsSocketConnection } from './MatsSocketConnection.ts';

export const MATSSOCKET_SUBPROTOCOL = 'matssocket';

const STOPPING_REASON = 'This server is going down, perform a (re)connect to another instance.';

interface PendingUpgrade {
  info: ConnectionInfo;
  plugin: AuthenticationPlugin;
  headers: Record<string, string | string[]>;
}

/**
 * The WebSocket side of a node (docs/protocol.md 2.1): `ws` in `noServer` mode on the `upgrade` event of one or more HTTP
 * servers, so the same HTTP server keeps serving its other paths. Selects the subprotocol `matssocket` (refuses
 * 400 without it), runs the plugin's `checkOrigin` (403) and `checkHandshake` (403, may add headers to the 101),
 * negotiates permessage-deflate, and hands each socket to a {@link MatsSocketConnection}.
 */
export class WebSocketGateway {
  readonly #core: ServerCore;
  readonly #wss: WebSocketServer;
  readonly #pending = new WeakMap<IncomingMessage, PendingUpgrade>();
  readonly #connections = new Set<MatsSocketConnection>();
  readonly #detachers: (() => void)[] = [];

  constructor(core: ServerCore) {
    this.#core = core;
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
    const info: ConnectionInfo = {
      connectionId: randomId(16),
      request,
      origin: request.headers.origin,
      remoteAddress: request.socket.remoteAddress,
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
    this.#wss.handleUpgrade(request, socket, head, (ws) => void this.#onOpen(ws, info, plugin));
  }

  async #onOpen(ws: WebSocket, info: ConnectionInfo, plugin: AuthenticationPlugin): Promise<void> {
    const core = this.#core;
    const conn = new MatsSocketConnection(ws, info, plugin, core);
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

/** ws's permessage-deflate settings; see `MatsSocketServerOptions.compression`. */
function compressionOf(compression: ResolvedServerOptions['compression']): PerMessageDeflateOptions | false {
  if (!compression) return false;
  return {
    serverNoContextTakeover: true,
    clientNoContextTakeover: true,
    threshold: compression.thresholdBytes,
  };
}
