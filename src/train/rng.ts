/**
 * A small seeded pseudo-random generator (xoshiro128**, 128 bits of state) whose state can be
 * saved in a checkpoint and restored, so that a resumed training run continues exactly the
 * same sequence of draws.
 */

/** The generator's state: four unsigned 32-bit words (JSON-serialisable). */
export type RngState = [number, number, number, number];

/** splitmix32: turns one 32-bit word into a well-mixed sequence; used only for seeding. */
function splitmix32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x9e3779b9) | 0;
    let t = a ^ (a >>> 16);
    t = Math.imul(t, 0x21f0aaad);
    t ^= t >>> 15;
    t = Math.imul(t, 0x735a2d97);
    t ^= t >>> 15;
    return t >>> 0;
  };
}

/** FNV-1a of a string's UTF-16 code units, to name independent streams of one seed. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A starting state from one or two 32-bit seed words. */
function stateFromWords(a: number, b = 0): RngState {
  const sa = splitmix32(a);
  const sb = splitmix32(b ^ 0x5bd1e995);
  const s: RngState = [(sa() ^ sb()) >>> 0, (sa() ^ sb()) >>> 0, (sa() ^ sb()) >>> 0, (sa() ^ sb()) >>> 0];
  // xoshiro must not start from all zeros (it would stay there); splitmix practically never
  // yields that, but make it impossible.
  if ((s[0] | s[1] | s[2] | s[3]) === 0) s[0] = 1;
  return s;
}

export function isRngState(value: unknown): value is RngState {
  return (
    Array.isArray(value) &&
    value.length === 4 &&
    value.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff) &&
    value.some((w) => w !== 0)
  );
}

export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  /**
   * A generator for `seed` (a non-negative safe integer). Different `stream` names give
   * independent sequences from the same seed (e.g. 'content' and 'style').
   */
  constructor(seed: number, stream = '') {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative integer, got ${seed}`);
    const low = seed >>> 0;
    const high = Math.floor(seed / 0x100000000) >>> 0;
    this.setState(stateFromWords(splitmix32(low ^ hashString(stream))(), high));
  }

  /** A generator that continues from a saved state. */
  static fromState(state: RngState): Rng {
    const rng = new Rng(0);
    rng.setState(state);
    return rng;
  }

  /** The next unsigned 32-bit integer. */
  uint32(): number {
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A uniform number in [0, 1) with 32 random bits. */
  next(): number {
    return this.uint32() / 0x100000000;
  }

  /** A uniform integer in [0, n), without modulo bias; n is an integer in [1, 2^32]. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 0x100000000) throw new RangeError(`int(n) needs an integer n in [1, 2^32], got ${n}`);
    if (n === 1) return 0;
    // Accept only draws below the largest multiple of n, so every residue is equally likely.
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const x = this.uint32();
      if (x < limit) return x % n;
    }
  }

  /** Shuffles `items` in place (Fisher-Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i];
      items[i] = items[j];
      items[j] = tmp;
    }
    return items;
  }

  /**
   * A new, independent generator derived from this one's next draws (advances this one by
   * two draws). Handy to give each concurrent task its own stream in a fixed order.
   */
  fork(): Rng {
    const a = this.uint32();
    const b = this.uint32();
    return Rng.fromState(stateFromWords(a, b));
  }

  getState(): RngState {
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0];
  }

  setState(state: RngState): void {
    if (!isRngState(state)) throw new RangeError(`not a generator state: ${JSON.stringify(state)}`);
    [this.s0, this.s1, this.s2, this.s3] = state.map((w) => w | 0);
  }
}
