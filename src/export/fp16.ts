/**
 * Float16 conversion of an exported model, as a transform of the serialised ModelProto: the
 * weights become float16 initializers and the whole graph computes in float16 (the Myriad X
 * runs FP16), while the model's interface keeps its types: a float32 input gets a Cast to
 * float16 right after it, a float32 output a Cast back right before it, and uint8 inputs and
 * outputs are cast straight from and to float16.
 */
import onnxProto from 'onnx-proto';
import { ElemType } from '../onnx/graph.js';
import { graphOf, num, type NodeMsg } from './ops.js';

const { onnx } = onnxProto;

type Model = InstanceType<typeof onnx.ModelProto>;
type Tensor = InstanceType<typeof onnx.TensorProto>;

/** Input slots that stay float32 whatever the data type: Resize's roi and scales. */
const FLOAT32_SLOTS: Record<string, number[]> = { Resize: [1, 2] };

/** float32 -> float16 bits, rounding to nearest even; overflow gives +-Infinity. */
export function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf, NaN
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // rounds to zero
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // may carry into the exponent: still right
  e = h >>> 10;
  return sign | (e >= 0x1f ? 0x7c00 : h);
}

/** float16 bits -> number. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** The value float16 storage turns `v` into. */
export function roundToHalf(v: number): number {
  return halfToFloat(floatToHalf(v));
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Converts a float32 model (as built by the exporter) to float16 weights and activations. */
export function toFloat16Model(bytes: Uint8Array): Uint8Array {
  const model: Model = onnx.ModelProto.decode(bytes);
  const graph = graphOf(model);
  const nodes = graph.node;

  // Initializers read by float32-only slots keep float32 (copied if float16 users share them).
  const keep = new Set<string>();
  const other = new Set<string>();
  for (const n of nodes) {
    const slots = FLOAT32_SLOTS[n.opType] ?? [];
    n.input.forEach((name, i) => (slots.includes(i) ? keep : other).add(name));
  }
  const inits: Tensor[] = [];
  for (const t of graph.initializer) {
    if (t.dataType !== ElemType.float) { inits.push(t); continue; }
    if (keep.has(t.name)) {
      inits.push(t);
      if (other.has(t.name)) throw new Error(`initializer ${t.name} feeds both a float32-only slot and a float16 op; give them separate constants`);
      continue;
    }
    inits.push(halfTensor(t));
  }
  graph.initializer = inits;

  for (const n of nodes) {
    if (n.opType !== 'Cast') continue;
    for (const a of n.attribute) if (a.name === 'to' && num(a.i) === ElemType.float) a.i = ElemType.float16;
  }

  const head: NodeMsg[] = [];
  for (const input of graph.input) {
    if (input.type?.tensorType?.elemType !== ElemType.float) continue;
    const half = `${input.name}__fp16`;
    for (const n of nodes) n.input = n.input.map((x) => (x === input.name ? half : x));
    head.push(castNode(input.name, half, ElemType.float16));
  }
  const tail: NodeMsg[] = [];
  for (const output of graph.output) {
    if (output.type?.tensorType?.elemType !== ElemType.float) continue;
    const half = `${output.name}__fp16`;
    for (const n of nodes) {
      n.output = n.output.map((x) => (x === output.name ? half : x));
      n.input = n.input.map((x) => (x === output.name ? half : x));
    }
    tail.push(castNode(half, output.name, ElemType.float));
  }
  graph.node = [...head, ...nodes, ...tail];
  return onnx.ModelProto.encode(model).finish();
}

function castNode(input: string, output: string, to: number): NodeMsg {
  return onnx.NodeProto.create({
    opType: 'Cast', input: [input], output: [output], name: `cast_${output}`,
    attribute: [onnx.AttributeProto.create({ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: to })],
  }) as NodeMsg;
}

function halfTensor(t: Tensor): Tensor {
  const values = t.rawData?.length
    ? new Float32Array(Uint8Array.from(t.rawData).buffer)
    : Float32Array.from(t.floatData);
  const half = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) half[i] = floatToHalf(values[i]);
  return onnx.TensorProto.create({
    name: t.name, dims: t.dims, dataType: ElemType.float16, rawData: new Uint8Array(half.buffer),
  });
}

/**
 * A float32 model that behaves like float16 storage: weights rounded to float16 values and
 * every intermediate value rounded to float16 (a Cast to float16 and back after each op).
 * onnxruntime's CPU provider has few float16 kernels and runs a float16 graph in float32
 * between casts that it inserts and then merges, so the float16 model itself does not show
 * what rounding the activations costs; this emulation does.
 */
export function emulateFloat16(bytes: Uint8Array): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const graph = graphOf(model);
  const keep = new Set<string>();
  for (const n of graph.node) (FLOAT32_SLOTS[n.opType] ?? []).forEach((i) => keep.add(n.input[i]));
  graph.initializer = graph.initializer.map((t) => {
    if (t.dataType !== ElemType.float || keep.has(t.name)) return t;
    const h = halfTensor(t);
    const half = new Uint16Array(Uint8Array.from(h.rawData).buffer);
    const back = Float32Array.from(half, halfToFloat);
    return onnx.TensorProto.create({ name: t.name, dims: t.dims, dataType: ElemType.float, rawData: new Uint8Array(back.buffer) });
  });
  const outputs = new Set(graph.output.map((o) => o.name));
  const nodes: NodeMsg[] = [];
  for (const n of graph.node) {
    nodes.push(n);
    if (n.opType === 'Cast') continue;
    n.output = n.output.map((o) => {
      if (outputs.has(o)) return o;
      const raw = `${o}__f32`, half = `${o}__f16`;
      nodes.push(castNode(raw, half, ElemType.float16), castNode(half, o, ElemType.float));
      return raw;
    });
  }
  graph.node = nodes;
  return onnx.ModelProto.encode(model).finish();
}
