/**
 * Finds a weight file on disk, or downloads it into the per-user cache.
 *
 * Search order: `--models-dir`, then $ADAIN_MODELS_DIR, then the cache
 * (`<cache root>/models`, the root being $ADAIN_CACHE_DIR or env-paths' per-user cache).
 * A user's models dir is only read, never written (it may be read-only or shared), so files
 * found there get the free size check only. Cache files are ours: their sha256 is checked
 * once and the verdict kept beside them in `<file>.sha256-ok`.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import envPaths from 'env-paths';
import { UserError } from '../errors.js';
import { downloadVerified, sha256File } from '../weights/download.js';
import { modelWeightFiles, type ModelSpec, type WeightFile } from './registry.js';

export interface ResolveOptions {
  /** The `--models-dir` flag. */
  modelsDir?: string;
  /** Cache root, overriding $ADAIN_CACHE_DIR and the per-user default; weights go in `<root>/models`. */
  cacheDir?: string;
  /** Download missing files that have a URL (default true). */
  download?: boolean;
  onProgress?: (done: number, total: number | undefined) => void;
  fetchImpl?: typeof fetch;
}

export type SearchSource = 'bundled' | '--models-dir' | 'ADAIN_MODELS_DIR' | 'cache';

/** The project's own trained decoders ship in the package's models/ folder. */
export const BUNDLED_DIR = fileURLToPath(new URL('../../models/', import.meta.url));

export interface SearchDir {
  dir: string;
  source: SearchSource;
}

export interface WeightStatus {
  role: 'encoder' | 'decoder';
  file: string;
  url: string | undefined;
  sha256: string | undefined;
  bytes: number | undefined;
  /** Where the file was found (size checked, hash not), or null when it is not on disk. */
  localPath: string | null;
  source: SearchSource | null;
  /** Why a file found on disk will be rejected (wrong size), or null. */
  problem: string | null;
}

const VERDICT_SUFFIX = '.sha256-ok';

/** The cache root: `opts.cacheDir`, else $ADAIN_CACHE_DIR, else the per-user cache folder. */
export function cacheRoot(opts: Pick<ResolveOptions, 'cacheDir'> = {}): string {
  return opts.cacheDir || process.env.ADAIN_CACHE_DIR || envPaths('adain', { suffix: '' }).cache;
}

/** Where downloaded weights live. */
export function modelsCacheDir(opts: Pick<ResolveOptions, 'cacheDir'> = {}): string {
  return path.join(cacheRoot(opts), 'models');
}

/** The folders searched for weight files, in order. */
export function searchDirs(opts: Pick<ResolveOptions, 'modelsDir' | 'cacheDir'> = {}): SearchDir[] {
  const dirs: SearchDir[] = [{ dir: BUNDLED_DIR, source: 'bundled' }];
  if (opts.modelsDir) dirs.push({ dir: path.resolve(opts.modelsDir), source: '--models-dir' });
  const envDir = process.env.ADAIN_MODELS_DIR;
  if (envDir) dirs.push({ dir: path.resolve(envDir), source: 'ADAIN_MODELS_DIR' });
  dirs.push({ dir: path.resolve(modelsCacheDir(opts)), source: 'cache' });
  return dirs;
}

/** Returns a local path to a good copy of `w`, downloading it into the cache if needed. */
export async function resolveWeightFile(w: WeightFile, opts: ResolveOptions = {}): Promise<string> {
  const dirs = searchDirs(opts);
  for (const { dir, source } of dirs) {
    const candidate = path.join(dir, w.file);
    const size = await fileSize(candidate);
    if (size === null) continue;
    if (source !== 'cache') {
      if (w.bytes !== undefined && size !== w.bytes) {
        throw new UserError(
          `${candidate} is ${size} bytes but ${w.file} should be ${w.bytes}; ` +
            `replace it with a good copy${w.url ? ` from ${w.url}` : ''} or remove it`,
        );
      }
      return candidate;
    }
    const problem = await checkCachedFile(candidate, size, w);
    if (problem === null) return candidate;
    if (!w.url || opts.download === false) {
      throw new UserError(`cached ${candidate} is damaged (${problem}); delete it and fetch it again`);
    }
    await removeCached(candidate); // ours, and known bad: replace it below
  }

  const cachePath = path.join(dirs[dirs.length - 1].dir, w.file);
  const suggested = path.join(dirs[1].dir, w.file); // the first user folder, not the bundled one
  const searched = dirs.filter((d) => d.source !== 'bundled').map((d) => `${d.dir} (${d.source})`).join(', ');
  if (!w.url) {
    throw new UserError(
      `model file ${w.file} not found and has no download URL; put it at ${suggested} ` +
        `(searched ${searched}; choose the folder with --models-dir or ADAIN_MODELS_DIR)`,
    );
  }
  if (opts.download === false) {
    throw new UserError(
      `model file ${w.file} not found (searched ${searched}) and downloads are off; ` +
        `download ${w.url} to ${suggested}`,
    );
  }
  const sha256 = await downloadVerified(w.url, cachePath, {
    sha256: w.sha256,
    bytes: w.bytes,
    shaPrefix: w.shaPrefix,
    onProgress: opts.onProgress,
    fetchImpl: opts.fetchImpl,
    byHandHint: `download it by hand and save it as ${suggested} (or pass --models-dir / set ADAIN_MODELS_DIR)`,
  });
  await recordVerdict(cachePath, sha256);
  return cachePath;
}

/** Where each of a model's files is on disk, without downloading or hashing anything. */
export async function modelStatus(spec: ModelSpec, opts: ResolveOptions = {}): Promise<WeightStatus[]> {
  const dirs = searchDirs(opts);
  const out: WeightStatus[] = [];
  for (const { role, weights: w } of modelWeightFiles(spec)) {
    const status: WeightStatus = {
      role,
      file: w.file,
      url: w.url,
      sha256: w.sha256,
      bytes: w.bytes,
      localPath: null,
      source: null,
      problem: null,
    };
    for (const { dir, source } of dirs) {
      const candidate = path.join(dir, w.file);
      const size = await fileSize(candidate);
      if (size === null) continue;
      status.localPath = candidate;
      status.source = source;
      if (w.bytes !== undefined && size !== w.bytes) status.problem = `${size} bytes, expected ${w.bytes}`;
      break;
    }
    out.push(status);
  }
  return out;
}

async function fileSize(file: string): Promise<number | null> {
  try {
    const st = await fs.stat(file);
    return st.isFile() ? st.size : null;
  } catch {
    return null;
  }
}

interface Verdict {
  sha256: string;
  bytes: number;
  mtimeMs: number;
}

/** null when the cached file is good; otherwise what is wrong with it. */
async function checkCachedFile(file: string, size: number, w: WeightFile): Promise<string | null> {
  if (w.bytes !== undefined && size !== w.bytes) return `${size} bytes, expected ${w.bytes}`;
  if (w.sha256 === undefined && w.shaPrefix === undefined) return null;

  const st = await fs.stat(file);
  const verdict = await readVerdict(file);
  // The verdict holds as long as the file was not rewritten since it was hashed.
  const actual =
    verdict && verdict.bytes === st.size && verdict.mtimeMs === st.mtimeMs ? verdict.sha256 : await sha256File(file);
  const problem = hashProblem(actual, w);
  if (problem === null && actual !== verdict?.sha256) await recordVerdict(file, actual);
  return problem;
}

function hashProblem(actual: string, w: WeightFile): string | null {
  if (w.sha256 !== undefined) {
    return actual === w.sha256.toLowerCase() ? null : `sha256 ${actual}, expected ${w.sha256}`;
  }
  if (w.shaPrefix !== undefined && !actual.startsWith(w.shaPrefix.toLowerCase())) {
    return `sha256 ${actual}, expected one starting with ${w.shaPrefix}`;
  }
  return null;
}

async function readVerdict(file: string): Promise<Verdict | null> {
  try {
    const v = JSON.parse(await fs.readFile(file + VERDICT_SUFFIX, 'utf8')) as Partial<Verdict>;
    if (typeof v.sha256 === 'string' && typeof v.bytes === 'number' && typeof v.mtimeMs === 'number') {
      return { sha256: v.sha256, bytes: v.bytes, mtimeMs: v.mtimeMs };
    }
  } catch {
    // missing or unreadable: hash again
  }
  return null;
}

async function recordVerdict(file: string, sha256: string): Promise<void> {
  try {
    const st = await fs.stat(file);
    const verdict: Verdict = { sha256, bytes: st.size, mtimeMs: st.mtimeMs };
    await fs.writeFile(file + VERDICT_SUFFIX, JSON.stringify(verdict) + '\n');
  } catch {
    // Only a speed-up: an unwritable cache means hashing again next time.
  }
}

async function removeCached(file: string): Promise<void> {
  await fs.rm(file, { force: true });
  await fs.rm(file + VERDICT_SUFFIX, { force: true });
}
