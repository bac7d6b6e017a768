/**
 * What an exported model may contain: plain ops that OpenVINO's Myriad X plugin (and every
 * other edge runtime worth the name) runs, in their static forms. Checked on the serialised
 * model, so that whatever produced the bytes, nothing else gets written.
 */
import onnxProto from 'onnx-proto';
import { UserError } from '../errors.js';
import { ElemType } from '../onnx/graph.js';

const { onnx } = onnxProto;

/** Decoded messages, with the defaults protobufjs fills in (the generated types leave them optional). */
export type NodeMsg = InstanceType<typeof onnx.NodeProto> & { input: string[]; output: string[]; attribute: InstanceType<typeof onnx.AttributeProto>[] };
export type ValueInfoMsg = InstanceType<typeof onnx.ValueInfoProto>;
export type TensorMsg = InstanceType<typeof onnx.TensorProto>;
export interface GraphMsg { node: NodeMsg[]; initializer: TensorMsg[]; input: ValueInfoMsg[]; output: ValueInfoMsg[] }

/** The graph of a decoded model. */
export function graphOf(model: InstanceType<typeof onnx.ModelProto>): GraphMsg {
  if (!model.graph) throw new UserError('the model has no graph');
  return model.graph as unknown as GraphMsg;
}

/**
 * The network's ops (Conv, reflect Pad, Relu, MaxPool, nearest Resize), AdaIN's arithmetic,
 * and two more that the camera formats need: Clip (to [0,1] or 0..255) and Cast (uint8 in and
 * out, and the float16 model's float32 interface).
 */
export const ALLOWED_OPS: readonly string[] = [
  'Conv', 'Pad', 'Relu', 'MaxPool', 'Resize', 'ReduceMean', 'Sub', 'Mul', 'Add', 'Div', 'Sqrt', 'Clip', 'Cast',
];

/** Opsets the exporter emits version-correct forms for (ReduceMean takes axes as an input from 18). */
export const MIN_OPSET = 11;
export const MAX_OPSET = 17;
/**
 * What the seed exported for the OAK-1, and an opset that every OpenVINO release with the
 * MYRIAD plugin (up to 2022.3; depthai's tools use 2022.1) reads.
 */
export const DEFAULT_OPSET = 11;

export interface GraphSummary {
  opset: number;
  /** Op type -> count, in first-use order. */
  ops: Map<string, number>;
  inputs: { name: string; dims: number[]; type: string }[];
  outputs: { name: string; dims: number[]; type: string }[];
  initializers: number;
  /** Bytes of weights and constants. */
  weightBytes: number;
}

const TYPE_NAMES = new Map<number, string>(Object.entries(ElemType).map(([k, v]) => [v, k]));

/**
 * Checks the model against the allow-list and the static-form rules; throws a UserError
 * naming the first offending op. Returns a summary of what is inside.
 */
export function checkExportModel(bytes: Uint8Array): GraphSummary {
  const model = onnx.ModelProto.decode(bytes);
  const graph = graphOf(model);
  const opset = num(model.opsetImport.find((o) => !o.domain)?.version);
  const inits = new Map(graph.initializer.map((t) => [t.name, t]));
  const ops = new Map<string, number>();
  const where = (n: NodeMsg) => `op ${n.opType} (node ${n.name || n.output[0]})`;

  for (const n of graph.node) {
    if (n.domain && n.domain !== 'ai.onnx') {
      throw new UserError(`${where(n)} is from domain ${n.domain}; edge export allows only standard ONNX ops: ${ALLOWED_OPS.join(', ')}`);
    }
    if (!ALLOWED_OPS.includes(n.opType)) {
      throw new UserError(`${where(n)} is not in the allowed set for edge export (${ALLOWED_OPS.join(', ')}); the OAK-1's Myriad X may not run it`);
    }
    ops.set(n.opType, (ops.get(n.opType) ?? 0) + 1);
    const attr = (name: string) => n.attribute.find((a) => a.name === name);
    const str = (name: string) => {
      const a = attr(name);
      return a?.s ? new TextDecoder().decode(a.s) : undefined;
    };
    const constant = (i: number, what: string) => {
      const name = n.input[i];
      if (!name || !inits.has(name)) throw new UserError(`${where(n)}: ${what} must be a constant initializer so that every shape is static`);
    };
    switch (n.opType) {
      case 'Pad':
        if (str('mode') !== 'reflect') throw new UserError(`${where(n)}: only reflect padding is allowed, got mode ${str('mode') ?? 'constant'}`);
        constant(1, 'pads');
        break;
      case 'Resize':
        if (str('mode') !== 'nearest') throw new UserError(`${where(n)}: only nearest resizing is allowed, got mode ${str('mode') ?? 'nearest'}`);
        if (n.input[3]) throw new UserError(`${where(n)}: sizes must not be given; use constant scales`);
        constant(2, 'scales');
        break;
      case 'ReduceMean':
        if (n.input.length > 1) throw new UserError(`${where(n)}: axes must be an attribute (opset <= 17)`);
        break;
      case 'Clip':
        if (n.input[1]) constant(1, 'min');
        if (n.input[2]) constant(2, 'max');
        break;
    }
  }

  const io = (v: ValueInfoMsg, role: string) => {
    const t = v.type?.tensorType;
    const dims = (t?.shape?.dim ?? []).map((d) => {
      const n = num(d.dimValue);
      if (d.dimParam || !(n > 0)) {
        throw new UserError(`${role} ${v.name} has a symbolic dimension ${d.dimParam || '?'}; exported models must have a fixed shape`);
      }
      return n;
    });
    if (!t?.shape || dims.length === 0) throw new UserError(`${role} ${v.name} has no shape; exported models must have a fixed shape`);
    return { name: v.name, dims, type: TYPE_NAMES.get(t.elemType ?? 0) ?? `type ${t.elemType}` };
  };
  let weightBytes = 0;
  for (const t of graph.initializer) weightBytes += t.rawData?.length ?? 0;
  return {
    opset, ops,
    inputs: graph.input.filter((v) => !inits.has(v.name)).map((v) => io(v, 'input')),
    outputs: graph.output.map((v) => io(v, 'output')),
    initializers: graph.initializer.length,
    weightBytes,
  };
}

/** A protobuf int64 (number or Long) as a number; 0 when absent. */
export function num(v: number | { toNumber(): number } | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}
