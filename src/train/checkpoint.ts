/**
 * Training checkpoints. A checkpoint folder holds:
 * - `checkpoint.safetensors`: decoder weights, Adam's m and v (`adam.m.<name>`, `adam.v.<name>`),
 *   with --ema the weight average (`ema.<name>`), and JSON metadata (`format`, `step`, `config`, `rng`, `sampler`, `metrics`, `adam`);
 * - `checkpoint.prev.safetensors`: the one before it, so that a crash while writing never
 *   loses the last good checkpoint (load falls back to it, with a warning);
 * - `decoder.safetensors`: the weights alone under canonical names (dec4_1.weight ...), which
 *   `adain stylize --decoder` loads directly (with --ema, the averaged weights).
 * Every file is written to a temp file and renamed into place. The current checkpoint is
 * rotated to the previous slot only when it loads: after a resume that fell back from a
 * corrupt file, the next save replaces the corrupt file and keeps the good previous one.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import type { ConvWeights } from '../models/canonical-weights.js';
import { WEIGHTS_HINT } from '../weights/file.js';
import { parseSafetensors, writeSafetensors } from '../weights/safetensors.js';
import type { Tensor, TensorMap } from '../weights/tensor.js';
import type { AdamState } from './adam.js';

export const CHECKPOINT_FORMAT = 'adain-checkpoint-1';
export const DECODER_FORMAT = 'adain-decoder-1';
export const CHECKPOINT_FILE = 'checkpoint.safetensors';
export const PREV_CHECKPOINT_FILE = 'checkpoint.prev.safetensors';
export const DECODER_FILE = 'decoder.safetensors';
/** The decoder with the lowest validation loss so far (written when validation runs). */
export const BEST_DECODER_FILE = 'decoder.best.safetensors';

const M = 'adam.m.';
const V = 'adam.v.';
const EMA = 'ema.';

export interface CheckpointData {
  /** Trainable tensors by name (`dec4_1.weight` ...); a ConvWeights map is flattened to that. */
  weights: TensorMap | ConvWeights;
  /** Adam.state(); m and v are keyed by the same names as the weights. */
  optimizer: AdamState | Pick<AdamState, 'step' | 'm' | 'v'>;
  /** The weight average (train/ema.ts), keyed like the weights; absent without --ema. */
  ema?: ReadonlyMap<string, Float32Array>;
  /** What decoder.safetensors gets (the averaged weights with --ema); default `weights`. */
  decoder?: TensorMap | ConvWeights;
  /** Iterations done. */
  step: number;
  config: Record<string, unknown>;
  /** Anything JSON-serialisable that restores the random streams / data order. */
  rng?: unknown;
  sampler?: unknown;
  metrics?: Record<string, number>;
  /** For decoder.safetensors; default config.encoder / config.cut. */
  encoder?: string;
  cut?: string;
}

export interface LoadedCheckpoint {
  weights: TensorMap;
  optimizer: { step: number; m: Map<string, Float32Array>; v: Map<string, Float32Array>; options?: AdamState['options'] };
  /** The weight average, when the run kept one. */
  ema?: Map<string, Float32Array>;
  step: number;
  config: Record<string, unknown>;
  rng?: unknown;
  sampler?: unknown;
  metrics?: Record<string, number>;
  /** The file actually read (checkpoint.prev.safetensors after a fallback). */
  path: string;
}

export interface LoadOptions {
  /** Told when the latest checkpoint is unusable and the previous one is used. Default: stderr. */
  warn?: (message: string) => void;
}

/** `{conv: {weight, bias}}` -> `conv.weight`, `conv.bias`. */
export function flattenConvWeights(w: ConvWeights): TensorMap {
  const out: TensorMap = new Map();
  for (const [name, p] of w) {
    out.set(`${name}.weight`, p.weight);
    out.set(`${name}.bias`, p.bias);
  }
  return out;
}

/** The inverse of flattenConvWeights; names without a `.weight`/`.bias` pair are an error. */
export function unflattenConvWeights(t: TensorMap, file = 'checkpoint'): ConvWeights {
  const out: ConvWeights = new Map();
  for (const key of t.keys()) {
    const m = /^(.*)\.weight$/.exec(key);
    if (!m) continue;
    const bias = t.get(`${m[1]}.bias`);
    if (!bias) throw new UserError(`${file}: ${key} has no matching ${m[1]}.bias; the file is damaged, resume from another checkpoint`);
    out.set(m[1], { weight: t.get(key)!, bias });
  }
  return out;
}

function toTensorMap(w: TensorMap | ConvWeights): TensorMap {
  const first = w.values().next().value as Tensor | { weight: Tensor } | undefined;
  return first && 'weight' in first ? flattenConvWeights(w as ConvWeights) : (w as TensorMap);
}

/**
 * Writes the checkpoint into `dir` (created if needed). The current checkpoint becomes
 * checkpoint.prev.safetensors first if it loads (a corrupt one is simply replaced); a crash
 * at any point leaves at least one intact file. The new file is read back before returning.
 */
export async function saveCheckpoint(dir: string, data: CheckpointData): Promise<void> {
  if (!Number.isSafeInteger(data.step) || data.step < 0) throw new Error(`saveCheckpoint: bad step ${data.step}`);
  const weights = toTensorMap(data.weights);
  const tensors: TensorMap = new Map(weights);
  for (const [kind, moments] of [[M, data.optimizer.m], [V, data.optimizer.v]] as const) {
    for (const [name, values] of moments) {
      const w = weights.get(name);
      if (w && w.data.length !== values.length) throw new Error(`saveCheckpoint: ${kind}${name} has ${values.length} values, the weight ${w.data.length}`);
      tensors.set(`${kind}${name}`, { shape: w ? w.shape : [values.length], data: values });
    }
  }
  for (const [name, values] of data.ema ?? []) {
    const w = weights.get(name);
    if (!w || w.data.length !== values.length) throw new Error(`saveCheckpoint: ${EMA}${name} has ${values.length} values, the weight ${w?.data.length ?? 'none'}`);
    tensors.set(`${EMA}${name}`, { shape: w.shape, data: values });
  }
  const metadata: Record<string, string> = {
    format: CHECKPOINT_FORMAT,
    step: String(data.step),
    adam_step: String(data.optimizer.step),
    config: JSON.stringify(data.config),
  };
  if ('options' in data.optimizer && data.optimizer.options) metadata.adam = JSON.stringify(data.optimizer.options);
  if (data.rng !== undefined) metadata.rng = JSON.stringify(data.rng);
  if (data.sampler !== undefined) metadata.sampler = JSON.stringify(data.sampler);
  if (data.metrics !== undefined) metadata.metrics = JSON.stringify(data.metrics);

  await fs.mkdir(dir, { recursive: true });
  await removeStaleTemps(dir);
  const current = join(dir, CHECKPOINT_FILE);
  if (await loads(current)) await fs.rename(current, join(dir, PREV_CHECKPOINT_FILE));
  await writeSafetensors(current, tensors, metadata);
  // a write that went wrong (a full disk that truncated it) must fail the run now, while the
  // previous checkpoint is still there to resume from
  await readCheckpointFile(current);

  await saveDecoder(join(dir, DECODER_FILE), data.decoder ?? weights, data);
}

/**
 * The decoder alone, loadable by `adain stylize --decoder` (canonical layer names plus the
 * encoder kind, cut layer, step and training config as metadata). Written atomically.
 */
export async function saveDecoder(file: string, weights: TensorMap | ConvWeights, data: Pick<CheckpointData, 'step' | 'config' | 'encoder' | 'cut'>): Promise<void> {
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const meta: Record<string, string> = { format: DECODER_FORMAT, step: String(data.step), config: JSON.stringify(data.config) };
  const encoder = data.encoder ?? str(data.config.encoder);
  const cut = data.cut ?? str(data.config.cut);
  if (encoder !== undefined) meta.encoder = encoder;
  if (cut !== undefined) meta.cut = cut;
  await writeSafetensors(file, toTensorMap(weights), meta);
}

/** Whether `file` is a checkpoint that loads; false when it is missing, unreadable or corrupt. */
async function loads(file: string): Promise<boolean> {
  try {
    await readCheckpointFile(file);
    return true;
  } catch (err) {
    if (err instanceof UserError) return false;
    throw err;
  }
}

/** Temp files left by a write that crashed (writeSafetensors names them `.<file>.<hex>.tmp`). */
async function removeStaleTemps(dir: string): Promise<void> {
  for (const f of await fs.readdir(dir)) {
    if (/^\.(checkpoint|decoder)\.safetensors\.[0-9a-f]+\.tmp$/.test(f)) await fs.rm(join(dir, f), { force: true });
  }
}

/**
 * Reads the checkpoint in `dir` (or a checkpoint file given directly). If checkpoint.safetensors
 * is missing, truncated or corrupt and checkpoint.prev.safetensors is intact, that one is used
 * and `warn` is told. A file of another format is an error, not a reason to fall back.
 */
export async function loadCheckpoint(dir: string, opts: LoadOptions = {}): Promise<LoadedCheckpoint> {
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`adain: warning: ${m}\n`));
  let stat;
  try {
    stat = await fs.stat(dir);
  } catch {
    throw new UserError(`${dir} does not exist; pass the checkpoint folder of an earlier run (it holds ${CHECKPOINT_FILE}), or start without --resume`);
  }
  if (stat.isFile()) return readCheckpointFile(dir);

  const current = join(dir, CHECKPOINT_FILE);
  const prev = join(dir, PREV_CHECKPOINT_FILE);
  let problem: UserError;
  try {
    return await readCheckpointFile(current);
  } catch (err) {
    if (!(err instanceof UserError) || err instanceof WrongFormatError) throw err;
    problem = err;
  }
  let fallback: LoadedCheckpoint;
  try {
    fallback = await readCheckpointFile(prev);
  } catch (err) {
    if (err instanceof WrongFormatError) throw err;
    if (err instanceof MissingError && problem instanceof MissingError) {
      throw new UserError(`${dir} holds no ${CHECKPOINT_FILE}; pass the checkpoint folder of an earlier run, or start without --resume`);
    }
    // the latest file's own problem is the one to report, without advice to fall back on a
    // previous checkpoint that is missing or broken too
    throw new UserError(problem.message.replace(FALLBACK_FIX, NO_FALLBACK_FIX));
  }
  warn(`${problem.message.replace(/;.*$/, '')}; resuming from the previous checkpoint ${prev} (step ${fallback.step})`);
  return fallback;
}

class MissingError extends UserError {}
class WrongFormatError extends UserError {}

const FALLBACK_FIX = 'delete it to resume from the previous checkpoint, or start without --resume';
const NO_FALLBACK_FIX = `there is no intact ${PREV_CHECKPOINT_FILE} to fall back on: restore a copy of the run folder, or start a new run (a new --out folder, or --force)`;

async function readCheckpointFile(file: string): Promise<LoadedCheckpoint> {
  const fix = FALLBACK_FIX;
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new MissingError(`${file} does not exist; pass the checkpoint folder of an earlier run, or start without --resume`);
    if (code === 'EISDIR') throw new UserError(`${file} is a folder; pass the checkpoint folder holding ${CHECKPOINT_FILE}`);
    throw new UserError(`${file} cannot be read (${(err as Error).message}); fix its permissions or pass another checkpoint`);
  }
  let parsed;
  try {
    parsed = parseSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), file);
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    const why = err.message.replace(`; ${WEIGHTS_HINT}`, '');
    throw new UserError(`${why.startsWith(file) ? why : `${file}: ${why}`}; ${fix}`);
  }
  const { tensors, metadata } = parsed;
  if (metadata.format !== CHECKPOINT_FORMAT) {
    const what = metadata.format === DECODER_FORMAT ? 'a trained decoder (weights only), not a training checkpoint' : `not an adain training checkpoint (format ${metadata.format ? JSON.stringify(metadata.format) : 'missing'}, expected ${CHECKPOINT_FORMAT})`;
    throw new WrongFormatError(`${file} is ${what}; pass the folder holding ${CHECKPOINT_FILE} written by adain train`);
  }
  const corrupt = (why: string) => new UserError(`${file} is corrupt (${why}); ${fix}`);
  const json = (key: string): unknown => {
    const s = metadata[key];
    if (s === undefined) return undefined;
    try {
      return JSON.parse(s);
    } catch {
      throw corrupt(`metadata ${key} is not JSON`);
    }
  };
  const step = Number(metadata.step);
  if (!Number.isSafeInteger(step) || step < 0) throw corrupt(`step ${JSON.stringify(metadata.step)}`);
  const adamStep = metadata.adam_step === undefined ? step : Number(metadata.adam_step);
  if (!Number.isSafeInteger(adamStep) || adamStep < 0) throw corrupt(`adam_step ${JSON.stringify(metadata.adam_step)}`);
  const config = json('config');
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw corrupt('config is not an object');

  const weights: TensorMap = new Map();
  const m = new Map<string, Float32Array>();
  const v = new Map<string, Float32Array>();
  const ema = new Map<string, Float32Array>();
  for (const [name, t] of tensors) {
    if (name.startsWith(M)) m.set(name.slice(M.length), t.data);
    else if (name.startsWith(V)) v.set(name.slice(V.length), t.data);
    else if (name.startsWith(EMA)) ema.set(name.slice(EMA.length), t.data);
    else weights.set(name, t);
  }
  for (const name of ema.keys()) if (!weights.has(name)) throw corrupt(`weight average ${name} has no weight`);
  for (const name of new Set([...m.keys(), ...v.keys()])) {
    if (!m.has(name) || !v.has(name)) throw corrupt(`optimizer moments for ${name} are incomplete`);
  }
  const out: LoadedCheckpoint = { weights, optimizer: { step: adamStep, m, v }, step, config: config as Record<string, unknown>, path: file };
  if (ema.size > 0) out.ema = ema;
  const options = json('adam');
  if (options !== undefined) out.optimizer.options = options as AdamState['options'];
  const rng = json('rng');
  if (rng !== undefined) out.rng = rng;
  const sampler = json('sampler');
  if (sampler !== undefined) out.sampler = sampler;
  const metrics = json('metrics');
  if (metrics !== undefined) out.metrics = metrics as Record<string, number>;
  return out;
}
