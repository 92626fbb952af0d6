import type { SessionInfo } from '../store/storeTypes.ts';

/** A stored session as the operator APIs (admin API, server API) list it: readable names for the store's fields. */
export interface SessionSummary {
  sessionId: string;
  userId: string;
  appName: string;
  appVersion: string;
  clientLib: string;
  /** The node holding it; absent while no node does (the client is away). */
  nodeName?: string;
  createdTimestamp: number;
  livelinessTimestamp: number;
}

export function sessionSummaryOf(s: SessionInfo): SessionSummary {
  return {
    sessionId: s.id,
    userId: s.uid,
    appName: s.an,
    appVersion: s.av,
    clientLib: s.clv,
    ...(s.nn !== undefined ? { nodeName: s.nn } : {}),
    createdTimestamp: s.scts,
    livelinessTimestamp: s.slts,
  };
}
