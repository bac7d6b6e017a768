/**
 * Picks fp32 or int8 for a model: int8 needs a calibration of the exact encoder + decoder files;
 * `auto` also needs int8 to be faster on this CPU (it is slower without VNNI on narrow convs,
 * and in wasm), which a quick interleaved timing of both networks decides.
 */
import os from 'node:os';
import { UserError } from '../errors.js';
import { median, pseudoRandom, timeMs } from '../runtime/stats.js';
import type { CutLayer } from '../models/architectures.js';
import type { EncoderKind } from '../models/canonical-weights.js';
import { decoderWeights, encoderWeights } from '../models/canonical-weights.js';
import { Network, type Precision } from '../stylize/network.js';
import type { RuntimeOptions } from '../runtime/session.js';
import { readWeights } from '../weights/index.js';
import { findCalibration, selectedRanges } from './calibrate.js';

export type PrecisionOption = Precision | 'auto';
export const PRECISION_OPTIONS: readonly PrecisionOption[] = ['fp32', 'int8', 'auto'];

export interface OpenNetworkOptions extends RuntimeOptions {
  precision?: PrecisionOption;
  cacheDir?: string;
  /** The model name, for the message that says how to calibrate. */
  modelName: string;
  /** Whether the decoder is the user's (--decoder): the fix then names it. */
  userDecoder?: boolean;
}

/** auto's verdicts in this process, per model files and thread count: the check costs about a second. */
const verdicts = new Map<string, Precision>();

export async function openNetwork(kind: EncoderKind, cut: CutLayer, encoderFile: string, decoderFile: string, opts: OpenNetworkOptions): Promise<Network> {
  const precision = opts.precision ?? 'fp32';
  if (precision === 'fp32') return Network.fromFiles(kind, cut, encoderFile, decoderFile, opts);
  const lookup = await findCalibration(encoderFile, decoderFile, opts);
  if (!lookup.found) {
    if (precision === 'auto') return Network.fromFiles(kind, cut, encoderFile, decoderFile, opts);
    const fix = `adain calibrate --model ${opts.modelName}${opts.userDecoder ? ` --decoder ${decoderFile}` : ''}`;
    const stale = lookup.stale.length ? ` (${lookup.stale.join(', ')} ${lookup.stale.length > 1 ? 'were' : 'was'} made for other weights)` : '';
    throw new UserError(`${decoderFile}: no int8 calibration for this decoder${stale}; run \`${fix}\` once (looked for ${lookup.looked.join(' and ')}), or use --precision fp32`);
  }
  const enc = encoderWeights(kind, cut, await readWeights(encoderFile), encoderFile);
  const dec = decoderWeights(cut, await readWeights(decoderFile), decoderFile);
  const int8 = await Network.fromWeights(kind, cut, enc, dec, { ...opts, int8: selectedRanges(lookup.calibration) }, decoderFile);
  if (precision === 'int8') return int8;

  const key = `${lookup.calibration.encoder.sha256}:${lookup.calibration.decoder.sha256}:${opts.threads ?? os.availableParallelism()}`;
  const known = verdicts.get(key);
  if (known === 'int8') return int8;
  const fp32 = await Network.fromWeights(kind, cut, enc, dec, opts, decoderFile);
  if (known === 'fp32') {
    await int8.dispose();
    return fp32;
  }
  const faster = await fasterOf(fp32, int8);
  verdicts.set(key, faster === int8 ? 'int8' : 'fp32');
  await (faster === int8 ? fp32 : int8).dispose();
  return faster;
}

/**
 * Encode + decode of one 256x256 image, the two networks in turn (so machine noise hits both),
 * one warm-up and three timed runs each. int8 must win by 5%: a tie is not worth its error.
 */
export async function fasterOf(fp32: Network, int8: Network, side = 256, runs = 3): Promise<Network> {
  const s = Math.ceil(side / fp32.factor) * fp32.factor;
  const img = { width: s, height: s, data: pseudoRandom(3 * s * s, 1) };
  const once = (n: Network) => timeMs(async () => n.decode(await n.encode(img)));
  await once(fp32); await once(int8);
  const a: number[] = [], b: number[] = [];
  for (let i = 0; i < runs; i++) { a.push(await once(fp32)); b.push(await once(int8)); }
  return median(b) < 0.95 * median(a) ? int8 : fp32;
}
