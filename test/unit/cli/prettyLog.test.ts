import { expect } from 'chai';
import { formatLogLine } from '../../../src/cli/prettyLog.ts';

const at = Date.UTC(2026, 0, 2, 3, 4, 5, 678);

function entry(fields: Record<string, unknown>): string {
  return `${JSON.stringify({ level: 30, time: at, pid: 1, hostname: 'h', name: 'matssocket', ...fields })}\n`;
}

describe('formatLogLine (the CLI log on a terminal)', () => {
  it('writes time, level, name and message, then the fields as key=value', () => {
    const line = formatLogLine(
      entry({ msg: 'starting the MatsSocket node', node: 'n1', broker: 'in-process (embedded)', n: 3 }),
      false,
    );
    expect(line).to.equal(
      '03:04:05.678 INFO  matssocket: starting the MatsSocket node node=n1 broker="in-process (embedded)" n=3\n',
    );
  });

  it('shows an error as one line with its type and code, and its stack only when asked', () => {
    const err = {
      type: 'TransportError',
      message: 'cannot connect',
      code: 'TRANSPORT_UNAVAILABLE',
      stack: 'TransportError: cannot connect\n    at f (x.ts:1:1)',
    };
    const line = entry({ level: 50, msg: 'endpoint failed', err });
    expect(formatLogLine(line, false)).to.equal(
      '03:04:05.678 ERROR matssocket: endpoint failed err="TransportError: cannot connect [TRANSPORT_UNAVAILABLE]"\n',
    );
    expect(formatLogLine(line, false, true)).to.contain('\n    at f (x.ts:1:1)\n');
  });

  it('colours the level for a terminal, and passes through a line that is not JSON', () => {
    expect(formatLogLine(entry({ level: 40, msg: 'w' }), true)).to.contain('\u001b[33mWARN \u001b[0m');
    expect(formatLogLine('plain text', true)).to.equal('plain text\n');
  });
});
