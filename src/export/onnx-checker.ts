/**
 * Runs the reference ONNX checker and shape inference (scripts/check_onnx.py) on exported
 * bytes. The `onnx` Python package is optional: where it is missing the step is reported
 * as skipped, not failed.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The script ships beside the package's dist/ and src/ folders. */
export const CHECK_SCRIPT = fileURLToPath(new URL('../../scripts/check_onnx.py', import.meta.url));

export type CheckerResult =
  | { status: 'passed'; python: string; onnxVersion: string; values: number }
  | { status: 'failed'; python: string; errors: string[] }
  | { status: 'skipped'; why: string };

/** $ADAIN_ONNX_PYTHON, else Debian's /usr/bin/python3 (where python3-onnx installs), else python3. */
export function checkerPythons(): string[] {
  const env = process.env.ADAIN_ONNX_PYTHON;
  return env ? [env] : ['/usr/bin/python3', 'python3'];
}

export async function runOnnxChecker(bytes: Uint8Array, pythons = checkerPythons()): Promise<CheckerResult> {
  const file = path.join(os.tmpdir(), `adain-export-${process.pid}-${randomBytes(4).toString('hex')}.onnx`);
  await fs.writeFile(file, bytes);
  const reasons: string[] = [];
  try {
    for (const python of pythons) {
      const r = await run(python, [CHECK_SCRIPT, file]);
      if (r.error) { reasons.push(`${python}: ${r.error}`); continue; }
      let parsed: { ok?: boolean; errors?: string[]; onnx?: string; values?: number; skipped?: string };
      try {
        parsed = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '');
      } catch {
        return { status: 'failed', python, errors: [`check_onnx.py gave no result (exit ${r.code}): ${r.stderr.trim().split('\n').at(-1) ?? ''}`] };
      }
      if (parsed.skipped) { reasons.push(`${python}: ${parsed.skipped}`); continue; }
      if (parsed.ok) return { status: 'passed', python, onnxVersion: parsed.onnx ?? '?', values: parsed.values ?? 0 };
      return { status: 'failed', python, errors: parsed.errors ?? ['unknown error'] };
    }
  } finally {
    await fs.rm(file, { force: true });
  }
  return { status: 'skipped', why: reasons.join('; ') || 'no Python to run it' };
}

function run(cmd: string, args: string[]): Promise<{ stdout: string; stderr: string; code: number; error?: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err && typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : err ? -1 : 0;
      const spawnFailed = err && typeof (err as { code?: unknown }).code === 'string';
      resolve({ stdout, stderr, code, error: spawnFailed ? `cannot run (${(err as NodeJS.ErrnoException).code})` : undefined });
    });
  });
}
