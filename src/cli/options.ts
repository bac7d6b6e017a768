import { InvalidArgumentError } from 'commander';

/** Commander parsers that reject bad values with a message naming the flag's expectation. */
export function parseNumber(what: string, min = -Infinity, max = Infinity) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected ${what}${Number.isFinite(min) || Number.isFinite(max) ? ` in [${min}, ${max}]` : ''}, got '${v}'`);
    }
    return n;
  };
}

export function parseInteger(what: string, min = 1, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = parseNumber(what, min, max)(v);
    if (!Number.isInteger(n)) throw new InvalidArgumentError(`expected ${what} (an integer), got '${v}'`);
    return n;
  };
}

export function parseList(v: string): string[] {
  return v.split(',').map((s) => s.trim()).filter(Boolean);
}

export function parseNumberList(what: string) {
  return (v: string): number[] => parseList(v).map(parseNumber(what, 0));
}
