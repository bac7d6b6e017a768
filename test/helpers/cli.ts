// Running the built binary as a user would, shared by the CLI test files.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const BIN = path.join(ROOT, 'bin/adain.js');
export const SHARED = path.resolve(ROOT, '../shared');
export const MODELS_DIR = path.join(SHARED, 'models');
/** A skip reason for tests that need the built dist/ and ../shared/models, else false. */
export const cliSkip: string | false = !existsSync(path.join(ROOT, 'dist/cli/main.js')) ? 'dist/ not built: run npm run build'
  : !existsSync(MODELS_DIR) ? `../shared/models not found at ${MODELS_DIR}` : false;
export const example = (f: string): string => path.join(ROOT, 'examples', f);

export interface CliResult { code: number | null; stdout: string; stderr: string; seconds: number }

/** `adain ...args` with the shared weights and a cache of its own under `cacheDir`. */
export function runAdain(args: string[], cacheDir: string, spawnOpts: SpawnSyncOptions = {}): CliResult {
  const started = performance.now();
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8', timeout: 120_000, ...spawnOpts,
    env: { ...process.env, ADAIN_MODELS_DIR: MODELS_DIR, ADAIN_CACHE_DIR: cacheDir, ...spawnOpts.env },
  });
  return { code: r.status, stdout: String(r.stdout), stderr: String(r.stderr), seconds: (performance.now() - started) / 1000 };
}
