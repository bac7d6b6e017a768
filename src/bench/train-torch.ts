/**
 * The PyTorch side of `adain bench train`: scripts/bench_torch_train.py as a long-lived child
 * (JSON lines on stdin/stdout, one reply per request), so that its steps interleave with
 * onnxruntime's and both see the same machine load. The interpreter comes from findTorch().
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { TorchPython } from './torch.js';
import type { TrainArchitecture } from './train-step.js';

/** Same path from src/bench/ (tsx) and dist/bench/ (built). */
export const TORCH_TRAIN_SCRIPT = fileURLToPath(new URL('../../scripts/bench_torch_train.py', import.meta.url));

export interface TorchTrainSetup {
  arch: TrainArchitecture;
  batch: number;
  crop: number;
  lr: number;
  contentWeight: number;
  styleWeight: number;
}

type Reply = { ok: true } | { ms: number; loss?: number } | { error: string };

export class TorchTrainWorker {
  private readonly pending: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  private stderrTail = '';
  private exited: Error | null = null;

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const p = this.pending.shift();
      if (!p) return;
      try { p.resolve(JSON.parse(line) as Reply); } catch { p.reject(new Error(`bench_torch_train.py said: ${line}`)); }
    });
    child.stderr.on('data', (d: Buffer) => { this.stderrTail = (this.stderrTail + d.toString()).slice(-2000); });
    const fail = (why: string) => {
      this.exited = new Error(`bench_torch_train.py ${why}${this.stderrTail ? `: ${this.stderrTail.trim()}` : ''}`);
      for (const p of this.pending.splice(0)) p.reject(this.exited);
    };
    child.on('exit', (code, signal) => fail(`exited (${signal ?? code})`));
    child.on('error', (e) => fail(`could not start (${e.message})`));
  }

  /** OMP/MKL thread counts are pinned too, so that torch cannot take more cores than onnxruntime. */
  static start(torch: TorchPython, threads: number, script = TORCH_TRAIN_SCRIPT): TorchTrainWorker {
    const t = String(threads);
    const child = spawn(torch.python, [script, '--serve', '--threads', t], {
      env: { ...process.env, OMP_NUM_THREADS: t, MKL_NUM_THREADS: t },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new TorchTrainWorker(child);
  }

  /** Builds the network (random decoder, frozen random encoder), Adam and the input batch. */
  async load(setup: TorchTrainSetup): Promise<void> {
    await this.request({
      cmd: 'load', arch: setup.arch, taps: setup.arch.taps, batch: setup.batch, crop: setup.crop,
      lr: setup.lr, content_weight: setup.contentWeight, style_weight: setup.styleWeight,
    });
  }

  /** Milliseconds of one training step. */
  async time(): Promise<number> {
    const r = await this.request({ cmd: 'run' });
    if (!('ms' in r)) throw new Error('bench_torch_train.py gave no time');
    return r.ms;
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end();
    await done;
  }

  private request(msg: object): Promise<Reply> {
    if (this.exited) return Promise.reject(this.exited);
    return new Promise<Reply>((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.child.stdin.write(`${JSON.stringify(msg)}\n`);
    }).then((r) => {
      if ('error' in r) throw new Error(`bench_torch_train.py: ${r.error}`);
      return r;
    });
  }
}
