import type { MatsSocketEndpointDefinition } from '../messaging/EndpointTypes.ts';

/**
 * A registered MatsSocket endpoint, as `getEndpoints()` reports it (the reference's `getMatsSocketEndpoints()`):
 * `forward` (`server.endpoint`: its incoming handler forwards to a Mats endpoint), `direct` (`directEndpoint`:
 * settles requests itself) or `terminator` (never replies).
 */
export interface EndpointInfo {
  endpointId: string;
  kind: 'forward' | 'direct' | 'terminator';
  /** The replies of a `forward` endpoint pass a reply adapter. */
  hasReplyAdapter: boolean;
}

/** The endpoints, sorted by id. */
export function endpointInfos(endpoints: Iterable<MatsSocketEndpointDefinition>): EndpointInfo[] {
  return [...endpoints]
    .map((e) => ({
      endpointId: e.endpointId,
      kind: e.kind === 'endpoint' ? ('forward' as const) : e.kind,
      hasReplyAdapter: e.replyAdapter !== undefined,
    }))
    .sort((a, b) => (a.endpointId < b.endpointId ? -1 : a.endpointId > b.endpointId ? 1 : 0));
}
