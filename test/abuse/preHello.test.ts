import { expect } from 'chai';
import type { RawClient } from '../helpers/rawClient.ts';
import {
  describeAbuse,
  expectGoodClientUnharmed,
  expectNoProblems,
  goodClientProblems,
  until,
} from './abuseKit.ts';
import {
  closedByProtocol,
  CONTAINING_CLOSE_CODES,
  deflateForWebSocket,
  hello,
  rawTextFrame,
  writeRaw,
} from './hostile.ts';

const MiB = 1024 * 1024;
/** Before authentication a hostile connection may cost the node this much RSS, whatever it sends (MB). */
const PRE_AUTH_PEAK_MB = 20;

describeAbuse('before HELLO', (kit) => {
  it('control: no attack (calibrates the figures of the other tests)', async () => {
    const r = await kit().attack('control', async ({ goodAnswers }) => {
      await goodAnswers(80);
      return 'none';
    });
    expectGoodClientUnharmed(r, { peakGrowthMb: PRE_AUTH_PEAK_MB });
  });

  it('a 51 KB compressed frame inflating to ~50 MB before HELLO is refused without inflating it', async () => {
    let hostile: RawClient | undefined;
    // A HELLO whose `clv` is 50 MB of one letter: deflate shrinks it ~1000 times. Prepared before the measurement.
    const text = JSON.stringify([{ ...hello('bomber'), clv: 'a'.repeat(50 * 1000 * 1000) }]);
    const frame = rawTextFrame(deflateForWebSocket(text), true);
    const r = await kit().attack('deflate bomb before HELLO', async ({ connect, goodAnswers }) => {
      hostile = await connect({ perMessageDeflate: true });
      expect(hostile.ws.extensions, 'permessage-deflate negotiated').to.include('permessage-deflate');
      await writeRaw(hostile, frame);
      const closed = await hostile.closed(30_000).catch(() => undefined);
      await goodAnswers(20);
      return `sent a ${(frame.length / 1024).toFixed(0)} KB frame inflating to ${(text.length / MiB).toFixed(0)} MiB; ${
        closed ? `closed ${closed.code} '${closed.reason.slice(0, 60)}'` : 'not closed in 30 s'
      }`;
    });
    expectNoProblems(
      closedByProtocol(hostile, 'deflate bomb'),
      goodClientProblems(r, { peakGrowthMb: PRE_AUTH_PEAK_MB }),
    );
  });

  it('a 30 MiB uncompressed frame before HELLO is refused without buffering it', async () => {
    let hostile: RawClient | undefined;
    const frame = rawTextFrame(
      Buffer.from(JSON.stringify([{ ...hello('big'), clv: 'b'.repeat(30 * MiB) }])),
      false,
    );
    const r = await kit().attack('30 MiB frame before HELLO', async ({ connect, goodAnswers }) => {
      hostile = await connect({ perMessageDeflate: false });
      await writeRaw(hostile, frame);
      const closed = await hostile.closed(30_000).catch(() => undefined);
      await goodAnswers(20);
      return closed ? `closed ${closed.code} '${closed.reason.slice(0, 60)}'` : 'not closed in 30 s';
    });
    expectNoProblems(
      closedByProtocol(hostile, '30 MiB frame', { resetWhileWriting: true }),
      goodClientProblems(r, { peakGrowthMb: PRE_AUTH_PEAK_MB }),
    );
  });

  it('500 connections that never send HELLO are closed or refused, cheaply', async () => {
    const opened: RawClient[] = [];
    let refused = 0;
    const r = await kit().attack('500 pre-HELLO connections', async ({ connect, goodAnswers }) => {
      for (let batch = 0; batch < 10; batch++) {
        const results = await Promise.allSettled(
          Array.from({ length: 50 }, () => connect({ perMessageDeflate: true })),
        );
        for (const res of results) {
          if (res.status === 'fulfilled') opened.push(res.value);
          else refused++;
        }
      }
      await goodAnswers(40);
      // The protocol's own bound: no HELLO within 5 s closes 1001. A fix may close or refuse sooner.
      await until(
        () => opened.every((c) => c.closeInfo !== undefined),
        'every pre-HELLO connection closed',
        15_000,
      ).catch(() => undefined);
      const codes = new Map<string, number>();
      for (const c of opened) {
        const key = c.closeInfo ? String(c.closeInfo.code) : 'open';
        codes.set(key, (codes.get(key) ?? 0) + 1);
      }
      return `${opened.length} opened, ${refused} refused; ends: ${JSON.stringify(Object.fromEntries(codes))}`;
    });
    const notContained = opened.filter(
      (c) => !c.closeInfo || !CONTAINING_CLOSE_CODES.includes(c.closeInfo.code),
    );
    expectNoProblems(
      notContained.length > 0
        ? [`${notContained.length} pre-HELLO connections not closed by the protocol`]
        : [],
      goodClientProblems(r, { peakGrowthMb: PRE_AUTH_PEAK_MB }),
    );
  });

  it('a HELLO storm (300 HELLOs of one user at once) gets at most the per-user cap of sessions', async () => {
    const opened: RawClient[] = [];
    let welcomed = 0;
    const r = await kit().attack('HELLO storm', async ({ connect, goodAnswers }) => {
      const results = await Promise.allSettled(
        Array.from({ length: 300 }, () => connect({ perMessageDeflate: false })),
      );
      for (const res of results) if (res.status === 'fulfilled') opened.push(res.value);
      for (const c of opened) c.send([hello('storm')]);
      await Promise.all(
        opened.map((c) =>
          c.nextOfType('WELCOME', 15_000).then(
            () => void welcomed++,
            () => undefined,
          ),
        ),
      );
      await goodAnswers(20);
      const closes = new Map<string, number>();
      for (const c of opened) {
        const key = c.closeInfo ? String(c.closeInfo.code) : 'open';
        closes.set(key, (closes.get(key) ?? 0) + 1);
      }
      return `${opened.length} connected, ${welcomed} WELCOMEd; ends: ${JSON.stringify(Object.fromEntries(closes))}`;
    });
    // maxSessionsPerUser (default 75): the rest is closed 1008 (or throttled otherwise by the protocol).
    const badCloses = opened.filter((c) => c.closeInfo && !CONTAINING_CLOSE_CODES.includes(c.closeInfo.code));
    expectNoProblems(
      welcomed > 75 ? [`${welcomed} sessions for one user (cap 75)`] : [],
      badCloses.length > 0 ? [`${badCloses.length} storm connections closed with other codes`] : [],
      goodClientProblems(r),
    );
  });
});
