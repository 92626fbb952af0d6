import { expect } from 'chai';
import type { Logger } from '../../../src/logging.ts';
import { FailureStreak } from '../../../src/util/FailureStreak.ts';

/** A logger that records `level message` lines. */
function recordingLogger(lines: string[]): Logger {
  const at =
    (level: string) =>
    (_obj: unknown, msg?: string): void => {
      lines.push(`${level} ${msg ?? ''}`);
    };
  const log: Logger = {
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: () => log,
  };
  return log;
}

describe('FailureStreak', () => {
  it('warns at the first failure of a streak, then at most once a minute, and tells when it works again', () => {
    const lines: string[] = [];
    let now = 0;
    const streak = new FailureStreak(recordingLogger(lines), 'sweep', {}, () => now);
    streak.succeeded(); // nothing to report
    streak.failed(new Error('down'));
    now += 1000;
    streak.failed(new Error('down'));
    now += 60_000;
    streak.failed(new Error('down'));
    expect(streak.failures).to.equal(3);
    streak.succeeded();
    streak.succeeded();
    streak.failed(new Error('down again'));
    expect(lines).to.deep.equal([
      'warn sweep failed',
      'debug sweep failed again',
      'warn sweep still failing (3 times in a row)',
      'info sweep works again after 3 failures',
      'warn sweep failed',
    ]);
  });
});
