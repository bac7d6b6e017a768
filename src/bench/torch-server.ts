/**
 * The client both PyTorch benchmarks drive their script with (bench_torch.py for inference,
 * bench_torch_train.py for training): a long-lived Python child speaking JSON lines on
 * stdin/stdout, one reply line per request and in order, so that its runs interleave with
 * onnxruntime's and both see the same machine load.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';

export type ServerReply = { ok: true } | { ms: number; loss?: number } | { error: string };

/** A Python interpreter that can `import torch`, and torch's version. */
export interface TorchPython {
  python: string;
  version: string;
}

export class TorchServer {
  private readonly pending: { resolve: (r: ServerReply) => void; reject: (e: Error) => void }[] = [];
  private stderrTail = '';
  private exited: Error | null = null;

  /** `name` (the script's file name) prefixes every error. */
  private constructor(private readonly child: ChildProcessWithoutNullStreams, private readonly name: string) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const p = this.pending.shift();
      if (!p) return;
      try { p.resolve(JSON.parse(line) as ServerReply); } catch { p.reject(new Error(`${name} said: ${line}`)); }
    });
    child.stderr.on('data', (d: Buffer) => { this.stderrTail = (this.stderrTail + d.toString()).slice(-2000); });
    const fail = (why: string) => {
      this.exited = new Error(`${name} ${why}${this.stderrTail ? `: ${this.stderrTail.trim()}` : ''}`);
      for (const p of this.pending.splice(0)) p.reject(this.exited);
    };
    child.on('exit', (code, signal) => fail(`exited (${signal ?? code})`));
    child.on('error', (e) => fail(`could not start (${e.message})`));
  }

  /** Runs `script --serve`. OMP/MKL thread counts are pinned too, so that torch cannot take more cores than onnxruntime. */
  static start(torch: TorchPython, script: string, threads: number): TorchServer {
    const t = String(threads);
    const child = spawn(torch.python, [script, '--serve', '--threads', t], {
      env: { ...process.env, OMP_NUM_THREADS: t, MKL_NUM_THREADS: t },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new TorchServer(child, path.basename(script));
  }

  /** Sends one request; an `{"error": ...}` reply rejects. */
  request(msg: object): Promise<ServerReply> {
    if (this.exited) return Promise.reject(this.exited);
    return new Promise<ServerReply>((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.child.stdin.write(`${JSON.stringify(msg)}\n`);
    }).then((r) => {
      if ('error' in r) throw new Error(`${this.name}: ${r.error}`);
      return r;
    });
  }

  /** The milliseconds of a run request's reply. */
  async time(msg: object): Promise<number> {
    const r = await this.request(msg);
    if (!('ms' in r)) throw new Error(`${this.name} gave no time`);
    return r.ms;
  }

  /** Ends the child's input and waits for it to exit. */
  async close(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end();
    await done;
  }
}
