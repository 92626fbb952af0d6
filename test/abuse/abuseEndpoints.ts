import type { MatsFactory } from '../../src/mats/MatsFactory.ts';
import type { MatsSocketServer } from '../../src/server/MatsSocketServer.ts';

/** What the echo endpoints reply: the request's id and the node whose backend ran it. */
export interface AbuseEchoReply {
  id: string;
  node: string;
}

/** The endpoint ids of the abuse suite. */
export const AbuseEndpoints = {
  /** REQUEST → forwardEssential → backend echo → RESOLVE `{ id, node }`: the good client's whole pipeline. */
  echo: 'Abuse.echo',
  /** REQUEST → forwardNonessential (TTL from the client's `to`) → backend echo. */
  nonessential: 'Abuse.nonessential',
  /** SEND whose handler does nothing: ACK after the inbox write, no broker traffic. */
  ack: 'Abuse.ack',
  /** SEND → forwardEssential → a backend terminator (the client's `tid` becomes the flow's traceId). */
  forwardSend: 'Abuse.forwardSend',
} as const;

/** Registers the MatsSocket endpoints of {@link AbuseEndpoints} and their backend Mats endpoints. */
export function registerAbuseEndpoints(server: MatsSocketServer, factory: MatsFactory): void {
  factory.single<AbuseEchoReply, { id?: unknown }>('Abuse.backend.echo', (_ctx, msg) => ({
    id: String(msg?.id),
    node: factory.options.nodeName,
  }));
  factory.terminator<unknown, unknown>('Abuse.backend.sink', () => undefined);
  server.endpoint(AbuseEndpoints.echo, {
    incoming: (ctx) => ctx.forwardEssential('Abuse.backend.echo', ctx.message),
  });
  server.endpoint(AbuseEndpoints.nonessential, {
    incoming: (ctx) => ctx.forwardNonessential('Abuse.backend.echo', ctx.message),
  });
  server.terminator(AbuseEndpoints.ack, () => undefined);
  server.terminator(AbuseEndpoints.forwardSend, (ctx) =>
    ctx.forwardEssential('Abuse.backend.sink', ctx.message),
  );
}
