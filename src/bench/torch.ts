/**
 * The PyTorch side of the benchmark: finds an interpreter with torch and drives
 * scripts/bench_torch.py as a long-lived child (see torch-server.ts), one run per request,
 * so that its runs interleave with onnxruntime's and both see the same machine load.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ArchitectureShape } from './architecture.js';
import { TorchServer, type TorchPython } from './torch-server.js';

/** Same path from src/bench/ (tsx) and dist/bench/ (built). */
export const TORCH_SCRIPT = fileURLToPath(new URL('../../scripts/bench_torch.py', import.meta.url));

export type { TorchPython } from './torch-server.js';

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

export type TorchStatus = { used: TorchPython } | { used: null; why: string };

/**
 * The PyTorch a benchmark compares with, or why there is none (notes go to `note`). `script`
 * is a further script the benchmark needs besides bench_torch.py, checked first.
 */
export async function torchStatus(wanted: boolean, note: (line: string) => void, script?: string): Promise<TorchStatus> {
  if (!wanted) return { used: null, why: 'skipped (--no-torch)' };
  if (script !== undefined && !existsSync(script)) {
    const why = `not run (${script} is missing)`;
    note(`PyTorch ${why}`);
    return { used: null, why };
  }
  const found = await findTorch();
  const asked = process.env.ADAIN_TORCH_PYTHON;
  if (asked && found.found?.python !== asked) note(`$ADAIN_TORCH_PYTHON=${asked} cannot import torch`);
  if (found.found) return { used: found.found };
  const why = `not installed (${found.why})`;
  note(`PyTorch ${why}`);
  return { used: null, why };
}

/** scripts/bench_torch.py served: one stylisation per request. */
export class TorchWorker {
  private constructor(private readonly server: TorchServer) {}

  static start(torch: TorchPython, threads: number): TorchWorker {
    return new TorchWorker(TorchServer.start(torch, TORCH_SCRIPT, threads));
  }

  /** Builds the architecture with random weights. */
  async load(arch: ArchitectureShape): Promise<void> {
    await this.server.request({ cmd: 'load', arch });
  }

  /** Milliseconds of one stylisation of a side x side content with a style of the same size. */
  time(side: number): Promise<number> {
    return this.server.time({ cmd: 'run', size: side });
  }

  /** The same with the style's statistics computed beforehand: one frame of a stream. */
  timeFrame(side: number): Promise<number> {
    return this.server.time({ cmd: 'run', size: side, frame: true });
  }

  close(): Promise<void> {
    return this.server.close();
  }
}
