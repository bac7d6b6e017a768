import { InvalidArgumentError, type Command } from 'commander';
import type { Precision } from '../stylize/network.js';

/**
 * Plain decimals, optionally with an exponent (0.5, -2, 1e-4). Number() alone also takes hex
 * ('0x1' would be 1), binary, octal, 'Infinity' and surrounding spaces, none of which a
 * person means as a flag value.
 */
const DECIMAL = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

/** Commander parsers that reject bad values with a message naming the flag's expectation. */
export function parseNumber(what: string, min = -Infinity, max = Infinity) {
  return (v: string): number => {
    const n = Number(v);
    if (!DECIMAL.test(v) || !Number.isFinite(n) || n < min || n > max) {
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

/** fp32, int8 or both, in the order given (benchmarks time what they are told, so no 'auto'). */
export function parsePrecisionList(v: string): Precision[] {
  const list = parseList(v);
  for (const p of list) if (p !== 'fp32' && p !== 'int8') throw new InvalidArgumentError(`${p} is not a precision; use fp32, int8 or fp32,int8`);
  return [...new Set(list as Precision[])];
}

/** Repeatable, comma-separated names (`--model a --model b,c`). */
export function collectNames(v: string, prev: string[]): string[] {
  return [...prev, ...parseList(v)];
}

/** Comma-separated image sides, e.g. 256,512. */
export function parseSizes(v: string): number[] {
  const sizes = parseList(v).map(parseInteger('an image side in pixels', 8, 16384));
  if (!sizes.length) throw new InvalidArgumentError(`expected comma-separated sizes such as 256,512, got '${v}'`);
  return sizes;
}

/**
 * A subcommand's flags merged with those given after it that its parent took for itself:
 * commander hands every option after `bench train` to `bench` first, which keeps the ones it
 * knows (--runs, --threads, --json, ...). A flag given to the subcommand itself wins.
 */
export function withParentFlags(cmd: Command): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...cmd.opts() };
  const parent = cmd.parent;
  if (!parent) return merged;
  const parentValues = parent.opts();
  for (const opt of cmd.options) {
    const key = opt.attributeName();
    if (cmd.getOptionValueSource(key) !== 'cli' && parent.getOptionValueSource(key) === 'cli') merged[key] = parentValues[key];
  }
  return merged;
}
