import { isRecord, pathText, type ConfigChecker, type ConfigPath } from './ConfigChecker.ts';
import type {
  AllowRule,
  ForwardMode,
  GatewayEndpoint,
  GatewayTerminator,
  TopicRule,
} from './GatewayConfig.ts';
import { parseTopicPattern } from './topicPattern.ts';

/** docs/mats-wire-format.md §1: endpoint ids are `[A-Za-z0-9._-]{1,200}`. */
const MATS_ID = /^[A-Za-z0-9._-]{1,200}$/;
const MATS_ID_TEXT = 'an id of A-Z a-z 0-9 . _ -, 1 to 200 characters';
const FORWARD_MODES: readonly ForwardMode[] = ['forward-essential', 'forward-nonessential'];
/** The longest forward TTL accepted: the server's largest client timeout (24 h). */
const MAX_TIMEOUT_MS = 86_400_000;

/** The routing part of a configuration: client → backend, backend → client, topics. */
export interface GatewayRouting {
  endpoints: GatewayEndpoint[];
  terminators: GatewayTerminator[];
  topics: TopicRule[];
  publish: { from: string } | undefined;
}

/**
 * Checks `endpoints`, `terminators`, `topics` and `publish` (docs/gateway.md §3–§5), including what only shows
 * across entries: ids given twice, and a Mats endpoint the node would consume that is also a forward target (the
 * node would then take the backend's messages) or one of the node's own (`MatsSocket.<instance>.*`).
 */
export function checkRouting(c: ConfigChecker, doc: Record<string, unknown> | undefined): GatewayRouting {
  const endpoints = list(c, doc, 'endpoints', (v, p) => checkEndpoint(c, v, p));
  const terminators = list(c, doc, 'terminators', (v, p) => checkTerminator(c, v, p));
  const topics = list(c, doc, 'topics', (v, p) => checkTopicRule(c, v, p));
  const publishObj = c.object(doc?.publish, ['publish'], ['from']);
  const publishFrom = publishObj
    ? c.string(publishObj, 'from', ['publish'], { required: true, pattern: MATS_ID, describe: MATS_ID_TEXT })
    : undefined;

  duplicateIds(c, doc, 'endpoints');
  duplicateIds(c, doc, 'terminators');
  const consumed = [
    ...terminators.map(({ value, path }) => ({ id: value.from, path: [...path, 'from'] })),
    ...(publishFrom !== undefined ? [{ id: publishFrom, path: ['publish', 'from'] }] : []),
  ];
  const seen = new Map<string, ConfigPath>();
  const targets = new Set(endpoints.map((e) => e.value.to));
  for (const { id, path } of consumed) {
    if (seen.has(id))
      c.add(path, 'conflict', `'${id}' is consumed twice (also at ${pathText(seen.get(id)!)})`);
    else seen.set(id, path);
    if (targets.has(id)) {
      c.add(
        path,
        'conflict',
        `'${id}' is an endpoint's forward target: the node would take the backend's messages`,
      );
    }
  }
  return {
    endpoints: endpoints.map((e) => e.value),
    terminators: terminators.map((t) => t.value),
    topics: topics.map((t) => t.value),
    publish: publishFrom !== undefined ? { from: publishFrom } : undefined,
  };
}

function list<T>(
  c: ConfigChecker,
  doc: Record<string, unknown> | undefined,
  key: string,
  check: (value: unknown, path: ConfigPath) => T | undefined,
): { value: T; path: ConfigPath }[] {
  const out: { value: T; path: ConfigPath }[] = [];
  (c.array(doc, key, []) ?? []).forEach((item, i) => {
    const value = check(item, [key, i]);
    if (value !== undefined) out.push({ value, path: [key, i] });
  });
  return out;
}

/** Ids given twice in a list, also among entries with other problems (so that one run reports both). */
function duplicateIds(c: ConfigChecker, doc: Record<string, unknown> | undefined, key: string): void {
  const items = doc?.[key];
  if (!Array.isArray(items)) return;
  const first = new Map<string, number>();
  (items as unknown[]).forEach((item, i) => {
    const id = isRecord(item) ? item.id : undefined;
    if (typeof id !== 'string' || id.length === 0) return;
    const at = first.get(id);
    if (at !== undefined) c.add([key, i, 'id'], 'conflict', `'${id}' is also ${key}[${at}].id`);
    else first.set(id, i);
  });
}

/** A MatsSocket-side id: what clients address. `MatsSocket.*` is the server's own (built-in endpoints). */
function clientSideId(c: ConfigChecker, obj: Record<string, unknown> | undefined, path: ConfigPath) {
  const id = c.string(obj, 'id', path, { required: true, pattern: MATS_ID, describe: MATS_ID_TEXT });
  if (id?.startsWith('MatsSocket'))
    c.add([...path, 'id'], 'format', "must not start with 'MatsSocket' (reserved)");
  return id?.startsWith('MatsSocket') ? undefined : id;
}

/** A Mats endpoint id of a backend or of the node; `MatsSocket.*` are the node's internal endpoints. */
function matsId(c: ConfigChecker, obj: Record<string, unknown> | undefined, key: string, path: ConfigPath) {
  const id = c.string(obj, key, path, { required: true, pattern: MATS_ID, describe: MATS_ID_TEXT });
  if (id?.startsWith('MatsSocket.')) {
    c.add([...path, key], 'format', "must not start with 'MatsSocket.' (the node's internal endpoints)");
    return undefined;
  }
  return id;
}

function checkEndpoint(c: ConfigChecker, value: unknown, path: ConfigPath): GatewayEndpoint | undefined {
  const obj = c.object(value, path, ['id', 'to', 'mode', 'timeoutMs', 'allow'], true);
  if (!obj) return undefined;
  const before = c.issues.length;
  const id = clientSideId(c, obj, path);
  const to = matsId(c, obj, 'to', path);
  const given = c.oneOf(obj, 'mode', path, FORWARD_MODES);
  const mode = given ?? 'forward-essential';
  const modeKnown = given !== undefined || obj.mode === undefined || obj.mode === null;
  const timeoutMs = c.integer(obj, 'timeoutMs', path, 1, MAX_TIMEOUT_MS);
  if (timeoutMs !== undefined && modeKnown && mode !== 'forward-nonessential') {
    c.add(
      [...path, 'timeoutMs'],
      'conflict',
      'applies only to mode forward-nonessential (an essential forward is persistent and never expires)',
    );
  }
  const allow = checkAllow(c, obj.allow, [...path, 'allow']);
  if (c.issues.length > before || id === undefined || to === undefined) return undefined;
  return { id, to, mode, timeoutMs, allow };
}

function checkTerminator(c: ConfigChecker, value: unknown, path: ConfigPath): GatewayTerminator | undefined {
  const obj = c.object(value, path, ['id', 'from'], true);
  if (!obj) return undefined;
  const id = clientSideId(c, obj, path);
  const from = matsId(c, obj, 'from', path);
  return id !== undefined && from !== undefined ? { id, from } : undefined;
}

function checkTopicRule(c: ConfigChecker, value: unknown, path: ConfigPath): TopicRule | undefined {
  const obj = c.object(value, path, ['pattern', 'allow'], true);
  if (!obj) return undefined;
  const before = c.issues.length;
  const pattern = c.string(obj, 'pattern', path, { required: true, maxLength: 256 });
  if (pattern !== undefined) {
    const parsed = parseTopicPattern(pattern);
    if ('error' in parsed) c.add([...path, 'pattern'], 'format', parsed.error);
  }
  const allow = checkAllow(c, obj.allow, [...path, 'allow']);
  return c.issues.length > before || pattern === undefined ? undefined : { pattern, allow };
}

function checkAllow(c: ConfigChecker, value: unknown, path: ConfigPath): AllowRule | undefined {
  const obj = c.object(value, path, ['users', 'roles', 'claims']);
  if (!obj) return undefined;
  const before = c.issues.length;
  const users = c.stringList(obj, 'users', path, { maxLength: 256 }) ?? [];
  const roles = c.stringList(obj, 'roles', path, { maxLength: 256 }) ?? [];
  const claims: Record<string, (string | number | boolean)[]> = {};
  const claimsObj = c.object(
    obj.claims,
    [...path, 'claims'],
    Object.keys(isRecord(obj.claims) ? obj.claims : {}),
  );
  for (const [name, accepted] of Object.entries(claimsObj ?? {})) {
    const values = Array.isArray(accepted) ? (accepted as unknown[]) : [accepted];
    const ok = values.filter(
      (v): v is string | number | boolean =>
        typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v)),
    );
    if (ok.length !== values.length || values.length === 0) {
      c.add(
        [...path, 'claims', name],
        'type',
        'must be a value or a non-empty list of strings, numbers or booleans',
      );
    } else {
      claims[name] = ok;
    }
  }
  if (
    users.length === 0 &&
    roles.length === 0 &&
    Object.keys(claims).length === 0 &&
    c.issues.length === before
  ) {
    c.add(
      path,
      'required',
      'needs users, roles or claims (leave allow out to admit every authenticated user)',
    );
  }
  return { users, roles, claims };
}
