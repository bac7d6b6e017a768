/** `adain calibrate` as a function: resolves a registry model's files and calibrates them (quant/calibrate.ts). */
import { fileURLToPath } from 'node:url';
import { decoderWeights, encoderWeights } from '../models/canonical-weights.js';
import { findModel } from '../models/registry.js';
import { resolveWeightFile, type ResolveOptions } from '../models/resolve.js';
import type { RuntimeOptions } from '../runtime/session.js';
import { readWeights } from '../weights/index.js';
import { calibrate, type Calibration, type CalibrateOptions } from './calibrate.js';

/** The repository's development data (../shared from the repository root), as `adain bench train` uses. */
export const DEFAULT_CALIBRATION_CONTENT = fileURLToPath(new URL('../../../shared/data/content/train', import.meta.url));
export const DEFAULT_CALIBRATION_STYLE = fileURLToPath(new URL('../../../shared/data/style/train', import.meta.url));

/** calibrate()'s options, with the weights and folders found from the model's name. */
export interface CalibrateModelOptions extends RuntimeOptions, Omit<ResolveOptions, 'fetchImpl'>,
  Partial<Pick<CalibrateOptions, 'contentDir' | 'styleDir' | 'contents' | 'styles' | 'size' | 'percentile' | 'method' | 'decoderMethod' | 'float' | 'alpha' | 'output' | 'onNote'>> {
  encoder?: string;
  decoder?: string;
}

export async function calibrateModel(name: string, opts: CalibrateModelOptions = {}): Promise<{ file: string; calibration: Calibration }> {
  const spec = findModel(name);
  const encoderFile = opts.encoder ?? (await resolveWeightFile(spec.encoder.weights, opts));
  const decoderFile = opts.decoder ?? (await resolveWeightFile(spec.decoder.weights, opts));
  const { kind, cut } = spec.encoder;
  return calibrate({
    ...opts, model: spec.name, kind, cut, encoderFile, decoderFile,
    enc: encoderWeights(kind, cut, await readWeights(encoderFile), encoderFile),
    dec: decoderWeights(cut, await readWeights(decoderFile), decoderFile),
    contentDir: opts.contentDir ?? DEFAULT_CALIBRATION_CONTENT,
    styleDir: opts.styleDir ?? DEFAULT_CALIBRATION_STYLE,
  });
}
