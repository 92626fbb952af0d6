/**
 * Whether a parsed JSON value nests arrays/objects deeper than `maxDepth` (a scalar has depth 0, `[]` depth 1).
 *
 * `JSON.parse` builds values of any depth without recursion, but `JSON.stringify` (and every recursive walker
 * after it) overflows the stack on them: a `msg` nested 100,000 deep reaches the group commit and fails it for
 * every session in the batch. This walk is iterative and visits every node at most once, so it cannot overflow
 * and costs no more than the serialization it protects.
 */
export function jsonDepthExceeds(value: unknown, maxDepth: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const stack: { value: object; depth: number }[] = [{ value, depth: 1 }];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    if (top.depth > maxDepth) return true;
    const children: unknown[] = Array.isArray(top.value)
      ? (top.value as unknown[])
      : Object.values(top.value);
    for (const child of children) {
      if (typeof child === 'object' && child !== null) stack.push({ value: child, depth: top.depth + 1 });
    }
  }
  return false;
}
