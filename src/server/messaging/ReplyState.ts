/**
 * The state a forwarded client REQUEST carries through the backend to the reply handler (docs/protocol.md §8.6
 * step 2): written by the inbound `ForwardInitiator`, read by the outbound `ReplyHandler`.
 */
export interface ReplyState {
  /** Session id. */
  sid: string;
  cmid: string;
  /** The MatsSocket endpoint id (its reply adapter runs on the reply). */
  eid: string;
  /** The client's traceId. */
  tid: string;
  /** Resolved debug options of the REQUEST. */
  rd: number;
  /** Client message received, timestamp and node. */
  cmrts: number;
  cmrnn: string;
  /** Backend message sent, timestamp. */
  mmsts: number;
}
