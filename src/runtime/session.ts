import os from 'node:os';
import * as ort from 'onnxruntime-node';

export interface RuntimeOptions {
  /** Intra-op threads; default all cores (onnxruntime's own default is slower here). */
  threads?: number;
}

export function defaultThreads(): number {
  return os.availableParallelism();
}

/** One onnxruntime session with the project's settings; built once and reused per model. */
export async function createSession(model: Uint8Array, opts: RuntimeOptions = {}): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model, {
    intraOpNumThreads: opts.threads ?? defaultThreads(),
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    enableCpuMemArena: true,
    // Spinning worker threads hold both cores after a run, slowing whatever runs next (the
    // other network of the pair, the JS in between): ~14% slower stylisations on 2 cores.
    extra: { session: { 'intra_op.allow_spinning': '0' } },
  });
}

export function floatTensor(data: Float32Array, dims: number[]): ort.Tensor {
  return new ort.Tensor('float32', data, dims);
}

/** Runs a single-input session and returns the named outputs as float32 arrays with dims. */
export async function runFloat(session: ort.InferenceSession, input: string, data: Float32Array, dims: number[]): Promise<Map<string, { data: Float32Array; dims: number[] }>> {
  const res = await session.run({ [input]: floatTensor(data, dims) });
  const out = new Map<string, { data: Float32Array; dims: number[] }>();
  for (const [k, v] of Object.entries(res)) out.set(k, { data: v.data as Float32Array, dims: [...v.dims] });
  return out;
}
