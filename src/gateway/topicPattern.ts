import type { GatewayPrincipal } from './GatewayPrincipal.ts';

/** One segment of a topic pattern (the text between dots). */
type Segment =
  | { kind: 'text'; parts: readonly (string | typeof STAR)[] }
  | { kind: 'rest' }
  | { kind: 'userId' }
  | { kind: 'claim'; name: string };

const STAR = Symbol('*');

/** A parsed topic pattern (see {@link parseTopicPattern}). */
export interface TopicPattern {
  readonly source: string;
  readonly segments: readonly Segment[];
  /** The compiled matcher when the pattern has no placeholder (the same for every principal). */
  readonly fixed: RegExp | undefined;
}

/**
 * Parses a topic pattern: `.`-separated segments, each literal text in which `*` stands for any characters but
 * `.`(a lone `*` for a non-empty segment), or `**` as the whole last segment (one or more segments), or a
 * whole-segment placeholder `{userId}` or `{claims.<name>}`. Examples: `news.*`, `prices.eu.**`,
 * `user.{userId}.*`, `tenant.{claims.tenant}.orders`.
 * @returns the pattern, or the reason it is not one.
 */
export function parseTopicPattern(source: string): TopicPattern | { error: string } {
  if (source.length === 0 || source.length > 256) return { error: 'must be 1 to 256 characters' };
  if (/\s/.test(source)) return { error: 'must not contain white space' };
  const raw: string[] = [];
  let current = '';
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === '{') {
      const end = source.indexOf('}', i);
      if (end < 0) return { error: `'{' at position ${i + 1} is not closed` };
      current += source.slice(i, end + 1);
      i = end;
    } else if (c === '}') {
      return { error: `'}' at position ${i + 1} has no '{'` };
    } else if (c === '.') {
      raw.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  raw.push(current);
  const segments: Segment[] = [];
  for (const [i, text] of raw.entries()) {
    if (text.length === 0) return { error: 'has an empty segment (two dots, or a dot at an end)' };
    if (text === '**') {
      if (i !== raw.length - 1) return { error: "'**' may only be the last segment" };
      segments.push({ kind: 'rest' });
      continue;
    }
    if (text.includes('{')) {
      const m = /^\{(userId|claims\.([^{}]+))\}$/.exec(text);
      if (!m) return { error: `'${text}': a placeholder is a whole segment, {userId} or {claims.<name>}` };
      segments.push(m[2] === undefined ? { kind: 'userId' } : { kind: 'claim', name: m[2] });
      continue;
    }
    if (text.includes('**')) return { error: `'${text}': '**' must be a whole segment` };
    const parts = text
      .split('*')
      .flatMap((literal, j): (string | typeof STAR)[] => (j === 0 ? [literal] : [STAR, literal]));
    segments.push({ kind: 'text', parts: parts.filter((p) => p !== '') });
  }
  const hasPlaceholder = segments.some((s) => s.kind === 'userId' || s.kind === 'claim');
  const pattern: TopicPattern = { source, segments, fixed: undefined };
  return hasPlaceholder ? pattern : { ...pattern, fixed: compile(segments, undefined)! };
}

/** Whether `topicId` matches `pattern` for `principal` (placeholders take the principal's values). */
export function matchesTopic(pattern: TopicPattern, topicId: string, principal: GatewayPrincipal): boolean {
  const regex = pattern.fixed ?? compile(pattern.segments, principal);
  return regex !== undefined && regex.test(topicId);
}

/**
 * The regex of a pattern; undefined when a placeholder has no usable value. A value that is empty or contains a
 * `.` is not usable: it would span segments, so `user.{userId}.**` for the user `a` would match the topics of
 * the user `a.b`.
 */
function compile(segments: readonly Segment[], principal: GatewayPrincipal | undefined): RegExp | undefined {
  const out: string[] = [];
  for (const segment of segments) {
    switch (segment.kind) {
      case 'rest':
        out.push('[^.]+(?:\\.[^.]+)*');
        break;
      case 'userId':
      case 'claim': {
        const value = placeholderValue(segment, principal);
        if (value === undefined) return undefined;
        out.push(escape(value));
        break;
      }
      case 'text':
        out.push(
          segment.parts.length === 1 && segment.parts[0] === STAR
            ? '[^.]+'
            : segment.parts.map((p) => (p === STAR ? '[^.]*' : escape(p))).join(''),
        );
        break;
    }
  }
  return new RegExp(`^${out.join('\\.')}$`);
}

function placeholderValue(
  segment: { kind: 'userId' } | { kind: 'claim'; name: string },
  principal: GatewayPrincipal | undefined,
): string | undefined {
  if (!principal) return undefined;
  const value =
    segment.kind === 'userId'
      ? principal.userId
      : Object.hasOwn(principal.claims, segment.name)
        ? principal.claims[segment.name]
        : undefined;
  const text =
    typeof value === 'string'
      ? value
      : typeof value === 'number' && Number.isFinite(value)
        ? String(value)
        : '';
  return text.length === 0 || text.includes('.') ? undefined : text;
}

function escape(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}
