import type { DemoNodeUrls } from './startDemoNode.ts';

/**
 * The message of the line `npm start` logs when its node serves, with the {@link DemoNodeUrls} as fields: what
 * `npm run cluster` and tests wait for. (A module of its own so that waiting for it loads no server code.)
 */
export const NODE_READY_MESSAGE = 'MatsSocket node ready';

/** The URLs of `npm start`'s ready line (pino JSON), or undefined when `line` is another line. */
export function parseReadyLine(line: string): DemoNodeUrls | undefined {
  if (!line.includes(NODE_READY_MESSAGE)) return undefined;
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const { msg, demo, admin, webSocket, metrics, health } = entry;
  if (msg !== NODE_READY_MESSAGE) return undefined;
  if (![demo, admin, webSocket, metrics, health].every((u) => typeof u === 'string')) return undefined;
  return { demo, admin, webSocket, metrics, health } as DemoNodeUrls;
}
