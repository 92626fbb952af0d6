import { expect } from 'chai';
import { Pipeline } from '../../../src/client/Pipeline.ts';

describe('Pipeline (client send queue)', () => {
  it('sends what is enqueued within the debounce in one go', async () => {
    let due: () => void = () => undefined;
    const fired = new Promise<void>((r) => (due = r));
    const pipeline = new Pipeline(5, () => due(), 50);
    pipeline.enqueue({ t: 'SEND', eid: 'e', tid: 'a', cmid: '0' });
    pipeline.enqueue({ t: 'SEND', eid: 'e', tid: 'b', cmid: '1' });
    await fired;
    expect(pipeline.drain().items.map((i) => i.envelope)).to.deep.include.members([
      { t: 'SEND', eid: 'e', tid: 'a', cmid: '0' },
      { t: 'SEND', eid: 'e', tid: 'b', cmid: '1' },
    ]);
  });

  it('does not hold envelopes past maxDelayMs while more keep coming within the debounce', async () => {
    let enqueued = 0;
    let dueAfter: number | undefined;
    let stop: () => void = () => undefined;
    const stopped = new Promise<void>((r) => (stop = r));
    // A 200 ms debounce re-armed every 2 ms would never fire while the enqueues go on (up to 5 s here).
    const pipeline = new Pipeline(
      200,
      () => {
        dueAfter = enqueued;
        stop();
      },
      40,
    );
    // Something was just sent: no quiet spell, so the debounce applies from the first envelope.
    pipeline.drain();
    const timer = setInterval(() => {
      pipeline.enqueue({ t: 'SEND', eid: 'e', tid: String(enqueued), cmid: String(enqueued) });
      if (++enqueued >= 2500) stop();
    }, 2);
    await stopped;
    clearInterval(timer);
    pipeline.clear();
    expect(dueAfter, 'the pipeline came due while envelopes kept coming').to.be.a('number');
    expect(dueAfter!).to.be.below(2500);
    expect(dueAfter!, 'not sent at once: the debounce held the first envelopes').to.be.above(1);
  });

  it('after a quiet spell sends at the end of the turn, one frame for what that turn enqueued', async () => {
    let due: () => void = () => undefined;
    let fired = new Promise<void>((r) => (due = r));
    // A debounce far longer than the test's timeout: only the quiet-spell path can fire in time.
    const pipeline = new Pipeline(60_000, () => due(), 120_000);
    pipeline.enqueue({ t: 'SEND', eid: 'e', tid: 'a', cmid: '0' });
    pipeline.enqueue({ t: 'SEND', eid: 'e', tid: 'b', cmid: '1' });
    await fired;
    expect(pipeline.drain().items.map((i) => (i.envelope as { tid: string }).tid)).to.deep.equal(['a', 'b']);
    // Right after a send the debounce gathers again.
    fired = new Promise<void>((r) => (due = r));
    pipeline.enqueue({ t: 'SEND', eid: 'e', tid: 'c', cmid: '2' });
    const early = await Promise.race([fired.then(() => true), new Promise((r) => setTimeout(r, 30, false))]);
    expect(early).to.equal(false);
    pipeline.clear();
  });
});
