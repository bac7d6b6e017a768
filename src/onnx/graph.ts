import onnxProto from 'onnx-proto';
import type { Tensor } from '../weights/tensor.js';

const { onnx } = onnxProto;

/** An attribute value, tagged so that 1 (int) and 1.0 (float) cannot be confused. */
export type Attr = { i: number } | { f: number } | { s: string } | { ints: number[] } | { floats: number[] };

/** A dimension: a fixed size or a symbolic name (dynamic). */
export type Dim = number | string;

export const ElemType = { float: 1, float16: 10, uint8: 2, int8: 3, int32: 6, int64: 7 } as const;
export type ElemTypeName = keyof typeof ElemType;

/**
 * Builds one ONNX graph by appending nodes; value names are generated so that callers
 * compose layers as plain functions of value names.
 */
export class Graph {
  private readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  private readonly inits: InstanceType<typeof onnx.TensorProto>[] = [];
  private readonly inputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly outputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly used = new Set<string>();
  private readonly constCache = new Map<string, string>();
  private counter = 0;

  constructor(readonly name = 'adain') {}

  /** A fresh value name with the given prefix. */
  fresh(prefix: string): string {
    let name = prefix;
    while (this.used.has(name)) name = `${prefix}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  input(name: string, dims: Dim[], type: ElemTypeName = 'float'): string {
    this.inputs.push(valueInfo(name, dims, type));
    this.used.add(name);
    return name;
  }

  output(value: string, name: string, dims?: Dim[], type: ElemTypeName = 'float'): string {
    if (value !== name) this.op('Identity', [value], {}, name);
    this.outputs.push(valueInfo(name, dims, type));
    return name;
  }

  /** A float32 weight tensor stored in the model. */
  initializer(prefix: string, t: Tensor): string {
    const name = this.fresh(prefix);
    this.inits.push(onnx.TensorProto.create({
      name, dims: t.shape, dataType: ElemType.float,
      rawData: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
    }));
    return name;
  }

  /** A tensor of any element type given as its raw little-endian bytes (quantised weights, scales, zero points). */
  typedInitializer(prefix: string, dims: number[], type: ElemTypeName, data: Float32Array | Int32Array | Int8Array | Uint8Array): string {
    const name = this.fresh(prefix);
    this.inits.push(onnx.TensorProto.create({
      name, dims, dataType: ElemType[type],
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    }));
    return name;
  }

  /** An int64 constant (shapes, pads, axes), deduplicated. */
  int64(values: number[], dims: number[] = [values.length]): string {
    const key = `i64:${dims}:${values}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = this.fresh('const_i64');
    const raw = new BigInt64Array(values.map((v) => BigInt(v)));
    this.inits.push(onnx.TensorProto.create({
      name, dims, dataType: ElemType.int64, rawData: new Uint8Array(raw.buffer),
    }));
    this.constCache.set(key, name);
    return name;
  }

  /** A float32 constant, deduplicated. */
  float(values: number[], dims: number[] = [values.length]): string {
    const key = `f32:${dims}:${values}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = this.initializer('const_f32', { shape: dims, data: new Float32Array(values) });
    this.constCache.set(key, name);
    return name;
  }

  /** Appends a node and returns the name of its (first) output. */
  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, outName?: string): string {
    return this.opMulti(opType, inputs, 1, attrs, outName ? [outName] : undefined)[0];
  }

  opMulti(opType: string, inputs: string[], nOut: number, attrs: Record<string, Attr> = {}, outNames?: string[]): string[] {
    const outputs = outNames ?? Array.from({ length: nOut }, () => this.fresh(opType.toLowerCase()));
    for (const o of outputs) this.used.add(o);
    this.nodes.push(onnx.NodeProto.create({
      opType, input: inputs, output: outputs, name: this.fresh(`n_${opType}`),
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    }));
    return outputs;
  }

  /** The op types used, for checks on exported graphs. */
  opTypes(): Set<string> {
    return new Set(this.nodes.map((n) => n.opType));
  }

  toModel(opset = 13, metadata: Record<string, string> = {}): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: opset >= 15 ? 8 : 7,
      producerName: 'adain',
      opsetImport: [{ domain: '', version: opset }],
      graph: onnx.GraphProto.create({
        name: this.name, node: this.nodes, initializer: this.inits, input: this.inputs, output: this.outputs,
      }),
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function valueInfo(name: string, dims: Dim[] | undefined, type: ElemTypeName): InstanceType<typeof onnx.ValueInfoProto> {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: ElemType[type],
        shape: dims ? { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } : undefined,
      },
    },
  });
}

function attribute(name: string, v: Attr): InstanceType<typeof onnx.AttributeProto> {
  const T = onnx.AttributeProto.AttributeType;
  if ('i' in v) return onnx.AttributeProto.create({ name, type: T.INT, i: v.i });
  if ('f' in v) return onnx.AttributeProto.create({ name, type: T.FLOAT, f: v.f });
  if ('s' in v) return onnx.AttributeProto.create({ name, type: T.STRING, s: new TextEncoder().encode(v.s) });
  if ('ints' in v) return onnx.AttributeProto.create({ name, type: T.INTS, ints: v.ints });
  return onnx.AttributeProto.create({ name, type: T.FLOATS, floats: v.floats });
}
