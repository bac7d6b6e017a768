import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../errors.js';
import { encodeImage, type RgbImage } from '../image/io.js';
import { CUT_LAYERS, downsampleFactor, type CutLayer } from '../models/architectures.js';
import { decoderWeights, encoderWeights, type ConvWeights } from '../models/canonical-weights.js';
import { findModel } from '../models/registry.js';
import { resolveWeightFile } from '../models/resolve.js';
import { readWeights } from '../weights/index.js';
import { Adam } from './adam.js';
import { WeightAverage } from './ema.js';
import { BEST_DECODER_FILE, loadCheckpoint, saveCheckpoint, saveDecoder, unflattenConvWeights } from './checkpoint.js';
import { listImages, PairSampler, type StyleBalance } from './data.js';
import { initDecoder } from './init.js';
import { JudgeValidation, judgeImproves, type BestBy } from './judge-validation.js';
import { JsonlLog } from './jsonl-log.js';
import { claimRunFolder } from './run-folder.js';
import { TrainingBatches, type TrainingBatch, type TrainingBatchesState } from './prefetch.js';
import { buildSchedule, parseLrSchedule } from './schedule.js';
import type { LossNetwork } from './step-graph.js';
import type { FeatureTransform } from '../stylize/model.js';
import { stepLosses, StepRunner, type StepLosses } from './step-runner.js';
import { EventWriter } from './tensorboard.js';

/** Everything that defines a run; saved in every checkpoint so that --resume needs nothing else. */
export interface TrainConfig {
  content: string;
  style?: string;
  /** A registry model name: its encoder and cut layer are used (e.g. cd16x-r41). */
  encoder: string;
  out: string;
  mode: 'style' | 'reconstruct';
  /** 'random' (He init) or a decoder/checkpoint file to start from. */
  init: string;
  styleWeight: number;
  contentWeight: number;
  /**
   * A registry model whose encoder measures the style loss at relu1_1..its cut in place of the
   * training encoder's own layers there (e.g. vgg19-r31, the paper's VGG-19, for a cd16x
   * decoder); absent: the training encoder alone.
   */
  lossNetwork?: string;
  /**
   * Weight of the photo content loss (step-graph.ts): the loss network's features of the decoded
   * image against those of the content image; needs lossNetwork. 0 or absent: none.
   */
  photoContentWeight?: number;
  /** How the decoder's input takes the style: adain (absent: runs saved before it) or wct (stylize/wct.ts), as `stylize --transform`. */
  transform?: FeatureTransform;
  /** Weight of the total-variation loss on the decoded image; 0 = none (runs saved before it existed). */
  tvWeight?: number;
  /** Weight of the grid loss (energy at the upsampling periods); 0 = none (runs saved before it existed). */
  gridWeight?: number;
  styleLoss: 'mse' | 'rms';
  lr: number;
  lrSchedule: string;
  batchSize: number;
  loadSize: number;
  crop: number;
  iterations: number;
  seed: number;
  subset?: number;
  /** How styles are drawn (data.ts StyleBalance); 'file' in runs saved before it existed. */
  styleBalance?: StyleBalance;
  valContent?: string;
  valStyle?: string;
  /** Held-out pairs per validation (rounded up to whole batches); runs saved before it used one batch. */
  valPairs?: number;
  valEvery: number;
  /** What decoder.best is best at: the validation loss (default; runs saved before it), or the judge (judge-validation.ts). */
  bestBy?: BestBy;
  /** With bestBy judge: validations whose judge content distance is above this do not count. */
  bestMaxContent?: number;
  /**
   * Decay of a moving average of the weights (ema.ts); when set, validation, decoder.best and
   * decoder.safetensors use the average. 0 or absent: none (runs saved before it existed).
   */
  ema?: number;
  checkpointEvery: number;
  logEvery: number;
  threads: number;
  modelsDir?: string;
}

export interface TrainHooks {
  /** Called after every step with the values logged for it. */
  onStep?: (step: number, values: StepValues) => void;
  warn?: (message: string) => void;
  /** Polled after each step; true stops the run with a checkpoint (Ctrl-C). */
  shouldStop?: () => boolean;
}

/** A step's losses (the optional terms unweighted, 0 when the run has none) and its speed. */
export interface StepValues extends StepLosses {
  lr: number;
  its: number;
  images_per_s: number;
  data_wait_ms: number;
}

export interface TrainResult {
  step: number;
  reason: 'done' | 'interrupted';
  last?: StepValues;
}

/** The AdaIN style loss compares statistics at relu1_1 .. the cut layer of the same encoder. */
export function styleLayersFor(cut: CutLayer): CutLayer[] {
  return CUT_LAYERS.slice(0, CUT_LAYERS.indexOf(cut) + 1);
}

export interface TrainOptions {
  /** Start a new run in a folder that holds one, deleting that run's files (else a UserError). */
  force?: boolean;
}

/** Trains a decoder; `resume` is a run folder to continue exactly (its checkpoint decides the config). */
export async function train(config: TrainConfig, hooks: TrainHooks = {}, resume?: string, opts: TrainOptions = {}): Promise<TrainResult> {
  const warn = hooks.warn ?? ((m: string) => process.stderr.write(`adain: warning: ${m}\n`));
  const ckpt = resume ? await loadCheckpoint(resume, { warn }) : undefined;
  const spec = findModel(config.encoder);
  const { kind, cut } = spec.encoder;
  const factor = downsampleFactor(cut);
  if (config.crop % factor !== 0) throw new UserError(`--crop ${config.crop} must be a multiple of ${factor} for ${config.encoder}`);
  if (config.mode === 'style' && !config.style) throw new UserError('--mode style needs --style DIR (paintings)');
  if (config.lossNetwork && config.mode !== 'style') throw new UserError('--loss-network measures the style loss: it needs --mode style');
  if (config.photoContentWeight && !config.lossNetwork) throw new UserError('--photo-content-weight is measured by the loss network: give --loss-network too (e.g. vgg19-r31)');
  const lossNetwork = config.lossNetwork ? await loadLossNetwork(config.lossNetwork, config.modelsDir) : undefined;
  const styleLayers = config.mode === 'style' ? styleLayersFor(cut).filter((l) => !lossNetwork?.styleLayers.includes(l)) : [];

  const encFile = await resolveWeightFile(spec.encoder.weights, { modelsDir: config.modelsDir });
  const encoder = encoderWeights(kind, cut, await readWeights(encFile), encFile);
  const decoder = ckpt ? unflattenConvWeights(ckpt.weights, ckpt.path) : await initialDecoder(config, cut, encoder);
  const params = new Map<string, Float32Array>();
  for (const [name, p] of decoder) { params.set(`${name}.weight`, p.weight.data); params.set(`${name}.bias`, p.bias.data); }
  const adam = new Adam(params);
  if (ckpt) adam.load(ckpt.optimizer);
  // a resume that turns --ema on starts the average at the checkpoint's weights
  const average = config.ema ? new WeightAverage(params, config.ema, ckpt?.ema) : undefined;
  // what the run saves as its decoder: the average with --ema, else the weights themselves
  const product = () => (average ? averagedDecoder(decoder, average) : decoder);
  let step = ckpt?.step ?? 0;

  const contents = await listImages(config.content, { label: '--content' });
  const styles = config.style ? await listImages(config.style, { label: '--style' }) : contents;
  const schedule = buildSchedule(parseLrSchedule(config.lrSchedule), config.lr, { itersPerEpoch: contents.length / config.batchSize });
  const B = config.batchSize, S = config.crop;
  const runner = await StepRunner.create({
    kind, cut, styleLayers, lossNetwork, encoder, decoder, mode: config.mode, styleLoss: config.styleLoss, contentWeight: config.contentWeight,
    styleWeight: config.styleWeight, tvWeight: config.tvWeight ?? 0, gridWeight: config.gridWeight ?? 0, photoContentWeight: config.photoContentWeight ?? 0, transform: config.transform ?? 'adain',
    batch: B, crop: S, threads: config.threads,
  });

  const sampler = new PairSampler(contents, styles, { seed: config.seed, subset: config.subset, styleBalance: config.styleBalance });
  const batches = new TrainingBatches(sampler, {
    batchSize: B, loadSize: config.loadSize, crop: S, seed: config.seed, warn, resume: ckpt?.sampler as TrainingBatchesState | undefined,
  });
  const val = config.valContent ? await validationBatches(config, warn) : undefined;
  if (config.bestBy === 'judge' && !val) throw new UserError('--best-by judge needs a validation set: give --val-content (and --val-style)');
  const judged = val && config.bestBy === 'judge'
    ? await JudgeValidation.create(val, B, S, { threads: config.threads, modelsDir: config.modelsDir }) : undefined;
  // last, after every input has been checked, so that a typo does not delete a run under --force
  if (!ckpt) await claimRunFolder(config.out, opts.force ?? false);
  const log = new JsonlLog(path.join(config.out, 'log.jsonl'));
  const events = new EventWriter(config.out);
  events.sessionStart(step);

  // the best validation loss survives a resume through the checkpoint's metrics
  let bestVal = ckpt?.metrics?.best_val ?? Infinity;
  let bestJudge = ckpt?.metrics?.best_judge_style ?? Infinity;
  const save = async (metrics: Record<string, number> = {}) => {
    // what a checkpoint says happened is on disk before it: a kill right after loses no log line
    log.flush();
    events.flush();
    await saveCheckpoint(config.out, {
      weights: decoder, optimizer: adam.state(), step, config: { ...config, kind, cut }, sampler: batches.state(),
      ema: average?.values, decoder: product(),
      // only the measure decoder.best follows: a resume that switches --best-by finds none and starts afresh
      metrics: { ...metrics, ...(judged ? (Number.isFinite(bestJudge) ? { best_judge_style: bestJudge } : {}) : (Number.isFinite(bestVal) ? { best_val: bestVal } : {})) },
      encoder: kind, cut,
    });
  };

  let last: StepValues | undefined;
  let windowStart = performance.now(), windowSteps = 0, waitStart = batches.stats().waitMs;
  try {
    while (step < config.iterations) {
      const batch = await batches.next();
      const lr = schedule(step);
      const out = await runner.run(batch);
      const losses = stepLosses(out);
      const loss = losses.loss;
      if (!Number.isFinite(loss)) {
        throw new UserError(`loss is ${loss} at step ${step + 1}; training stopped. The last good checkpoint in ${config.out} is intact: resume from it with a lower --lr or --style-weight`);
      }
      const grads = new Map<string, Float32Array>();
      for (const name of params.keys()) grads.set(name, out[`grad:${name}`].data as Float32Array);
      adam.step(grads, lr);
      average?.update();
      step++;
      windowSteps++;

      const now = performance.now();
      const its = (windowSteps * 1000) / (now - windowStart);
      last = {
        ...losses, lr, its, images_per_s: its * B,
        data_wait_ms: batches.stats().waitMs - waitStart,
      };
      hooks.onStep?.(step, last);
      if (step % config.logEvery === 0 || step === config.iterations) {
        log.log(step, { ...last });
        events.scalars({ 'loss/total': last.loss, 'loss/content': last.content_loss, 'loss/style': last.style_loss, 'loss/tv': last.tv_loss, 'loss/grid': last.grid_loss, 'loss/photo_content': last.photo_content_loss, 'train/lr': lr, 'train/images_per_s': last.images_per_s }, step);
        windowStart = now; windowSteps = 0; waitStart = batches.stats().waitMs;
      }
      if (val && (step % config.valEvery === 0 || step === config.iterations)) {
        // the mean over every held-out batch: one batch of 8 pairs moved by +-2 between checks
        // with --ema the averaged weights are the ones validated (and kept as decoder.best)
        const validate = () => runner.meanLosses(val, judged !== undefined);
        const { losses: m, decoded } = average ? await average.withAverage(validate) : await validate();
        const judge = judged ? await judged.measure(decoded) : undefined;
        const values = {
          val_loss: m.loss, val_content_loss: m.content_loss, val_style_loss: m.style_loss, val_tv_loss: m.tv_loss, val_grid_loss: m.grid_loss, val_photo_content_loss: m.photo_content_loss, val_pairs: m.pairs,
          ...(judge ? { val_judge_style: judge.style, val_judge_content: judge.content } : {}),
          ...(average ? { val_ema: average.decay } : {}),
        };
        log.log(step, values);
        const improves = values.val_loss < bestVal;
        if (improves) bestVal = values.val_loss;
        const judgeImproved = judge !== undefined && judgeImproves(judge, bestJudge, config.bestMaxContent);
        if (judgeImproved) bestJudge = judge.style;
        if (judge ? judgeImproved : improves) {
          await saveDecoder(path.join(config.out, BEST_DECODER_FILE), product(), { step, config: { ...config, kind, cut }, encoder: kind, cut });
        }
        events.scalars({
          'val/loss': values.val_loss, 'val/content': values.val_content_loss, 'val/style': values.val_style_loss, 'val/tv': values.val_tv_loss, 'val/grid': values.val_grid_loss, 'val/photo_content': values.val_photo_content_loss,
          ...(judge ? { 'val/judge_style': judge.style, 'val/judge_content': judge.content } : {}),
        }, step);
        const grid = validationGrid(val[0], decoded[0], B, S);
        const png = await encodeImage(grid, 'png');
        await writeFile(path.join(config.out, `val_${String(step).padStart(7, '0')}.png`), png);
        events.image('val/style|content|stylised', png, grid.width, grid.height, step);
      }
      if (step % config.checkpointEvery === 0 && step < config.iterations) await save({ loss });
      if (hooks.shouldStop?.()) {
        await save({ loss });
        return { step, reason: 'interrupted', last };
      }
    }
    await save(last ? { loss: last.loss } : undefined);
    return { step, reason: 'done', last };
  } finally {
    batches.close();
    log.close();
    events.close();
    await runner.dispose();
    await judged?.dispose();
  }
}

/** A registry model's encoder as a loss network: its weights and relu1_1..its cut. */
async function loadLossNetwork(name: string, modelsDir: string | undefined): Promise<LossNetwork> {
  const { kind, cut, weights } = findModel(name).encoder;
  const file = await resolveWeightFile(weights, { modelsDir });
  return { kind, weights: encoderWeights(kind, cut, await readWeights(file), file), styleLayers: styleLayersFor(cut) };
}

/** The decoder's layers with the averaged values (the shapes are the live weights'). */
function averagedDecoder(decoder: ConvWeights, average: WeightAverage): ConvWeights {
  return new Map([...decoder].map(([n, p]) => [n, {
    weight: { shape: p.weight.shape, data: average.values.get(`${n}.weight`)! },
    bias: { shape: p.bias.shape, data: average.values.get(`${n}.bias`)! },
  }]));
}

async function initialDecoder(config: TrainConfig, cut: CutLayer, encoder: ConvWeights): Promise<ConvWeights> {
  if (config.init === 'random') return initDecoder(cut, encoder, config.seed);
  const file = config.init;
  const w = decoderWeights(cut, await readWeights(file), file);
  // copies: Adam updates the arrays in place and must not touch the loaded file's buffers
  return new Map([...w].map(([n, p]) => [n, { weight: { shape: p.weight.shape, data: new Float32Array(p.weight.data) }, bias: { shape: p.bias.shape, data: new Float32Array(p.bias.data) } }]));
}

/** The number of held-out pairs a validation uses by default: enough that the mean can rank checkpoints. */
export const DEFAULT_VAL_PAIRS = 64;

async function validationBatches(config: TrainConfig, warn: (m: string) => void): Promise<TrainingBatch[]> {
  return fixedBatches({
    content: config.valContent!, style: config.valStyle, pairs: config.valPairs ?? config.batchSize, batchSize: config.batchSize,
    loadSize: config.loadSize, crop: config.crop, seed: config.seed + 1, labels: ['--val-content', '--val-style'],
  }, warn);
}

export interface FixedPairs {
  content: string;
  /** Style folder; default the content folder. */
  style?: string;
  /** At least this many pairs, rounded up to whole batches. */
  pairs: number;
  batchSize: number;
  loadSize: number;
  crop: number;
  seed: number;
  /** Option names for error messages. */
  labels?: [string, string];
}

/**
 * A fixed, seeded set of pairs in whole batches, drawn once (so every use sees the same
 * pixels): the validation set, or any folder's pairs for measuring the objective.
 */
export async function fixedBatches(p: FixedPairs, warn: (m: string) => void): Promise<TrainingBatch[]> {
  const [cl, sl] = p.labels ?? ['--content', '--style'];
  const contents = await listImages(p.content, { label: cl });
  const styles = p.style ? await listImages(p.style, { label: sl }) : contents;
  const count = Math.max(1, Math.ceil(p.pairs / p.batchSize));
  const stream = new TrainingBatches(new PairSampler(contents, styles, { seed: p.seed, subset: count * p.batchSize }), {
    batchSize: p.batchSize, loadSize: p.loadSize, crop: p.crop, seed: p.seed, depth: 1, warn,
  });
  try {
    const out: TrainingBatch[] = [];
    for (let i = 0; i < count; i++) out.push(await stream.next());
    return out;
  } finally {
    stream.close();
  }
}

/** Rows of style | content | stylised crops, for people to look at. */
function validationGrid(val: TrainingBatch, decoded: Float32Array, B: number, S: number): RgbImage {
  const rows = Math.min(B, 4);
  const W = 3 * S, H = rows * S;
  const out = new Float32Array(3 * W * H);
  const sources = [val.style, val.content, decoded];
  for (let r = 0; r < rows; r++) {
    sources.forEach((src, col) => {
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < S; y++) {
          const from = ((r * 3 + c) * S + y) * S;
          const to = c * W * H + (r * S + y) * W + col * S;
          for (let x = 0; x < S; x++) out[to + x] = Math.min(1, Math.max(0, src[from + x]));
        }
      }
    });
  }
  return { width: W, height: H, data: out };
}


