import os from 'node:os';
import * as ort from 'onnxruntime-node';
import { UserError } from '../errors.js';

export interface RuntimeOptions {
  /** Intra-op threads; default all cores (onnxruntime's own default is slower here). */
  threads?: number;
  /**
   * onnxruntime execution provider: 'cpu', 'webgpu', 'cuda', ... (see
   * `availableExecutionProviders()`); default `setDefaultExecutionProvider`'s, else `$ADAIN_EP`,
   * else 'cpu'.
   */
  executionProvider?: string;
}

export function defaultThreads(): number {
  return os.availableParallelism();
}

/** onnxruntime's provider names on any platform, to tell a typo from "not in this build". */
const KNOWN_PROVIDERS = ['cpu', 'webgpu', 'cuda', 'tensorrt', 'dml', 'coreml', 'qnn', 'openvino', 'xnnpack', 'nnapi', 'webnn', 'wasm', 'migraphx', 'rocm'];

let defaultProvider: string | undefined;

/** The providers this onnxruntime-node build has on this platform (cuda's libraries may still be missing). */
export function availableExecutionProviders(): string[] {
  return ort.listSupportedBackends().map((b) => b.name);
}

/**
 * The validated provider name. onnxruntime itself drops an unknown name from a session's
 * list and silently runs on the CPU, so a typo would otherwise go unnoticed.
 */
export function checkExecutionProvider(name: string, from?: string): string {
  const ep = name.trim().toLowerCase();
  const available = availableExecutionProviders();
  if (available.includes(ep)) return ep;
  const list = available.join(', ');
  const what = `execution provider '${name}'${from ? ` (from ${from})` : ''}`;
  if (KNOWN_PROVIDERS.includes(ep)) {
    throw new UserError(`${what} is not in this onnxruntime-node build for ${process.platform}/${process.arch}; available: ${list}`);
  }
  throw new UserError(`unknown ${what}; available: ${list}`);
}

/** Sets the provider of every later session whose caller names none (the CLI's --execution-provider). */
export function setDefaultExecutionProvider(name: string | undefined): void {
  defaultProvider = name === undefined ? undefined : checkExecutionProvider(name);
}

/** The provider a session gets when its caller names none. */
export function defaultExecutionProvider(): string {
  if (defaultProvider !== undefined) return defaultProvider;
  const env = process.env.ADAIN_EP;
  return env ? checkExecutionProvider(env, '$ADAIN_EP') : 'cpu';
}

/** Why a session on `ep` could not be created, and what to install; the raw error's first line stays in it. */
function providerError(ep: string, err: unknown): UserError {
  const raw = (err instanceof Error ? err.message : String(err)).trim();
  // onnxruntime's messages start with a source path and end with the reason; keep the reason.
  const reason = (raw.split('\n')[0] ?? raw).replace(/^\S+:\d+ \S+.*? was false\. /, '');
  const cpu = 'or use --execution-provider cpu';
  if (ep === 'webgpu' && /adapter/i.test(raw)) {
    return new UserError(`webgpu: ${reason}: install your GPU's Vulkan driver (mesa-vulkan-drivers, or NVIDIA's with its Vulkan ICD), or without a GPU set VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json (SwiftShader, a slow CPU Vulkan shipped with Debian's chromium), ${cpu}`);
  }
  if ((ep === 'cuda' || ep === 'tensorrt') && /shared library|cannot open shared object|libonnxruntime_providers/i.test(raw)) {
    const missing = /(lib[\w.+-]+\.so[\w.]*): cannot open shared object/.exec(raw)?.[1];
    const needs = ep === 'cuda' ? 'CUDA 12 and cuDNN 9' : 'CUDA 12, cuDNN 9 and TensorRT 10';
    const label = ep === 'cuda' ? 'CUDA' : 'TensorRT';
    if (missing && !missing.startsWith('libonnxruntime_providers')) {
      return new UserError(`${ep}: ${missing} not found: install ${needs} and put their lib folders on LD_LIBRARY_PATH, ${cpu}`);
    }
    return new UserError(`${ep}: onnxruntime-node's ${label} libraries are not installed: approve its install script, which downloads them: npm install-scripts approve onnxruntime-node && npm rebuild onnxruntime-node (they need an NVIDIA driver, ${needs}), ${cpu}`);
  }
  return new UserError(`could not create an onnxruntime session on ${ep}: ${reason}; ${cpu}`);
}

/** What createSession takes beyond RuntimeOptions: diagnostics, not settings a user picks. */
export interface SessionOptions extends RuntimeOptions {
  /** Write onnxruntime's per-node profile (JSON) to a file starting with this path; see endProfiling. */
  profileFilePrefix?: string;
}

/** One onnxruntime session with the project's settings; built once and reused per model. */
export async function createSession(model: Uint8Array, opts: SessionOptions = {}): Promise<ort.InferenceSession> {
  const ep = opts.executionProvider === undefined ? defaultExecutionProvider() : checkExecutionProvider(opts.executionProvider);
  const options: ort.InferenceSession.SessionOptions = {
    // A GPU provider leaves the ops it lacks to the CPU provider listed after it.
    executionProviders: ep === 'cpu' ? ['cpu'] : [ep, 'cpu'],
    intraOpNumThreads: opts.threads ?? defaultThreads(),
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    enableCpuMemArena: true,
    // Spinning worker threads hold both cores after a run, slowing whatever runs next (the
    // other network of the pair, the JS in between): ~14% slower stylisations on 2 cores.
    extra: { session: { 'intra_op.allow_spinning': '0' } },
    ...(opts.profileFilePrefix ? { enableProfiling: true, profileFilePrefix: opts.profileFilePrefix } : {}),
  };
  if (ep === 'cpu') return ort.InferenceSession.create(model, options);
  try {
    return await ort.InferenceSession.create(model, options);
  } catch (err) {
    throw providerError(ep, err);
  }
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
