import type { Labels } from './Metrics.ts';

/** The label value that replaces every value once a metric has reached its cap of label combinations. */
export const OVERFLOW_LABEL_VALUE = '_other';

/**
 * Guards one metric against a cardinality explosion: the first `maxCombinations` distinct label combinations pass
 * unchanged; any further new combination is folded into one where every label value is {@link
 * OVERFLOW_LABEL_VALUE}. Already-seen combinations always pass.
 */
export class LabelCap {
  readonly maxCombinations: number;
  readonly #seen = new Set<string>();
  #overflowed = false;

  constructor(maxCombinations: number) {
    if (!Number.isInteger(maxCombinations) || maxCombinations < 1) {
      throw new RangeError(`maxCombinations must be an integer >= 1, was ${maxCombinations}`);
    }
    this.maxCombinations = maxCombinations;
  }

  /** True once a combination was folded into the overflow combination. */
  get overflowed(): boolean {
    return this.#overflowed;
  }

  /** The labels to record: `labels` itself, or the overflow combination when over the cap. */
  apply(labelNames: readonly string[], labels: Labels): Labels {
    let key = '';
    for (const name of labelNames) key += `${labels[name] ?? ''}\u0000`;
    if (this.#seen.has(key)) return labels;
    if (this.#seen.size < this.maxCombinations) {
      this.#seen.add(key);
      return labels;
    }
    this.#overflowed = true;
    const folded: Record<string, string> = {};
    for (const name of labelNames) folded[name] = OVERFLOW_LABEL_VALUE;
    return folded;
  }
}
