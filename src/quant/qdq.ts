/**
 * int8 versions of the encoder and decoder graphs in ONNX's QDQ form, emitted directly by the
 * graph builder (no Python quantisation tooling):
 *
 * - weights: s8, symmetric, one scale per output channel; biases int32 at scale
 *   s_input * s_weight[c], as QLinearConv wants them;
 * - activations: u8, one scale and zero point per tensor, from calibrated ranges.
 *
 * QuantizeLinear sits right after each ReLU (after the conv when there is none), so the reflect
 * Pad, MaxPool and Resize that follow run on u8 values and the only float ops between a
 * DequantizeLinear and the next QuantizeLinear are Conv (+ ReLU). That is the exact pattern
 * onnxruntime fuses into QLinearConv; anything else between them (a float Pad, a second
 * consumer of the ReLU output) leaves a DQ + float Conv, slower than plain fp32. AdaIN and the
 * channel statistics are outside these graphs and stay in float, and so do the few convs a
 * calibration names in `float` (cheap ones whose quantisation costs the most quality).
 */
import { ElemType, Graph } from '../onnx/graph.js';
import { maxPool2, reflectPad, upsample2 } from '../nn/layers.js';
import type { ConvLayer, CutLayer, Layer } from '../models/architectures.js';
import type { ConvWeights } from '../models/canonical-weights.js';
import type { ConvParams } from '../nn/layers.js';

/** The float range one quantised tensor must cover. */
export interface ActivationRange { min: number; max: number }

/**
 * The ranges of one network's quantised tensors: `input` (the graph input) and, per conv layer
 * name, that layer's output (after its ReLU when it has one).
 */
export type NetworkRanges = Record<string, ActivationRange>;

/** The name of the range of the graph input in NetworkRanges. */
export const INPUT_POINT = 'input';

/**
 * Per-channel divisors applied before quantising, by point (a conv's output, or `input`): channel
 * c of that tensor is carried as x / s[c], and the next conv's input weights are multiplied by
 * s[c]. Exact in float (ReLU, reflect Pad, MaxPool and nearest Resize commute with a positive
 * per-channel scale), and it lets one per-tensor u8 range fit channels of very different sizes.
 */
export type ChannelScales = Record<string, number[]>;

/** What the int8 graph of one network needs: per-tensor ranges of the equalised network, and the equalisation. */
export interface NetworkQuant {
  ranges: NetworkRanges;
  scales: ChannelScales;
  /**
   * Conv layers kept in float (float weights, input and output): the few whose quantisation
   * error the output is most sensitive to, where the float conv costs little time.
   */
  float?: readonly string[];
}
export interface QuantSpec { encoder: NetworkQuant; decoder: NetworkQuant }

interface QValue { value: string; scale: string; zp: string }

/** u8 scale and zero point covering [min, max]; the range always includes 0 so that 0 is exact (ReLU outputs, padding). */
export function u8Params(r: ActivationRange): { scale: number; zeroPoint: number } {
  const lo = Math.min(r.min, 0), hi = Math.max(r.max, 0);
  // a tensor that is always 0 (a dead channel set) still needs a positive scale
  const scale = hi - lo > 1e-12 ? (hi - lo) / 255 : 1e-8;
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-lo / scale)));
  return { scale, zeroPoint };
}

/** Symmetric per-output-channel s8 weights: scale[c] = max|w[c]| / 127. */
export function quantizeWeights(w: ConvParams['weight']): { q: Int8Array; scales: Float32Array } {
  const out = w.shape[0];
  const per = w.data.length / out;
  const q = new Int8Array(w.data.length);
  const scales = new Float32Array(out);
  for (let c = 0; c < out; c++) {
    let amax = 0;
    for (let i = c * per; i < (c + 1) * per; i++) amax = Math.max(amax, Math.abs(w.data[i]));
    const s = amax > 0 ? amax / 127 : 1;
    scales[c] = s;
    for (let i = c * per; i < (c + 1) * per; i++) q[i] = Math.max(-127, Math.min(127, Math.round(w.data[i] / s)));
  }
  return { q, scales };
}

function quantize(g: Graph, x: string, r: ActivationRange, label: string): QValue {
  const { scale, zeroPoint } = u8Params(r);
  const s = g.typedInitializer(`${label}.act_scale`, [], 'float', new Float32Array([scale]));
  const zp = g.typedInitializer(`${label}.act_zp`, [], 'uint8', new Uint8Array([zeroPoint]));
  return { value: g.op('QuantizeLinear', [x, s, zp]), scale: s, zp };
}

function dequantize(g: Graph, q: QValue, outName?: string): string {
  return g.op('DequantizeLinear', [q.value, q.scale, q.zp], {}, outName);
}

/** DQ(input) -> Conv(DQ(s8 weights), DQ(int32 bias)): the float island QLinearConv replaces. */
function qdqConv(g: Graph, input: QValue, inputScale: number, name: string, p: ConvParams): string {
  const k = p.weight.shape[2];
  const out = p.weight.shape[0];
  const { q, scales } = quantizeWeights(p.weight);
  const wq = g.typedInitializer(`${name}.weight_q`, p.weight.shape, 'int8', q);
  const ws = g.typedInitializer(`${name}.weight_scale`, [out], 'float', scales);
  const wzp = g.typedInitializer(`${name}.weight_zp`, [out], 'int8', new Int8Array(out));
  const bScales = new Float32Array(out), bq = new Int32Array(out);
  for (let c = 0; c < out; c++) {
    bScales[c] = inputScale * scales[c];
    bq[c] = Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.round(p.bias.data[c] / bScales[c])));
  }
  const bqName = g.typedInitializer(`${name}.bias_q`, [out], 'int32', bq);
  const bs = g.typedInitializer(`${name}.bias_scale`, [out], 'float', bScales);
  const bzp = g.typedInitializer(`${name}.bias_zp`, [out], 'int32', new Int32Array(out));
  const xf = dequantize(g, input);
  const wf = g.op('DequantizeLinear', [wq, ws, wzp], { axis: { i: 0 } });
  const bf = g.op('DequantizeLinear', [bqName, bs, bzp], { axis: { i: 0 } });
  return g.op('Conv', [xf, wf, bf], { kernel_shape: { ints: [k, k] }, pads: { ints: [0, 0, 0, 0] }, strides: { ints: [1, 1] } });
}

/**
 * The same conv as ConvInteger (u8 x s8 -> int32) with the scales applied in float after it:
 * for a network's last conv, whose output leaves the graph (the encoder's features, which AdaIN
 * divides by each channel's std: a per-tensor u8 step would swamp the quiet channels).
 */
function integerConv(g: Graph, input: QValue, inputScale: number, name: string, p: ConvParams): string {
  const k = p.weight.shape[2];
  const out = p.weight.shape[0];
  const { q, scales } = quantizeWeights(p.weight);
  const wq = g.typedInitializer(`${name}.weight_q`, p.weight.shape, 'int8', q);
  // one zero point: onnxruntime's ConvInteger refuses per-channel ones, and symmetric weights have 0 in every channel
  const wzp = g.typedInitializer(`${name}.weight_zp`, [], 'int8', new Int8Array(1));
  const acc = g.op('ConvInteger', [input.value, wq, input.zp, wzp], { kernel_shape: { ints: [k, k] }, pads: { ints: [0, 0, 0, 0] }, strides: { ints: [1, 1] } });
  const s = g.typedInitializer(`${name}.acc_scale`, [1, out, 1, 1], 'float', scales.map((x) => x * inputScale));
  const b = g.typedInitializer(`${name}.bias`, [1, out, 1, 1], 'float', p.bias.data);
  return g.op('Add', [g.op('Mul', [g.op('Cast', [acc], { to: { i: ElemType.float } }), s]), b]);
}

/** Weights with the equalisation folded in (see ChannelScales); the `input` scales are applied by the graph. */
export function equalizeWeights(layers: readonly Layer[], w: ConvWeights, scales: ChannelScales): ConvWeights {
  const out: ConvWeights = new Map([...w].map(([k, p]) => [k, { weight: { shape: p.weight.shape, data: Float32Array.from(p.weight.data) }, bias: { shape: p.bias.shape, data: Float32Array.from(p.bias.data) } }]));
  const convs = layers.filter((l): l is ConvLayer => l.kind === 'conv');
  const scaleInputs = (name: string, s: number[]) => {
    const p = out.get(name)!;
    const [o, c, kh, kw] = p.weight.shape;
    for (let i = 0; i < o; i++) for (let j = 0; j < c; j++) for (let t = 0; t < kh * kw; t++) p.weight.data[(i * c + j) * kh * kw + t] *= s[j];
  };
  if (scales[INPUT_POINT]) scaleInputs(convs[0].name, scales[INPUT_POINT]);
  convs.forEach((l, i) => {
    const s = scales[l.name];
    if (!s) return;
    const p = out.get(l.name)!;
    const per = p.weight.data.length / s.length;
    for (let c = 0; c < s.length; c++) {
      p.bias.data[c] /= s[c];
      for (let k = c * per; k < (c + 1) * per; k++) p.weight.data[k] /= s[c];
    }
    // the last conv's scales are undone on the graph output instead (outputScale)
    if (i + 1 < convs.length) scaleInputs(convs[i + 1].name, s);
  });
  return out;
}

/** A graph output multiplied back by the equalisation scales `s` of the conv `point` that made it (see ChannelScales). */
function outputScale(g: Graph, x: string, point: string, s: readonly number[]): string {
  return g.op('Mul', [x, g.typedInitializer(`${point}.channel_unscale`, [1, s.length, 1, 1], 'float', Float32Array.from(s))]);
}

/** The graph input divided by the `input` scales, when there are any. */
function scaleInput(g: Graph, x: string, scales: ChannelScales): string {
  const s = scales[INPUT_POINT];
  if (!s) return x;
  return g.op('Mul', [x, g.typedInitializer('input.channel_scale', [1, s.length, 1, 1], 'float', Float32Array.from(s, (v) => 1 / v))]);
}

function rangeOf(ranges: NetworkRanges, point: string, role: string): ActivationRange {
  const r = ranges[point];
  if (!r || !Number.isFinite(r.min) || !Number.isFinite(r.max)) {
    throw new Error(`${role} calibration has no range for ${point}; recalibrate with \`adain calibrate\``);
  }
  return r;
}

/** A reflect-padded (unless `pad` is false) conv (+ ReLU) in float, for a layer kept out of int8 (NetworkQuant.float). */
function floatConv(g: Graph, x: string, name: string, p: ConvParams, relu: boolean, pad = true): string {
  const k = p.weight.shape[2];
  const input = k === 3 && pad ? reflectPad(g, x, 1) : x;
  const y = g.op('Conv', [input, g.initializer(`${name}.weight`, p.weight), g.initializer(`${name}.bias`, p.bias)], {
    kernel_shape: { ints: [k, k] }, pads: { ints: [0, 0, 0, 0] }, strides: { ints: [1, 1] },
  });
  return relu ? g.op('Relu', [y]) : y;
}

/** Whether `rest` (what follows an upsampling) is two float 3x3 convs ending the network: see floatTail. */
function isFloatTail(rest: readonly Layer[], floats: ReadonlySet<string>): boolean {
  return rest.length === 2 && rest.every((l) => l.kind === 'conv' && l.k === 3 && floats.has(l.name));
}

/**
 * upsample -> pad -> conv a -> pad -> conv b, all float at the full resolution, with one pad at
 * the low resolution instead of two at the full one. A reflect pad of a nearest-upsampled map is
 * its edge pad (the border rows come in equal pairs), so edge-padding the small map by 1 and
 * upsampling gives the map edge-padded by 2: conv a then needs no pad, and its one-pixel ring
 * feeds conv b in place of b's reflect pad. The inside of a's output is exact; only b's outermost
 * pixel ring differs from the float graph (it sees a's edge values where reflection would give the
 * next row in). Two full-resolution Pads and the layout reorders onnxruntime puts around them
 * were ~30% of the int8 decoder's time at 512x512.
 */
function floatTail(g: Graph, x: string, a: ConvLayer, pa: ConvParams, b: ConvLayer, pb: ConvParams): { a: string; b: string } {
  const canvas = upsample2(g, g.op('Pad', [x, g.int64([0, 0, 1, 1, 0, 0, 1, 1])], { mode: { s: 'edge' } }));
  const ya = floatConv(g, canvas, a.name, pa, a.relu, false);
  return { a: ya, b: floatConv(g, ya, b.name, pb, b.relu, false) };
}

/** The value flowing between layers: quantised (u8) or float, and the point whose range quantises it. */
type Flow = { q: QValue; scale: number } | { f: string; point: string };

/** The first conv after layer `l`, if any. */
function nextConv(layers: readonly Layer[], l: Layer): ConvLayer | undefined {
  return layers.slice(layers.indexOf(l) + 1).find((x): x is ConvLayer => x.kind === 'conv');
}

/**
 * Emits a layer list in QDQ form from a float input; returns the final and tapped values, quantised
 * (float for a ConvInteger last conv or a float layer). A layer named in `floats` runs in float:
 * its input is dequantised (or never quantised), and its output is quantised only when the next
 * conv is int8 (which then still fuses).
 */
function emitQdqLayers(g: Graph, x: string, layers: readonly Layer[], w: ConvWeights, ranges: NetworkRanges, role: string, floats: ReadonlySet<string>, floatLast = false): { out: QValue | string; taps: Map<CutLayer, QValue | string> } {
  const taps = new Map<CutLayer, QValue | string>();
  const lastConv = layers.filter((l) => l.kind === 'conv').at(-1);
  for (const n of floats) {
    if (!layers.some((l) => l.kind === 'conv' && l.name === n)) throw new Error(`${role} calibration keeps ${n} in float, but the ${role} has no such conv; recalibrate with \`adain calibrate\``);
  }
  const asQ = (v: Flow): { q: QValue; scale: number } => {
    if ('q' in v) return v;
    const r = rangeOf(ranges, v.point, role);
    return { q: quantize(g, v.f, r, `${role}.${v.point}`), scale: u8Params(r).scale };
  };
  const asF = (v: Flow): string => ('q' in v ? dequantize(g, v.q) : v.f);
  const exported = (v: Flow): QValue | string => ('q' in v ? v.q : v.f);
  let v: Flow = floats.has(layers.find((l) => l.kind === 'conv')?.name ?? '') ? { f: x, point: INPUT_POINT } : asQ({ f: x, point: INPUT_POINT });
  for (const [i, l] of layers.entries()) {
    // Pool and upsample keep the scale: max and nearest copy values, they do not compute new ones.
    if (l.kind === 'pool') v = 'q' in v ? { ...v, q: { ...v.q, value: maxPool2(g, v.q.value) } } : { ...v, f: maxPool2(g, v.f) };
    else if (l.kind === 'up' && isFloatTail(layers.slice(i + 1), floats)) {
      const [a, b] = layers.slice(i + 1) as ConvLayer[];
      const y = floatTail(g, asF(v), a, w.get(a.name)!, b, w.get(b.name)!);
      if (a.tap) taps.set(a.tap, y.a);
      if (b.tap) taps.set(b.tap, y.b);
      return { out: y.b, taps };
    } else if (l.kind === 'up') {
      // before a float conv, dequantise at the small end: onnxruntime's u8 Resize is ~3x slower
      // than its float one, and the DQ then runs on a quarter of the pixels
      const next = nextConv(layers, l);
      // (no point: a float conv follows, so this value is never quantised again)
      if ('q' in v && next && floats.has(next.name)) v = { f: asF(v), point: '' };
      v = 'q' in v ? { ...v, q: { ...v.q, value: upsample2(g, v.q.value) } } : { ...v, f: upsample2(g, v.f) };
    }
    else {
      const p = w.get(l.name)!;
      if (floats.has(l.name)) {
        v = { f: floatConv(g, asF(v), l.name, p, l.relu), point: l.name };
        if (l.tap) taps.set(l.tap, v.f);
        // quantised at once when an int8 conv follows, so that a pool or upsample between runs on u8
        const next = nextConv(layers, l);
        if (next && !floats.has(next.name)) v = asQ(v);
        continue;
      }
      const { q, scale } = asQ(v);
      const padded = p.weight.shape[2] === 3 ? { ...q, value: reflectPad(g, q.value, 1) } : q;
      if (floatLast && l === lastConv) {
        if (l !== layers.at(-1)) throw new Error(`${role}: a float last conv must end the layer list`);
        let y = integerConv(g, padded, scale, l.name, p);
        if (l.relu) y = g.op('Relu', [y]);
        if (l.tap) taps.set(l.tap, y);
        return { out: y, taps };
      }
      let y = qdqConv(g, padded, scale, l.name, p);
      if (l.relu) y = g.op('Relu', [y]);
      const r = rangeOf(ranges, l.name, role);
      v = { q: quantize(g, y, r, l.name), scale: u8Params(r).scale };
      if (l.tap) taps.set(l.tap, v.q);
    }
  }
  return { out: exported(v), taps };
}

/**
 * A 1x1 conv without ReLU followed by a reflect-padded 3x3 conv is one 3x3 conv: reflection
 * copies pixels, so it commutes with a per-pixel affine map. Folding the normalised VGG's
 * RGB -> BGR*255-mean layer into conv1_1 saves a quantisation step right at the input,
 * where low-contrast photos have the least room.
 */
export function foldInputConv(layers: readonly Layer[], w: ConvWeights): { layers: Layer[]; weights: ConvWeights } {
  const [a, b] = layers;
  if (a?.kind !== 'conv' || b?.kind !== 'conv' || a.k !== 1 || a.relu || b.k !== 3) return { layers: [...layers], weights: w };
  const p0 = w.get(a.name)!, p1 = w.get(b.name)!;
  const [o1, c1, kh, kw] = p1.weight.shape;
  const cin = p0.weight.shape[1];
  const weight = new Float32Array(o1 * cin * kh * kw);
  const bias = Float32Array.from(p1.bias.data);
  for (let o = 0; o < o1; o++) {
    for (let j = 0; j < c1; j++) {
      for (let t = 0; t < kh * kw; t++) {
        const w1 = p1.weight.data[(o * c1 + j) * kh * kw + t];
        bias[o] += w1 * p0.bias.data[j];
        for (let i = 0; i < cin; i++) weight[(o * cin + i) * kh * kw + t] += w1 * p0.weight.data[j * cin + i];
      }
    }
  }
  const weights: ConvWeights = new Map(w);
  weights.delete(a.name);
  weights.set(b.name, { weight: { shape: [o1, cin, kh, kw], data: weight }, bias: { shape: [o1], data: bias } });
  return { layers: layers.slice(1), weights };
}

/**
 * int8 encoder: image [N,3,H,W] RGB in [0,1] -> the requested ReLU outputs in float. AdaIN
 * divides each channel of the features by its std, so one per-tensor u8 step there would be
 * amplified most in the quietest channels. A calibration with scales for the last conv carries
 * each channel divided by its own range (equalised), so the last conv fuses into a QLinearConv
 * like the others and the output is multiplied back: in effect one u8 step per channel. Without
 * them (calibrations before session 7) the last conv is a ConvInteger with a float output,
 * exact but several times slower (onnxruntime runs ConvInteger unfused). The default calibration
 * keeps the last conv in float instead (calibrate.ts defaultFloatLayers), which is exact.
 */
export function qdqEncoderModel(allLayers: readonly Layer[], allWeights: ConvWeights, outputs: readonly CutLayer[], q: NetworkQuant): Uint8Array {
  const g = new Graph('encoder_int8');
  const x = g.input('image', ['N', 3, 'H', 'W']);
  const last = allLayers.filter((l): l is ConvLayer => l.kind === 'conv').at(-1)!;
  // a float last conv needs no equalised output (nothing quantises it), and unequalised it needs no Mul after it
  const { [last.name]: _, ...unequalisedLast } = q.scales;
  const scales = q.float?.includes(last.name) ? unequalisedLast : q.scales;
  const lastScales = scales[last.name];
  const equalisedLast = lastScales !== undefined;
  const { layers, weights: w } = foldInputConv(allLayers, equalizeWeights(allLayers, allWeights, scales));
  const { taps } = emitQdqLayers(g, scaleInput(g, x, scales), layers, w, q.ranges, 'encoder', new Set(q.float), !equalisedLast);
  for (const t of outputs) {
    const v = taps.get(t)!;
    const f = typeof v === 'string' ? v : dequantize(g, v);
    if (!equalisedLast) g.output(f, t);
    else if (t === last.tap) g.output(outputScale(g, f, last.name, lastScales), t);
    else throw new Error(`encoder: ${t} is not the last layer, whose scales alone the graph undoes`);
  }
  return g.toModel();
}

/** int8 decoder: features [N,C,h,w] (float, after AdaIN) -> image [N,3,H,W] (float). */
export function qdqDecoderModel(layers: readonly Layer[], raw: ConvWeights, q: NetworkQuant): Uint8Array {
  const g = new Graph('decoder_int8');
  const w = equalizeWeights(layers, raw, q.scales);
  const first = layers.find((l): l is ConvLayer => l.kind === 'conv')!;
  const c = w.get(first.name)!.weight.shape[1];
  const x = g.input('features', ['N', c, 'h', 'w']);
  // The last conv has no ReLU; its output is quantised too so that it fuses like the others.
  const { out } = emitQdqLayers(g, scaleInput(g, x, q.scales), layers, w, q.ranges, 'decoder', new Set(q.float));
  g.output(typeof out === 'string' ? out : dequantize(g, out), 'image');
  return g.toModel();
}

/**
 * The float graph with every tensor that the int8 graph quantises as an output (named as in
 * NetworkRanges), for calibration. Same ops as models/graphs.ts emits.
 */
export function probeModel(layers: readonly Layer[], raw: ConvWeights, inputName: 'image' | 'features', channels: number, scales: ChannelScales = {}): { model: Uint8Array; points: string[] } {
  const g = new Graph('probe');
  const w = equalizeWeights(layers, raw, scales);
  let x = scaleInput(g, g.input(inputName, ['N', channels, 'H', 'W']), scales);
  const points: string[] = [INPUT_POINT];
  g.output(x, INPUT_POINT);
  for (const l of layers) {
    if (l.kind === 'pool') x = maxPool2(g, x);
    else if (l.kind === 'up') x = upsample2(g, x);
    else {
      const p = w.get(l.name)!;
      const k = p.weight.shape[2];
      const input = k === 3 ? reflectPad(g, x, 1) : x;
      x = g.op('Conv', [input, g.initializer(`${l.name}.weight`, p.weight), g.initializer(`${l.name}.bias`, p.bias)], {
        kernel_shape: { ints: [k, k] }, pads: { ints: [0, 0, 0, 0] }, strides: { ints: [1, 1] },
      });
      if (l.relu) x = g.op('Relu', [x]);
      // a graph output named like the value would clash with later uses; Identity gives it its own name
      g.output(x, `probe_${l.name}`);
      points.push(l.name);
    }
  }
  return { model: g.toModel(), points };
}
