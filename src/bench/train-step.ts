/**
 * One decoder training step exactly as `adain train` takes it (src/train/trainer.ts), for the
 * training benchmark: encoder targets (content features at the cut, AdaIN, style statistics at
 * relu1_1..cut) from TargetEncoder, the forward+backward session from trainStepModel, and the
 * Adam update in place. The decoder is freshly He-initialised (random weights of the real
 * layout); the encoder is the model's real one.
 */
import * as ort from 'onnxruntime-node';
import { decoderLayers, downsampleFactor, encoderLayers, type CutLayer } from '../models/architectures.js';
import type { ConvWeights, EncoderKind } from '../models/canonical-weights.js';
import { createSession } from '../runtime/session.js';
import { Adam } from '../train/adam.js';
import { TargetEncoder, type StepTargets } from '../train/features.js';
import { initDecoder } from '../train/init.js';
import { trainStepModel } from '../train/step-graph.js';
import { styleLayersFor } from '../train/trainer.js';
import { layerShapes, type ArchitectureShape } from './architecture.js';

export interface TrainStepOptions {
  kind: EncoderKind;
  cut: CutLayer;
  /** The real encoder weights (canonical names) up to `cut`. */
  encoder: ConvWeights;
  batch: number;
  /** Side of the square crops; a multiple of the cut's downsampling factor. */
  crop: number;
  threads: number;
  /** Seed of the He-initialised decoder. Default 1. */
  seed?: number;
  /** Adam learning rate. Default BENCH_LR. */
  lr?: number;
  /** Loss weights. Default BENCH_CONTENT_WEIGHT, BENCH_STYLE_WEIGHT. */
  contentWeight?: number;
  styleWeight?: number;
}

/** The loss weights and learning rate the benchmark uses, on both sides. */
export const BENCH_CONTENT_WEIGHT = 1;
export const BENCH_STYLE_WEIGHT = 10;
export const BENCH_LR = 1e-4;

export interface TrainArchitecture extends ArchitectureShape {
  /** Indices into `encoder` of the convs whose ReLU outputs the style loss taps, relu1_1..cut (the last is the cut). */
  taps: number[];
}

/**
 * The network as layer shapes for PyTorch (the inference benchmark's description) plus the
 * encoder indices of the style layers relu1_1..cut.
 */
export function trainArchitecture(kind: EncoderKind, cut: CutLayer, encoder: ConvWeights, decoder: ConvWeights): TrainArchitecture {
  const encLayers = encoderLayers(cut, kind !== 'vgg19bn');
  const taps = styleLayersFor(cut).map((l) => encLayers.findIndex((x) => x.kind === 'conv' && x.tap === l));
  return { encoder: layerShapes(encLayers, encoder), decoder: layerShapes(decoderLayers(cut), decoder), taps };
}

export class TrainStep {
  private constructor(
    private readonly targets: TargetEncoder,
    private readonly session: ort.InferenceSession,
    private readonly adam: Adam,
    private readonly params: Map<string, Float32Array>,
    private readonly weightFeeds: Record<string, ort.Tensor>,
    private readonly targetDims: number[],
    private readonly styleLayers: CutLayer[],
    private readonly lr: number,
    readonly batch: number,
    readonly crop: number,
    /** The same network as layer shapes, for PyTorch. */
    readonly architecture: TrainArchitecture,
  ) {}

  static async create(o: TrainStepOptions): Promise<TrainStep> {
    const { kind, cut, encoder, batch: B, crop: S } = o;
    const factor = downsampleFactor(cut);
    const styleLayers = styleLayersFor(cut);
    const decoder = initDecoder(cut, encoder, o.seed ?? 1);
    const params = new Map<string, Float32Array>();
    const weightFeeds: Record<string, ort.Tensor> = {};
    for (const [name, p] of decoder) {
      params.set(`${name}.weight`, p.weight.data);
      params.set(`${name}.bias`, p.bias.data);
      // Tensors over the arrays Adam updates in place, as in the trainer.
      weightFeeds[`${name}.weight`] = new ort.Tensor('float32', p.weight.data, p.weight.shape);
      weightFeeds[`${name}.bias`] = new ort.Tensor('float32', p.bias.data, p.bias.shape);
    }
    const threads = { threads: o.threads };
    const targets = await TargetEncoder.create(kind, cut, styleLayers, encoder, threads);
    const session = await createSession(trainStepModel({
      kind, cut, styleLayers, encoder, batch: B, height: S, width: S, mode: 'style', styleLoss: 'mse',
      contentWeight: o.contentWeight ?? BENCH_CONTENT_WEIGHT, styleWeight: o.styleWeight ?? BENCH_STYLE_WEIGHT,
      decoderShapes: new Map([...decoder].map(([n, p]) => [n, { weight: p.weight.shape, bias: p.bias.shape }])),
    }), threads).catch(async (e: unknown) => { await targets.dispose(); throw e; });

    const architecture = trainArchitecture(kind, cut, encoder, decoder);
    const cutLayer = architecture.encoder[architecture.taps[architecture.taps.length - 1]];
    const cutChannels = cutLayer.kind === 'conv' ? cutLayer.cout : 0;
    return new TrainStep(targets, session, new Adam(params), params, weightFeeds, [B, cutChannels, S / factor, S / factor],
      styleLayers, o.lr ?? BENCH_LR, B, S, architecture);
  }

  /** One full step on [B,3,crop,crop] content and style crops; returns the loss. */
  async step(content: Float32Array, style: Float32Array): Promise<number> {
    const B = this.batch, S = this.crop;
    const t: StepTargets = await this.targets.targets(content, style, [B, 3, S, S]);
    const feeds: Record<string, ort.Tensor> = { ...this.weightFeeds, target: new ort.Tensor('float32', t.target, this.targetDims) };
    for (const l of this.styleLayers) {
      const mean = t.styleMean.get(l)!, std = t.styleStd.get(l)!;
      feeds[`style_mean_${l}`] = new ort.Tensor('float32', mean, [B, mean.length / B]);
      feeds[`style_std_${l}`] = new ort.Tensor('float32', std, [B, std.length / B]);
    }
    const out = await this.session.run(feeds);
    const grads = new Map<string, Float32Array>();
    for (const name of this.params.keys()) grads.set(name, out[`grad:${name}`].data as Float32Array);
    this.adam.step(grads, this.lr);
    return Number((out.loss.data as Float32Array)[0]);
  }

  async dispose(): Promise<void> {
    await this.targets.dispose();
    await this.session.release();
  }
}
