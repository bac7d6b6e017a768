import * as ort from 'onnxruntime-node';
import { deepestLayer, downsampleFactor, type CutLayer } from '../models/architectures.js';
import type { ConvWeights, EncoderKind } from '../models/canonical-weights.js';
import { createSession } from '../runtime/session.js';
import type { FeatureTransform } from '../stylize/model.js';
import { TargetEncoder } from './features.js';
import type { StyleLossKind } from './losses.js';
import type { TrainingBatch } from './prefetch.js';
import { LOSS_NETWORK_PREFIX, trainStepModel, type LossNetwork } from './step-graph.js';

export interface StepRunnerSpec {
  kind: EncoderKind;
  cut: CutLayer;
  /** relu1_1 .. the cut in style mode (less those the loss network measures), none in reconstruct mode. */
  styleLayers: CutLayer[];
  /** A second network measuring the decoded image's style (step-graph.ts). */
  lossNetwork?: LossNetwork;
  encoder: ConvWeights;
  /** The decoder's weights; the runner feeds these very arrays, so in-place updates are seen. */
  decoder: ConvWeights;
  mode: 'style' | 'reconstruct';
  styleLoss: StyleLossKind;
  contentWeight: number;
  styleWeight: number;
  tvWeight: number;
  gridWeight?: number;
  /** Weight of the photo content loss (step-graph.ts; needs lossNetwork). */
  photoContentWeight?: number;
  /** The decoder's input: AdaIN's output (default) or the whitening and colouring transform's. */
  transform?: FeatureTransform;
  batch: number;
  crop: number;
  threads: number;
  /** Default: the runtime's (`setDefaultExecutionProvider`, $ADAIN_EP, else cpu). */
  executionProvider?: string;
}

/** The mean losses over a set of batches (validation, or the objective on any fixed pairs). */
export interface MeanLosses extends StepLosses { pairs: number }

/**
 * One training step's graph with its targets: encodes a batch's content and style
 * (TargetEncoder), then runs forward and backward (step-graph.ts). Shared by training, its
 * validation and the objective measurement, so that all three compute the same loss.
 */
export class StepRunner {
  private constructor(
    private readonly spec: StepRunnerSpec,
    private readonly targets: TargetEncoder,
    private readonly session: ort.InferenceSession,
    private readonly weightFeeds: Record<string, ort.Tensor>,
  ) {}

  static async create(spec: StepRunnerSpec): Promise<StepRunner> {
    const threads = { threads: spec.threads, executionProvider: spec.executionProvider };
    const targets = await TargetEncoder.create(spec.kind, spec.cut, spec.styleLayers, spec.encoder, threads, spec.lossNetwork, (spec.photoContentWeight ?? 0) > 0, spec.transform);
    const session = await createSession(trainStepModel({
      kind: spec.kind, cut: spec.cut, styleLayers: spec.styleLayers, encoder: spec.encoder, batch: spec.batch, height: spec.crop, width: spec.crop,
      lossNetwork: spec.lossNetwork, mode: spec.mode, styleLoss: spec.styleLoss, contentWeight: spec.contentWeight, styleWeight: spec.styleWeight, tvWeight: spec.tvWeight, gridWeight: spec.gridWeight ?? 0,
      photoContentWeight: spec.photoContentWeight ?? 0, executionProvider: spec.executionProvider,
      decoderShapes: new Map([...spec.decoder].map(([n, p]) => [n, { weight: p.weight.shape, bias: p.bias.shape }])),
    }), threads);
    // Weights are fed as tensors over the very arrays Adam updates in place: nothing is rebuilt per step.
    const weightFeeds: Record<string, ort.Tensor> = {};
    for (const [name, p] of spec.decoder) {
      weightFeeds[`${name}.weight`] = new ort.Tensor('float32', p.weight.data, p.weight.shape);
      weightFeeds[`${name}.bias`] = new ort.Tensor('float32', p.bias.data, p.bias.shape);
    }
    return new StepRunner(spec, targets, session, weightFeeds);
  }

  /** Losses, `decoded` and `grad:<param>` of one batch. */
  async run(b: TrainingBatch): Promise<ort.InferenceSession.ReturnType> {
    const { batch: B, crop: S, mode, styleLayers, cut } = this.spec;
    const factor = downsampleFactor(cut);
    const t = await this.targets.targets(b.content, mode === 'style' ? b.style : undefined, [B, 3, S, S]);
    const channels = [...this.spec.encoder.values()].at(-1)!.weight.shape[0];
    const feeds: Record<string, ort.Tensor> = { ...this.weightFeeds, target: new ort.Tensor('float32', t.target, [B, channels, S / factor, S / factor]) };
    const statsFeeds = (layers: readonly CutLayer[], mean: Map<CutLayer, Float32Array>, std: Map<CutLayer, Float32Array>, prefix: string) => {
      for (const l of layers) {
        const c = mean.get(l)!.length / B;
        feeds[`${prefix}style_mean_${l}`] = new ort.Tensor('float32', mean.get(l)!, [B, c]);
        feeds[`${prefix}style_std_${l}`] = new ort.Tensor('float32', std.get(l)!, [B, c]);
      }
    };
    statsFeeds(styleLayers, t.styleMean, t.styleStd, '');
    const ln = this.spec.lossNetwork;
    if (mode === 'style' && ln) statsFeeds(ln.styleLayers, t.lossMean, t.lossStd, LOSS_NETWORK_PREFIX);
    if (mode === 'style' && ln && t.lossContent) {
      const layer = deepestLayer(ln.styleLayers), f = downsampleFactor(layer);
      feeds[`${LOSS_NETWORK_PREFIX}content_${layer}`] = new ort.Tensor('float32', t.lossContent, [B, t.lossContent.length / (B * (S / f) ** 2), S / f, S / f]);
    }
    if (mode === 'reconstruct') feeds.content = new ort.Tensor('float32', b.content, [B, 3, S, S]);
    return this.session.run(feeds);
  }

  /** The mean of each loss over `batches`, and the decoded images of the first batch (for a grid) or, with `keepDecoded`, of every batch. */
  async meanLosses(batches: readonly TrainingBatch[], keepDecoded = false): Promise<{ losses: MeanLosses; decoded: Float32Array[] }> {
    const losses: MeanLosses = { loss: 0, content_loss: 0, style_loss: 0, tv_loss: 0, grid_loss: 0, photo_content_loss: 0, pairs: batches.length * this.spec.batch };
    const decoded: Float32Array[] = [];
    for (const b of batches) {
      const out = await this.run(b);
      const l = stepLosses(out);
      for (const k of LOSS_KEYS) losses[k] += l[k] / batches.length;
      if (keepDecoded || decoded.length === 0) decoded.push(new Float32Array(out.decoded.data as Float32Array));
    }
    return { losses, decoded };
  }

  async dispose(): Promise<void> {
    await this.targets.dispose();
    await this.session.release();
  }
}

const LOSS_KEYS = ['loss', 'content_loss', 'style_loss', 'tv_loss', 'grid_loss', 'photo_content_loss'] as const;
export type StepLosses = Record<(typeof LOSS_KEYS)[number], number>;

/** A step's losses; the optional terms (tv, grid, photo content) are 0 when the graph has none. */
export function stepLosses(out: ort.InferenceSession.ReturnType): StepLosses {
  return {
    loss: scalar(out.loss), content_loss: scalar(out.content_loss), style_loss: scalar(out.style_loss),
    tv_loss: out.tv_loss ? scalar(out.tv_loss) : 0, grid_loss: out.grid_loss ? scalar(out.grid_loss) : 0,
    photo_content_loss: out.photo_content_loss ? scalar(out.photo_content_loss) : 0,
  };
}

export function scalar(t: ort.Tensor | undefined): number {
  return t ? Number((t.data as Float32Array)[0]) : NaN;
}
