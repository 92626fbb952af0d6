/** One row to deliver: its payload and whether an earlier connection already had it (delivery count > 0). */
export interface FrameItem<T> {
  item: T;
  attempted: boolean;
}

/**
 * Splits a round's rows, in stored order, into frames: runs of fresh rows share a frame, and every already
 * attempted row gets a frame of its own, so one poison message cannot take a batch down with it (docs/protocol.md 9.2).
 * The frames keep the stored order (9.5 #4): a retried row is not sent after rows stored later.
 */
export function framesInStoredOrder<T>(rows: readonly FrameItem<T>[]): T[][] {
  const frames: T[][] = [];
  let run: T[] | undefined;
  for (const row of rows) {
    if (row.attempted) {
      frames.push([row.item]);
      run = undefined;
    } else if (run) {
      run.push(row.item);
    } else {
      run = [row.item];
      frames.push(run);
    }
  }
  return frames;
}
