import { MessageIdAlreadyExistsError, SessionNotFoundError, WrongUserError } from '../../errors.ts';
import type { C2SHello } from '../../protocol/envelopes.ts';
import type { ResumedSession, StoredOutMessage } from '../../store/storeTypes.ts';
import { randomId } from '../../util/ids.ts';
import type { MatsSocketConnection } from './MatsSocketConnection.ts';
import { resumeCommitterOf } from './ResumeCommitter.ts';

/** Close reasons the official clients and test suites look for (substrings "same MatsSocketSessionId", "does not match"). */
export const HelloReasons = {
  takeoverLocal:
    'Cannot have two MatsSockets with the same MatsSocketSessionId - closing the previous (from local node)',
  takeoverRemote:
    'Cannot have two MatsSockets with the same MatsSocketSessionId - closing the previous (from remote node)',
  sessionGone: 'HELLO from client asked for reconnect, but given MatsSocketSessionId was gone.',
  wrongUser: 'UserId of existing SessionId does not match currently logged in user.',
  tooManySessions: 'Too many sessions for resolved userId',
  storeFailure: 'Could not establish Session information in permanent storage',
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

async function underUserLimit(
  conn: MatsSocketConnection,
  userId: string,
  excludeSessionId?: string,
): Promise<boolean> {
  const core = conn.core;
  let count: number;
  try {
    count = await core.store.getSessionsCount(
      excludeSessionId === undefined ? { userId } : { userId, excludeSessionId },
    );
  } catch (err) {
    conn.log.warn({ err }, "HELLO: could not count the user's sessions");
    conn.close(1011, HelloReasons.storeFailure, 'none');
    return false;
  }
  if (count >= core.options.limits.maxSessionsPerUser) {
    conn.close(1008, HelloReasons.tooManySessions, 'none');
    return false;
  }
  return conn.active;
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
      conn.close(1011, HelloReasons.storeFailure, 'none');
      return false;
    }
    if (!registered) {
      core.registry.remove(sessionId, conn);
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

async function resumeSession(
  conn: MatsSocketConnection,
  hello: C2SHello,
  sessionId: string,
  userId: string,
): Promise<boolean> {
  const core = conn.core;
  let previousRegistration: { nodename: string; connectionId: string } | null;
  let previousLocal: MatsSocketConnection | undefined;
  // The outbox read by the batched resume: the first forward round starts from it.
  let outbox: StoredOutMessage[] | undefined;
  if (!core.registry.get(sessionId)) {
    // The common case (and all of a reconnect storm): batched with other resumes of this node.
    const registered = await resumeBatched(conn, sessionId, userId);
    if (registered === false) return false;
    previousRegistration = registered.previous;
    outbox = registered.outbox;
    previousLocal = undefined;
  } else {
    if (!(await underUserLimit(conn, userId, sessionId))) return false;
    // Local takeover: deregister and close the old connection before WELCOME.
    previousLocal = core.registry.set(sessionId, conn);
    if (previousLocal) previousLocal.close(4003, HelloReasons.takeoverLocal);
    try {
      const resumed = await core.store.registerResumedSession({
        sessionId,
        userId,
        connectionId: conn.connectionId,
        clientLib: conn.clientLib,
        appName: conn.appName,
        appVersion: conn.appVersion,
      });
      previousRegistration = resumed.previous;
    } catch (err) {
      core.registry.remove(sessionId, conn);
      if (err instanceof SessionNotFoundError) conn.close(4001, HelloReasons.sessionGone, 'none');
      else if (err instanceof WrongUserError) conn.close(1008, HelloReasons.wrongUser, 'none');
      else {
        conn.log.warn({ err, sessionId }, 'HELLO: could not register the resumed session');
        conn.close(1011, HelloReasons.storeFailure, 'none');
      }
      return false;
    }
  }
  try {
    // Remote takeover: the notice goes out before WELCOME, so the old connection gets 4003 first.
    if (previousRegistration && previousRegistration.nodename !== core.options.nodeName) {
      await core
        .sendCloseWs(previousRegistration.nodename, sessionId, previousRegistration.connectionId)
        .catch((err: unknown) =>
          conn.log.warn({ err, sessionId }, 'HELLO: could not send CloseWS to the previous node'),
        );
    }
    // A forward round of the replaced local connection must not mark rows attempted after the unmark below.
    // (The batched resume unmarked in its transaction already.)
    if (previousLocal) {
      await core.forwarderIdle(sessionId);
      await core.store.outboxMessagesUnmarkAttemptedDelivery(sessionId);
    }
  } catch (err) {
    conn.log.warn({ err, sessionId }, 'HELLO: could not unmark attempted outbox messages');
    core.registry.remove(sessionId, conn);
    void core.store.deregisterSessionFromThisNode(sessionId, conn.connectionId).catch(() => undefined);
    conn.close(1011, HelloReasons.storeFailure, 'none');
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
  core.pokeForwarder(sessionId, outbox);
  return conn.established;
}

/**
 * Resume through the node's {@link resumeCommitterOf resume committer}: the user check, the per-user cap, the
 * re-registration, the outbox unmark and the outbox read in one transaction shared with other HELLOs. Returns the
 * registration it replaced and the session's outbox, or false when the connection was closed.
 */
async function resumeBatched(
  conn: MatsSocketConnection,
  sessionId: string,
  userId: string,
): Promise<Pick<ResumedSession, 'previous' | 'outbox'> | false> {
  const core = conn.core;
  // Registered locally first: a poke arriving as soon as the row is ours must find the session here. A HELLO of the
  // same session racing on this node is replaced like a local takeover.
  const racing = core.registry.set(sessionId, conn);
  if (racing) racing.close(4003, HelloReasons.takeoverLocal);
  const result = await resumeCommitterOf(core).submit({
    sessionId,
    userId,
    connectionId: conn.connectionId,
    clientLib: conn.clientLib,
    appName: conn.appName,
    appVersion: conn.appVersion,
  });
  if (result.kind === 'resumed') return result;
  core.registry.remove(sessionId, conn);
  switch (result.kind) {
    case 'notFound':
      conn.close(4001, HelloReasons.sessionGone, 'none');
      break;
    case 'wrongUser':
      conn.close(1008, HelloReasons.wrongUser, 'none');
      break;
    case 'tooMany':
      conn.close(1008, HelloReasons.tooManySessions, 'none');
      break;
    case 'failed':
      conn.log.warn({ err: result.error, sessionId }, 'HELLO: could not register the resumed session');
      conn.close(1011, HelloReasons.storeFailure, 'none');
      break;
  }
  return false;
}
