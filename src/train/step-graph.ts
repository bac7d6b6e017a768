import { UserError } from '../errors.js';
import { convNames, deepestLayer, decoderLayers, downsampleFactor, encoderLayers, type ConvLayer, type CutLayer, type Layer } from '../models/architectures.js';
import type { ConvWeights, EncoderKind } from '../models/canonical-weights.js';
import { conv, maxPool2, reflectPad, relu, Tape, upsample2 } from '../nn/backward.js';
import { Graph } from '../onnx/graph.js';
import { defaultExecutionProvider } from '../runtime/session.js';
import { contentLoss, gridLoss, pixelLoss, styleLoss, totalVariationLoss, weightedSum, type StyleLossKind } from './losses.js';

/**
 * One decoder training step as a single static-shape ONNX graph: the forward pass, the losses
 * and the gradient of every decoder parameter (see nn/backward.ts).
 *
 * Inputs:  `${name}.weight` / `${name}.bias` of every decoder conv (fed each step);
 *          `target` [B,C,h,w]: the AdaIN output t (style mode) or the content features (reconstruct);
 *          style mode: `style_mean_<layer>`, `style_std_<layer>` [B,C_l] for each style layer,
 *          and with a loss network `loss_style_mean_<layer>`, `loss_style_std_<layer>` for each of its layers,
 *          and with photoContentWeight `loss_content_<layer>` [B,C,H/f,W/f], that network's features of
 *          the content images at its deepest layer;
 *          reconstruct mode: `content` [B,3,H,W], the content image.
 * Outputs: `loss`, `content_loss`, `style_loss` (scalars; reconstruct mode also `pixel_loss`;
 *          with tvWeight > 0 also `tv_loss`, with gridWeight > 0 `grid_loss`, with photoContentWeight > 0
 *          `photo_content_loss`, all unweighted),
 *          `decoded` [B,3,H,W], and `grad:${name}.weight` / `grad:${name}.bias` per decoder conv.
 *
 * Losses (reductions in train/losses.ts):
 *   style mode:       loss = contentWeight * content + styleWeight * style [+ tvWeight * tv] [+ gridWeight * grid]
 *                     [+ photoContentWeight * photo],
 *                     content = MSE(f_cut(g(t)), t), style = sum over styleLayers of the
 *                     mean and std terms ('mse' or 'rms'), the layers of a loss network
 *                     (spec.lossNetwork, measured on g(t) by that network) counted beside the encoder's;
 *                     photo = MSE(l(g(t)), l(c)), l the loss network to its deepest layer: the distance to
 *                     the content image itself rather than to t (the judge's content distance when l is the judge);
 *   reconstruct mode: loss = contentWeight * content, content = MSE(f_cut(g(t)), t) + MSE(g(t), c)
 *                     (feature plus pixel reconstruction); style_loss is 0.
 * The encoder is frozen (its weights are initializers); gradients flow through it to g(t).
 */
export interface TrainStepSpec {
  kind: EncoderKind;
  /** The AdaIN layer: the encoder output the decoder inverts. */
  cut: CutLayer;
  /** Layers whose statistics make the style loss, e.g. relu1_1..relu4_1 (style mode). */
  styleLayers: CutLayer[];
  /** Frozen encoder weights (canonical names), up to the deepest of `cut` and `styleLayers`. */
  encoder: ConvWeights;
  /** Shapes of the trainable decoder parameters, by canonical conv name (dec4_1, ...). */
  decoderShapes: Map<string, { weight: number[]; bias: number[] }>;
  batch: number;
  /** Image size; must be a multiple of the cut's downsampling factor (8 for relu4_1). */
  height: number;
  width: number;
  mode: 'style' | 'reconstruct';
  styleLoss: StyleLossKind;
  contentWeight: number;
  styleWeight: number;
  /** Weight of the total-variation term on the decoded image (0 or absent: no term). */
  tvWeight?: number;
  /** Weight of the grid loss (energy at the upsampling periods) on the decoded image (0 or absent: none). */
  gridWeight?: number;
  /**
   * A second frozen network whose statistics at its `styleLayers` join the style loss (the
   * paper's VGG-19 loss network for a decoder of a distilled encoder); `styleLayers` above
   * then holds only the encoder's layers that the loss network does not reach.
   */
  lossNetwork?: LossNetwork;
  /**
   * Weight of the photo content loss (needs lossNetwork): the loss network's features of the
   * decoded image against those of the content image, at its deepest style layer. The AdaIN content
   * loss pulls towards t, whose structure the cut's features carry only loosely; this one keeps the
   * content image's structure as the loss network sees it. 0 or absent: none.
   */
  photoContentWeight?: number;
  /** The provider the graph will run on (default: the runtime's default), for its workarounds. */
  executionProvider?: string;
}

/** A frozen network that measures the style of the decoded image (train --loss-network). */
export interface LossNetwork {
  kind: EncoderKind;
  /** Its weights (canonical names), up to the deepest of `styleLayers`. */
  weights: ConvWeights;
  styleLayers: CutLayer[];
}

export const TRAIN_STEP_OPSET = 13;

export function trainStepModel(spec: TrainStepSpec): Uint8Array {
  const { batch: n, height, width, cut, mode } = spec;
  const factor = downsampleFactor(cut);
  checkSizes(spec, factor);
  const g = new Graph('train_step');
  const provider = spec.executionProvider ?? defaultExecutionProvider();
  const t = new Tape(g, { unfold: provider === 'webgpu' ? 'batched' : 'grouped' });

  const decoder = decoderLayers(cut);
  const decoderParams = new Map(convNames(decoder).map((name) => {
    const s = decoderShape(spec, name);
    return [name, { w: t.input(`${name}.weight`, s.weight, true), b: t.input(`${name}.bias`, s.bias, true) }];
  }));
  const cutChannels = tapChannels(encoderLayers(cut, spec.kind !== 'vgg19bn'), spec.encoder, cut);
  checkDecoderShapes(spec, cutChannels);
  const target = t.input('target', [n, cutChannels, height / factor, width / factor]);
  const decoded = emit(t, target, decoder, (name) => decoderParams.get(name)!).out;

  const tapped = mode === 'style' ? [cut, ...spec.styleLayers] : [cut];
  const deepest = deepestLayer(tapped);
  const encoder = encoderLayers(deepest, spec.kind !== 'vgg19bn');
  const { taps } = emit(t, decoded, encoder, (name) => {
    const p = spec.encoder.get(name);
    if (!p) throw new UserError(`training graph: the encoder weights have no layer '${name}' (needed up to ${deepest})`);
    return { w: t.constant(g.initializer(`${name}.weight`, p.weight), p.weight.shape), b: t.constant(g.initializer(`${name}.bias`, p.bias), p.bias.shape) };
  });

  const content = contentLoss(t, taps.get(cut)!, target);
  let loss: string, contentTerm: string, style: string;
  if (mode === 'style') {
    contentTerm = content;
    const styleTerms = (layers: readonly CutLayer[], net: readonly Layer[], w: ConvWeights, netTaps: Map<CutLayer, string>, prefix: string) => layers.map((layer) => {
      const c = tapChannels(net, w, layer);
      return { features: netTaps.get(layer)!, mean: t.input(`${prefix}style_mean_${layer}`, [n, c]), std: t.input(`${prefix}style_std_${layer}`, [n, c]) };
    });
    const own = styleTerms(spec.styleLayers, encoder, spec.encoder, taps, '');
    const ln = spec.lossNetwork;
    const lossTaps = ln ? lossNetworkTaps(t, decoded, ln) : undefined;
    const measured = ln && lossTaps ? styleTerms(ln.styleLayers, ...lossTaps, LOSS_NETWORK_PREFIX) : [];
    style = styleLoss(t, [...measured, ...own], spec.styleLoss);
    const terms: [string, number][] = [[contentTerm, spec.contentWeight], [style, spec.styleWeight]];
    if (spec.photoContentWeight) {
      if (!ln || !lossTaps) throw new UserError('training graph: the photo content loss is measured by a loss network: give one');
      const layer = deepestLayer(ln.styleLayers);
      const f = downsampleFactor(layer);
      const photoTarget = t.input(`${LOSS_NETWORK_PREFIX}content_${layer}`, [n, tapChannels(lossTaps[0], lossTaps[1], layer), height / f, width / f]);
      const photo = contentLoss(t, lossTaps[2].get(layer)!, photoTarget);
      g.output(photo, 'photo_content_loss', []);
      terms.push([photo, spec.photoContentWeight]);
    }
    if (spec.tvWeight) {
      const tv = totalVariationLoss(t, decoded);
      g.output(tv, 'tv_loss', []);
      terms.push([tv, spec.tvWeight]);
    }
    if (spec.gridWeight) {
      const grid = gridLoss(t, decoded);
      g.output(grid, 'grid_loss', []);
      terms.push([grid, spec.gridWeight]);
    }
    loss = weightedSum(t, terms);
  } else {
    const pixel = pixelLoss(t, decoded, t.input('content', [n, 3, height, width]));
    g.output(pixel, 'pixel_loss', []);
    contentTerm = weightedSum(t, [[content, 1], [pixel, 1]]);
    style = g.float([0], []);
    loss = weightedSum(t, [[contentTerm, spec.contentWeight]]);
  }

  const grads = t.backward(loss, g.float([1], []));
  g.output(loss, 'loss', []);
  g.output(contentTerm, 'content_loss', []);
  g.output(style, 'style_loss', []);
  g.output(decoded, 'decoded', [n, 3, height, width]);
  for (const [param, grad] of grads) g.output(grad, `grad:${param}`, [...t.shape(param)]);
  return g.toModel(TRAIN_STEP_OPSET, { mode, cut, styleLoss: spec.styleLoss });
}

/** Feed names of a loss network's style statistics start with this. */
export const LOSS_NETWORK_PREFIX = 'loss_';

/** The loss network's layers, as far as its deepest style layer. */
export function lossNetworkLayers(ln: LossNetwork): Layer[] {
  return encoderLayers(deepestLayer(ln.styleLayers), ln.kind !== 'vgg19bn');
}

/** The loss network run on the decoded image: its layers, weights and tapped features. */
function lossNetworkTaps(t: Tape, decoded: string, ln: LossNetwork): [Layer[], ConvWeights, Map<CutLayer, string>] {
  const layers = lossNetworkLayers(ln);
  const { taps } = emit(t, decoded, layers, (name) => {
    const p = ln.weights.get(name);
    if (!p) throw new UserError(`training graph: the loss network's weights have no layer '${name}' (needed up to ${deepestLayer(ln.styleLayers)})`);
    // prefixed: the encoder's initializers carry the same canonical names
    return { w: t.constant(t.g.initializer(`loss.${name}.weight`, p.weight), p.weight.shape), b: t.constant(t.g.initializer(`loss.${name}.bias`, p.bias), p.bias.shape) };
  });
  return [layers, ln.weights, taps];
}

/** Emits a layer list on the tape (the differentiable twin of models/graphs.ts emitLayers). */
function emit(t: Tape, x: string, layers: readonly Layer[], params: (name: string) => { w: string; b: string }): { out: string; taps: Map<CutLayer, string> } {
  const taps = new Map<CutLayer, string>();
  for (const l of layers) {
    if (l.kind === 'pool') x = maxPool2(t, x);
    else if (l.kind === 'up') x = upsample2(t, x);
    else {
      const { w, b } = params(l.name);
      x = conv(t, l.k === 3 ? reflectPad(t, x) : x, w, b);
      if (l.relu) x = relu(t, x);
      if (l.tap) taps.set(l.tap, x);
    }
  }
  return { out: x, taps };
}

function decoderShape(spec: TrainStepSpec, name: string): { weight: number[]; bias: number[] } {
  const s = spec.decoderShapes.get(name);
  if (!s) throw new UserError(`training graph: no shape for decoder layer '${name}' (a decoder for ${spec.cut} has ${convNames(decoderLayers(spec.cut)).join(', ')})`);
  return s;
}

/** Decoder convs must be 3x3, chain up from the encoder's channels at the cut, and end in RGB. */
function checkDecoderShapes(spec: TrainStepSpec, cutChannels: number): void {
  let channels = cutChannels;
  for (const name of convNames(decoderLayers(spec.cut))) {
    const { weight, bias } = decoderShape(spec, name);
    if (weight.length !== 4 || weight[1] !== channels || weight[2] !== 3 || weight[3] !== 3 || bias.length !== 1 || bias[0] !== weight[0]) {
      throw new UserError(`training graph: decoder layer ${name} has weight [${weight}] and bias [${bias}]; expected [C, ${channels}, 3, 3] and [C]`);
    }
    channels = weight[0];
  }
  if (channels !== 3) throw new UserError(`training graph: the decoder's last conv gives ${channels} channels, expected 3 (RGB)`);
}

function tapChannels(encoder: readonly Layer[], w: ConvWeights, layer: CutLayer): number {
  const c = encoder.find((l): l is ConvLayer => l.kind === 'conv' && l.tap === layer)!;
  const p = w.get(c.name);
  if (!p) throw new UserError(`training graph: the encoder weights have no layer '${c.name}' (${layer})`);
  return p.weight.shape[0];
}

function checkSizes(spec: TrainStepSpec, factor: number): void {
  const { batch, height, width, cut } = spec;
  if (!Number.isInteger(batch) || batch < 1) throw new UserError(`training graph: batch must be a positive integer, got ${batch}`);
  for (const [label, v] of [['height', height], ['width', width]] as const) {
    if (!Number.isInteger(v) || v % factor !== 0 || v < 2 * factor) {
      throw new UserError(`training graph: ${label} must be a multiple of ${factor} and at least ${2 * factor} for ${cut}, got ${v}`);
    }
  }
  if (spec.mode === 'style' && spec.styleLayers.length + (spec.lossNetwork?.styleLayers.length ?? 0) === 0) throw new UserError('training graph: style mode needs at least one style layer');
}
