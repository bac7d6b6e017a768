/**
 * Both benchmarks' timing loop: the measures take turns run by run, so that a noisy
 * neighbour slows them all alike instead of whichever happened to be running.
 */

export interface Measure {
  /** Milliseconds of one run. */
  run: () => Promise<number>;
  /** Present for a measure that may fail (PyTorch): it is then reported and left out. */
  onError?: (e: Error) => void;
}

/**
 * `warmup` + `runs` rounds of every measure in turn; the warm-up rounds are dropped.
 * Samples come back per measure; null for a measure absent or left out after failing.
 */
export async function interleave<T extends (Measure | null)[]>(runs: number, measures: [...T], warmup?: number): Promise<{ [K in keyof T]: T[K] extends Measure ? number[] : number[] | null }>;
export async function interleave(runs: number, measures: (Measure | null)[], warmup = 1): Promise<(number[] | null)[]> {
  const samples: (number[] | null)[] = measures.map((m) => (m ? [] : null));
  for (let round = 0; round < warmup + runs; round++) {
    for (const [i, m] of measures.entries()) {
      const into = samples[i];
      if (!m || !into) continue;
      try {
        const ms = await m.run();
        if (round >= warmup) into.push(ms);
      } catch (e) {
        if (!m.onError) throw e;
        samples[i] = null;
        m.onError(e as Error);
      }
    }
  }
  return samples;
}
