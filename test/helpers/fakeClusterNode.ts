/**
 * A stand-in for the `npm start` node that ClusterSupervisor tests spawn: it speaks the same contract (pino JSON on
 * stdout, the ready line with the URLs, a one-line reason on stderr and exit 1 when it cannot start, exit 0 on
 * SIGTERM) in a few milliseconds and without services. `FAKE_MODE`:
 * - `ready` (default): logs its ready line, then runs until SIGTERM/SIGINT and exits 0;
 * - `fail`: writes why it cannot start on stderr and exits 1;
 * - `stubborn`: ready, but ignores SIGTERM (only SIGKILL ends it);
 * - `never`: runs, but never logs its ready line.
 */
import { NODE_READY_MESSAGE } from '../../src/cli/demo/readyLine.ts';

const mode = process.env.FAKE_MODE ?? 'ready';
const name = process.env.MATSSOCKET_NODE_NAME ?? 'fake';
const port = process.env.PORT ?? '0';

function log(msg: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(
    `${JSON.stringify({ level: 30, time: Date.now(), pid: process.pid, name: 'matssocket', ...fields, msg })}\n`,
  );
}

if (mode === 'fail') {
  process.stderr.write(
    `matssocket: cannot listen: 127.0.0.1:${port} is already in use; set PORT (and HOST)\n`,
  );
  process.exit(1);
}

const alive = setInterval(() => undefined, 60_000);
process.on('SIGTERM', () => {
  if (mode === 'stubborn') return;
  log('stopped');
  clearInterval(alive);
});
process.on('SIGINT', () => clearInterval(alive));
log('starting the MatsSocket node', { node: name });
if (mode !== 'never') {
  const base = `http://127.0.0.1:${port}`;
  log(NODE_READY_MESSAGE, {
    demo: `${base}/`,
    admin: `${base}/admin`,
    webSocket: `ws://127.0.0.1:${port}/matssocket`,
    metrics: `${base}/metrics`,
    health: `${base}/health`,
    node: name,
  });
}
