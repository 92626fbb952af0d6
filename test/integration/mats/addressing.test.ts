import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { ErrorCode } from '../../../src/errors.ts';
import { MatsBackendError, MatsIllegalCallError } from '../../../src/mats/MatsErrors.ts';
import { dlqName } from '../../../src/mats/MatsWire.ts';
import { describeMats, Sink, waitFor, waitForDepth } from './matsTestKit.ts';

const execFileAsync = promisify(execFile);

describeMats('Mats addressing and topology (statements 1-3)', (env) => {
  it('S1: stage S consumes from mats.S and mats.S:i; stage k of E is E.stage<k>; ".x" gets the common group id', async () => {
    const e = env();
    const f = e.createFactory('n', { commonGroupId: 'Grp' });
    f.holdEndpointsUntilFactoryIsStarted();
    const ep = e.uid('S1.ep');
    const term = e.uid('S1.term');
    const sink = new Sink<unknown>();
    const staged = f
      .staged<string, object>(ep)
      .stage((ctx) => ctx.next(ctx.isInteractive))
      .stage((ctx) => ctx.next(null))
      .lastStage(() => 'done');
    expect(staged.stageIds).to.deep.equal([ep, `${ep}.stage1`, `${ep}.stage2`]);
    const dotted = f.single('.dotted', () => 'x');
    expect(dotted.endpointId).to.equal('Grp.dotted');
    f.terminator(term, (_c, _s, r) => sink.push(r));
    expect(() => f.single('bad id!', () => 1)).to.throw(MatsIllegalCallError);
    expect(() => f.single('has:colon', () => 1)).to.throw(MatsIllegalCallError);
    expect(() => f.single('x'.repeat(201), () => 1)).to.throw(MatsIllegalCallError);

    await f.getDefaultInitiator().initiate((init) => {
      init.traceId('S1std').from('t').to(ep).replyTo(term, 'std').request(null);
      init.interactive().to(ep).replyTo(term, 'ia').request(null);
    });
    // Held: the messages wait in the standard and the interactive queue of stage 0.
    await waitForDepth(e.broker, `${e.prefix}${ep}`, 1);
    await waitForDepth(e.broker, `${e.prefix}${ep}:i`, 1);
    await f.start();
    await sink.take(2);
    expect(await e.broker.queueDepth(`${e.prefix}${ep}`)).to.equal(0);
    expect(await e.broker.queueDepth(`${e.prefix}${ep}:i`)).to.equal(0);
  });

  it('S2: sending to an endpoint whose queue does not exist yet does not lose the message', async () => {
    const e = env();
    const f = e.createFactory('n');
    const later = e.uid('S2.later');
    const ids = await f
      .getDefaultInitiator()
      .initiate((init) => init.traceId('S2').from('t').to(later).send('early'));
    expect(ids).to.have.length(1);
    await waitForDepth(e.broker, `${e.prefix}${later}`, 1);
    const sink = new Sink<unknown>();
    f.terminator(later, (ctx, _s, m) => sink.push({ m, id: ctx.matsMessageId }));
    expect(await sink.first()).to.deep.equal({ m: 'early', id: ids[0] });
  });

  it('S2: a mandatory return is a send failure that rolls back the initiation; the next publish declares the queue again', async () => {
    const e = env();
    const f = e.createFactory('n');
    const gone = e.uid('S2.gone');
    const ep = e.uid('S2.ep');
    // Assert the queue in this connection generation, then delete it behind the transport's back.
    await f.getDefaultInitiator().initiate((init) => init.traceId('S2a').from('t').to(gone).send(1));
    await e.broker.deleteQueue(`${e.prefix}${gone}`);
    let error: unknown;
    await f
      .getDefaultInitiator()
      .initiate((init) => init.traceId('S2b').from('t').to(gone).send(2))
      .catch((err: unknown) => (error = err));
    expect(error).to.be.instanceOf(MatsBackendError);
    expect((error as { cause?: { code?: string } }).cause?.code).to.equal(ErrorCode.TRANSPORT_UNROUTABLE);

    // The return made the transport forget its declare of the queue: the next publish (here a stage's, outbox
    // off) declares it again and goes through, instead of being returned until the next reconnect.
    let runs = 0;
    f.single(ep, (ctx) => {
      runs++;
      ctx.goTo(gone, 'from stage');
      return undefined;
    });
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    await f.getDefaultInitiator().initiate((init) => init.traceId('S2c').from('t').to(ep).send(3));
    await waitForDepth(e.broker, `${e.prefix}${gone}`, 1);
    expect(runs).to.equal(1);
    expect(await e.broker.queueDepth(dlqName(e.prefix, ep))).to.equal(0);
  });

  it('S3: two services declaring the same stage queue never collide; the only declare argument is x-queue-type', async () => {
    const e = env();
    const a = e.createFactory('svcA', { appName: 'ServiceA' });
    const b = e.createFactory('svcB', { appName: 'ServiceB', concurrency: 1 });
    const ep = e.uid('S3.shared');
    const term = e.uid('S3.term');
    const sink = new Sink<string>();
    a.single(ep, () => 'A');
    b.single(ep, () => 'B');
    a.terminator<unknown, string>(term, (_c, _s, r) => sink.push(r));
    expect(await a.waitForReceiving(10_000)).to.equal(true);
    expect(await b.waitForReceiving(10_000)).to.equal(true);
    for (let i = 0; i < 10; i++) {
      await a
        .getDefaultInitiator()
        .initiate((init) => init.traceId(`S3.${i}`).from('t').to(ep).replyTo(term, null).request(i));
    }
    await sink.take(10);
    if (e.kind.transport === 'rabbitmq') {
      const { stdout } = await execFileAsync('rabbitmqctl', [
        '-q',
        'list_queues',
        '--no-table-headers',
        'name',
        'arguments',
      ]);
      const rows = stdout.split('\n').filter((l) => l.startsWith(`${e.prefix}${ep}`));
      expect(rows).to.have.length(2);
      for (const row of rows) expect(row.split('\t')[1]).to.equal('[{"x-queue-type","quorum"}]');
    }
    await waitFor(() => sink.items.length === 10, 'ten replies');
  });
});
