import { MessageIdAlreadyExistsError } from '../../errors.ts';
import type { C2SHello } from '../../protocol/envelopes.ts';
import { randomId } from '../../util/ids.ts';
import type { MatsSocketConnection } from './MatsSocketConnection.ts';
import { claimPendingResume } from './PendingResumes.ts';
import { resumeCommitterOf, type ResumeResult } from './ResumeCommitter.ts';

/** Close reasons the official clients and test suites look for (substrings "same MatsSocketSessionId", "does not match"). */
/**
 * The close code of a HELLO the store could not serve (an outage: a database restart, a failover). The protocol
 * names 1011, but every client (ours and the official ones) treats 1011 as the end of the session and rejects
 * everything outstanding, so an outage would lose the client's messages. 1012 (service restart) makes every
 * client reconnect, with backoff, and resume the same session once the store answers again.
 */
const STORE_FAILURE_CLOSE = 1012;

export const HelloReasons = {
  takeoverLocal:
    'Cannot have two MatsSockets with the same MatsSocketSessionId - closing the previous (from local node)',
  takeoverRemote:
    'Cannot have two MatsSockets with the same MatsSocketSessionId - closing the previous (from remote node)',
  sessionGone: 'HELLO from client asked for reconnect, but given MatsSocketSessionId was gone.',
  wrongUser: 'UserId of existing SessionId does not match currently logged in user.',
  tooManySessions: 'Too many sessions for resolved userId',
  storeFailure: 'Could not establish Session information in permanent storage; reconnect',
} as const;

const SESSION_ID_ATTEMPTS = 5;

/**
 * HELLO (docs/protocol.md 8.1 new session, 8.2 resume with takeover, 8.3 wrong user, 8.4 unknown session). Returns
 * false when the connection was closed. On success the session is bound, WELCOME is the first frame written, and
 * the local forwarder is poked.
 */
export async function handleHello(conn: MatsSocketConnection, hello: C2SHello): Promise<boolean> {
  conn.helloSeen = true;
  const core = conn.core;
  const userId = conn.auth.userId!;
  conn.clientLib = hello.clv.slice(0, core.options.limits.maxClientLibLength);
  conn.appName = hello.an;
  conn.appVersion = hello.av;
  return hello.sid === undefined
    ? newSession(conn, hello, userId)
    : resumeSession(conn, hello, hello.sid, userId);
}

async function newSession(conn: MatsSocketConnection, hello: C2SHello, userId: string): Promise<boolean> {
  const core = conn.core;
  for (let attempt = 1; ; attempt++) {
    const sessionId = randomId(16);
    if (core.registry.get(sessionId)) continue;
    // Local entry first: a poke arriving as soon as the row exists must find the session here.
    core.registry.set(sessionId, conn);
    let registered: boolean;
    try {
      // Count and insert atomically (serialized per user cluster-wide): separate calls let concurrent HELLOs all
      // pass the count.
      const outcome = await core.store.registerNewSessionWithinUserLimit(
        {
          sessionId,
          userId,
          connectionId: conn.connectionId,
          clientLib: conn.clientLib,
          appName: conn.appName,
          appVersion: conn.appVersion,
        },
        core.options.limits.maxSessionsPerUser,
      );
      registered = outcome.registered;
    } catch (err) {
      core.registry.remove(sessionId, conn);
      if (err instanceof MessageIdAlreadyExistsError && attempt < SESSION_ID_ATTEMPTS) continue;
      conn.log.warn({ err }, 'HELLO: could not register the new session');
      conn.close(STORE_FAILURE_CLOSE, HelloReasons.storeFailure, 'none');
      return false;
    }
    if (!registered) {
      core.registry.remove(sessionId, conn);
      core.metrics.inboundLimit('maxSessionsPerUser');
      conn.close(1008, HelloReasons.tooManySessions, 'none');
      return false;
    }
    conn.bindSession(sessionId, 'NEW', userId);
    if (!conn.established) return false;
    await conn.writeEnvelopes([
      { t: 'WELCOME', sid: sessionId, ...(hello.tid !== undefined ? { tid: hello.tid } : {}) },
    ]);
    core.pokeForwarder(sessionId);
    return conn.established;
  }
}

/**
 * Resume (8.2). The store verifies the user (8.3), the session's existence (8.4) and the per-user cap in the same
 * transaction that re-registers the session, batched with the other resumes of this node. Only then is anything of
 * the session touched here: the local takeover (4003 to the connection holding it on this node) comes AFTER that
 * verification, so a HELLO naming another user's `sid` is refused with 1008 and changes nothing. The takeover still
 * happens before WELCOME, which is all the protocol asks.
 */
async function resumeSession(
  conn: MatsSocketConnection,
  hello: C2SHello,
  sessionId: string,
  userId: string,
): Promise<boolean> {
  const core = conn.core;
  const release = claimPendingResume(core, sessionId, conn);
  let result: ResumeResult;
  try {
    result = await resumeCommitterOf(core).submit({
      sessionId,
      userId,
      connectionId: conn.connectionId,
      clientLib: conn.clientLib,
      appName: conn.appName,
      appVersion: conn.appVersion,
    });
    if (result.kind !== 'resumed') {
      refuseResume(conn, sessionId, result);
      return false;
    }
    if (!conn.active) {
      // Gone while in the store (client left, or a later takeover closed it): undo, guarded by connection id.
      conn.bindSession(sessionId, 'RECONNECT', userId);
      return false;
    }
  } finally {
    release();
  }
  const previousRegistration = result.previous;
  // A HELLO of this session racing on this node, or the connection that held it here: replaced.
  const previousLocal = core.registry.set(sessionId, conn);
  if (previousLocal) previousLocal.close(4003, HelloReasons.takeoverLocal);
  try {
    // Remote takeover: the notice goes out before WELCOME, so the old connection gets 4003 first.
    if (previousRegistration && previousRegistration.nodename !== core.options.nodeName) {
      await core
        .sendCloseWs(previousRegistration.nodename, sessionId, previousRegistration.connectionId)
        .catch((err: unknown) =>
          conn.log.warn({ err, sessionId }, 'HELLO: could not send CloseWS to the previous node'),
        );
    }
    // The resume transaction unmarked already; a forward round of the replaced local connection still running is
    // waited for, so nothing it marks stays marked.
    if (previousLocal) {
      await core.forwarderIdle(sessionId);
      await core.store.outboxMessagesUnmarkAttemptedDelivery(sessionId);
    }
  } catch (err) {
    conn.log.warn({ err, sessionId }, 'HELLO: could not unmark attempted outbox messages');
    core.registry.remove(sessionId, conn);
    void core.store.deregisterSessionFromThisNode(sessionId, conn.connectionId).catch(() => undefined);
    conn.close(STORE_FAILURE_CLOSE, HelloReasons.storeFailure, 'none');
    return false;
  }
  conn.bindSession(sessionId, 'RECONNECT', userId);
  if (!conn.established) return false;
  await conn.writeEnvelopes([
    {
      t: 'WELCOME',
      sid: sessionId,
      ...(hello.tid !== undefined ? { tid: hello.tid } : {}),
      desc: previousLocal ? 'reconnected - existing local' : 'reconnected - existing in store',
    },
  ]);
  // After a local takeover the outbox read in the resume transaction may predate the old forwarder's last round.
  core.pokeForwarder(sessionId, previousLocal ? undefined : result.outbox);
  return conn.established;
}

/** Closes a refused resume; the session itself is not touched (`none`), whoever it belongs to. */
function refuseResume(
  conn: MatsSocketConnection,
  sessionId: string,
  result: Exclude<ResumeResult, { kind: 'resumed' }>,
): void {
  switch (result.kind) {
    case 'notFound':
      conn.close(4001, HelloReasons.sessionGone, 'none');
      break;
    case 'wrongUser':
      conn.close(1008, HelloReasons.wrongUser, 'none');
      break;
    case 'tooMany':
      conn.core.metrics.inboundLimit('maxSessionsPerUser');
      conn.close(1008, HelloReasons.tooManySessions, 'none');
      break;
    case 'failed':
      conn.log.warn({ err: result.error, sessionId }, 'HELLO: could not register the resumed session');
      conn.close(STORE_FAILURE_CLOSE, HelloReasons.storeFailure, 'none');
      break;
  }
}
