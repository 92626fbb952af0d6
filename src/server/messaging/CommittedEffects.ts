import type { SessionRegistration, StoredOutMessage } from '../../store/storeTypes.ts';
import type { PreparedPublish } from '../topics/PreparedPublish.ts';

/**
 * The effects of a committed handling, to act on after the commit (see `AfterCommit`): pokes, rows to write from
 * memory, and broadcasts. Both directions produce them: the inbound path for a client message and its handler's
 * `server.send/request/publish`, the outbound path for a backend reply.
 */
export interface CommittedEffects {
  registrations: (SessionRegistration | null)[];
  publishes: PreparedPublish[];
  /**
   * Rows this commit stored already attempted by a connection of this node (`OutboxMessageInput.attemptBy`), by
   * session: that connection writes them from memory, with no poke, fetch or attempt mark. They are not in
   * `registrations`.
   */
  attempted?: ReadonlyMap<string, AttemptedRows>;
}

/** Rows stored already attempted by `connectionId`, to be written by it. */
export interface AttemptedRows {
  connectionId: string;
  rows: StoredOutMessage[];
}
