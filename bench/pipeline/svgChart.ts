import type { PhaseResult } from './Driver.ts';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/**
 * A hand-written SVG: round trips per second (bars) per in-flight level for the pipeline and the raw amqplib loop,
 * with the pipeline's p99 (ms) printed above its bars, and the raw ws echo as a reference line.
 */
export function chartSvg(
  pipeline: readonly PhaseResult[],
  rawAmqp: readonly PhaseResult[],
  rawWs: PhaseResult,
): string {
  const width = 720;
  const height = 360;
  const left = 70;
  const bottom = 300;
  const top = 40;
  const max = Math.max(
    rawWs.perSecond,
    ...pipeline.map((p) => p.perSecond),
    ...rawAmqp.map((p) => p.perSecond),
  );
  const y = (v: number): number => bottom - ((bottom - top) * v) / max;
  const group = (width - left - 20) / Math.max(1, pipeline.length);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${left}" y="20" font-size="14">MatsSocket full pipeline vs raw amqplib (round trips/s; p99 ms above bars)</text>`,
    `<line x1="${left}" y1="${bottom}" x2="${width - 10}" y2="${bottom}" stroke="black"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" stroke="black"/>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    parts.push(`<text x="${left - 5}" y="${y(v) + 4}" text-anchor="end">${Math.round(v)}</text>`);
    parts.push(`<line x1="${left}" y1="${y(v)}" x2="${width - 10}" y2="${y(v)}" stroke="#ddd"/>`);
  }
  pipeline.forEach((p, i) => {
    const x = left + i * group + 10;
    const w = (group - 30) / 2;
    const raw = rawAmqp.find((r) => r.inflight === p.inflight);
    parts.push(
      `<rect x="${x}" y="${y(p.perSecond)}" width="${w}" height="${bottom - y(p.perSecond)}" fill="#3b7dd8"/>`,
    );
    parts.push(
      `<text x="${x + w / 2}" y="${y(p.perSecond) - 4}" text-anchor="middle">${p.p99Ms.toFixed(1)}</text>`,
    );
    if (raw) {
      parts.push(
        `<rect x="${x + w + 4}" y="${y(raw.perSecond)}" width="${w}" height="${bottom - y(raw.perSecond)}" fill="#e08a2c"/>`,
      );
    }
    parts.push(`<text x="${x + w}" y="${bottom + 16}" text-anchor="middle">in flight ${p.inflight}</text>`);
  });
  parts.push(
    `<line x1="${left}" y1="${y(rawWs.perSecond)}" x2="${width - 10}" y2="${y(rawWs.perSecond)}" stroke="#2a2" stroke-dasharray="4 3"/>`,
    `<text x="${width - 12}" y="${y(rawWs.perSecond) - 4}" text-anchor="end" fill="#2a2">raw ws echo ${Math.round(rawWs.perSecond)}/s</text>`,
    `<rect x="${left}" y="${bottom + 30}" width="12" height="12" fill="#3b7dd8"/><text x="${left + 16}" y="${bottom + 40}">${esc('pipeline (client → WS → inbox → RabbitMQ → Mats → outbox → WS)')}</text>`,
    `<rect x="${left}" y="${bottom + 46}" width="12" height="12" fill="#e08a2c"/><text x="${left + 16}" y="${bottom + 56}">raw amqplib request/reply</text>`,
    '</svg>',
  );
  return parts.join('\n');
}
