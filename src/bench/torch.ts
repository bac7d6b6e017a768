/**
 * The PyTorch side of the benchmark: finds an interpreter with torch and drives
 * scripts/bench_torch.py as a long-lived child, one run per request, so that its runs
 * interleave with onnxruntime's and both see the same machine load.
 */
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { ArchitectureShape } from './architecture.js';

/** Same path from src/bench/ (tsx) and dist/bench/ (built). */
export const TORCH_SCRIPT = fileURLToPath(new URL('../../scripts/bench_torch.py', import.meta.url));

export interface TorchPython {
  python: string;
  version: string;
}

export type TorchLookup = { found: TorchPython } | { found: null; why: string };

/** Candidates in order: $ADAIN_TORCH_PYTHON, /usr/bin/python3 (Debian's python3-torch), python3 on PATH. */
export function pythonCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const list = [env.ADAIN_TORCH_PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => !!p);
  return [...new Set(list)];
}

/** The first candidate that can `import torch`, or why none can. */
export async function findTorch(candidates = pythonCandidates()): Promise<TorchLookup> {
  if (!existsSync(TORCH_SCRIPT)) return { found: null, why: `${TORCH_SCRIPT} is missing` };
  const tried: string[] = [];
  for (const python of candidates) {
    const version = await torchVersion(python);
    if (version) return { found: { python, version } };
    tried.push(python);
  }
  return { found: null, why: `no torch for ${tried.join(', ')}` };
}

function torchVersion(python: string): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(python, ['-c', 'import torch; print(torch.__version__)'], { timeout: 60_000 }, (err, stdout) => {
      resolve(err ? null : stdout.trim() || null);
    });
  });
}

type Reply = { ok: true } | { ms: number } | { error: string };

export class TorchWorker {
  private readonly pending: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  private stderrTail = '';
  private exited: Error | null = null;

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const p = this.pending.shift();
      if (!p) return;
      try { p.resolve(JSON.parse(line) as Reply); } catch { p.reject(new Error(`bench_torch.py said: ${line}`)); }
    });
    child.stderr.on('data', (d: Buffer) => { this.stderrTail = (this.stderrTail + d.toString()).slice(-2000); });
    const fail = (why: string) => {
      this.exited = new Error(`bench_torch.py ${why}${this.stderrTail ? `: ${this.stderrTail.trim()}` : ''}`);
      for (const p of this.pending.splice(0)) p.reject(this.exited);
    };
    child.on('exit', (code, signal) => fail(`exited (${signal ?? code})`));
    child.on('error', (e) => fail(`could not start (${e.message})`));
  }

  /** OMP/MKL thread counts are pinned too, so that torch cannot take more cores than onnxruntime. */
  static start(torch: TorchPython, threads: number): TorchWorker {
    const t = String(threads);
    const child = spawn(torch.python, [TORCH_SCRIPT, '--serve', '--threads', t], {
      env: { ...process.env, OMP_NUM_THREADS: t, MKL_NUM_THREADS: t },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new TorchWorker(child);
  }

  /** Builds the architecture with random weights. */
  async load(arch: ArchitectureShape): Promise<void> {
    await this.request({ cmd: 'load', arch });
  }

  /** Milliseconds of one stylisation of a side x side content with a style of the same size. */
  async time(side: number): Promise<number> {
    const r = await this.request({ cmd: 'run', size: side });
    if (!('ms' in r)) throw new Error('bench_torch.py gave no time');
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
      if ('error' in r) throw new Error(`bench_torch.py: ${r.error}`);
      return r;
    });
  }
}
