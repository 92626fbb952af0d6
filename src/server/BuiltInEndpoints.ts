import type { ResolvedServerOptions } from './MatsSocketServerOptions.ts';
import type { MatsSocketEndpointDefinition } from './messaging/EndpointTypes.ts';

interface PingPong {
  payload?: string;
  number?: number;
}

/** The ids of the built-in MatsSocket endpoints (docs/compat-test-server.md 5.3). */
export const BuiltInEndpointIds = {
  matsSocketPing: 'MatsSocket.matsSocketPing',
  matsPing: 'MatsSocket.matsPing',
} as const;

function pong(ping: PingPong | undefined, factor: number): PingPong {
  const out: PingPong = {};
  if (typeof ping?.payload === 'string') out.payload = ping.payload;
  if (typeof ping?.number === 'number') out.number = ping.number * factor;
  return out;
}

/**
 * Registers `MatsSocket.matsSocketPing` (insta-resolve `{payload, number × e}`, answered at once) and
 * `MatsSocket.matsPing` (forwards to the built-in backend endpoint `MatsSocket.<inst>.matsPing`, which replies
 * `{payload, number × π}`).
 */
export function registerBuiltInEndpoints(
  server: { defineEndpoint(definition: MatsSocketEndpointDefinition): void },
  options: ResolvedServerOptions,
): void {
  server.defineEndpoint({
    endpointId: BuiltInEndpointIds.matsSocketPing,
    kind: 'direct',
    immediateReplies: true,
    replyAdapter: undefined,
    incoming: (ctx) => ctx.resolve(pong(ctx.message as PingPong | undefined, Math.E)),
  });
  server.defineEndpoint({
    endpointId: BuiltInEndpointIds.matsPing,
    kind: 'endpoint',
    immediateReplies: false,
    replyAdapter: undefined,
    incoming: (ctx) => ctx.forwardEssential(`MatsSocket.${options.instanceName}.matsPing`, ctx.message ?? {}),
  });
}
