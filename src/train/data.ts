/**
 * The training data path: listing the content and style folders, drawing (content, style)
 * pairs reproducibly, and decoding + resizing + random-cropping images in libvips (sharp) so
 * that the heavy work runs on libvips' own threads, off the JS main thread.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp, { type Metadata, type OutputInfo } from 'sharp';
import { UserError } from '../errors.js';
import { DEFAULT_MAX_PIXELS, fromInterleavedU8, quoteName, type RgbImage } from '../image/io.js';
import { crc32c } from './crc32c.js';
import { isRngState, type Rng } from './rng.js';
import { BalancedStream, EpochStream, isBalancedStreamState, type BalancedStreamState, type EpochStreamState } from './epoch-stream.js';

/** Extensions (lower case) of the files listImages picks up. */
export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.webp'];

/** Sorts by UTF-16 code units: the same order on every machine and locale. */
function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

/** The first line of a library's error message, without a final full stop. */
function reason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0].trim().replace(/\.$/, '');
}

export interface ListImagesOptions {
  /** What the folder holds, for messages: 'content' gives "content folder ...". Default 'training'. */
  label?: string;
}

/**
 * All JPEG, PNG and WebP files (by extension, any case) under `dir`, subfolders included,
 * sorted by path so that the list (and hence a seeded run) is the same on every machine.
 * Hidden files and folders (names starting with '.', e.g. macOS '._x.jpg' companions) are
 * skipped; symbolic links are followed (each real folder is visited once). A missing folder,
 * a file given instead of a folder, or a folder without a single image is a UserError.
 */
export async function listImages(dir: string, opts: ListImagesOptions = {}): Promise<string[]> {
  const what = `${opts.label ?? 'training'} folder`;
  let stat;
  try {
    stat = await fs.stat(dir);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new UserError(`${what} ${quoteName(dir)} does not exist; check the path`);
    if (code === 'EACCES' || code === 'EPERM') throw new UserError(`${what} ${quoteName(dir)} cannot be read (permission denied); check its permissions`);
    throw err;
  }
  if (!stat.isDirectory()) throw new UserError(`${what} ${quoteName(dir)} is a file, not a folder; give the folder that holds the images`);

  const found: string[] = [];
  const visited = new Set<string>();
  async function walk(folder: string): Promise<void> {
    const real = await fs.realpath(folder);
    if (visited.has(real)) return;
    visited.add(real);
    let entries;
    try {
      entries = await fs.readdir(folder, { withFileTypes: true });
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'EACCES' || code === 'EPERM') {
        throw new UserError(`folder ${quoteName(folder)} in the ${what} cannot be read (permission denied); check its permissions`);
      }
      throw err;
    }
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const full = path.join(folder, entry.name);
      let isDir = entry.isDirectory();
      let isFile = entry.isFile();
      if (entry.isSymbolicLink()) {
        const target = await fs.stat(full).catch(() => undefined); // a dangling link is ignored
        isDir = target?.isDirectory() ?? false;
        isFile = target?.isFile() ?? false;
      }
      if (isDir) await walk(full);
      else if (isFile && IMAGE_EXTENSIONS.includes(path.extname(entry.name).toLowerCase())) found.push(full);
    }
  }
  await walk(dir);
  if (found.length === 0) {
    throw new UserError(
      `${what} ${quoteName(dir)} holds no JPEG, PNG or WebP image (subfolders included); give the folder that holds the images`,
    );
  }
  return found.sort(byCodeUnits);
}

/** The deepest folder that contains every file of the list (for messages and fingerprints). */
export function commonFolder(files: readonly string[]): string {
  if (files.length === 0) return '';
  let prefix = path.dirname(files[0]);
  for (const f of files) {
    while (prefix !== '' && f !== prefix && !f.startsWith(prefix.endsWith(path.sep) ? prefix : prefix + path.sep)) {
      const up = path.dirname(prefix);
      prefix = up === prefix ? '' : up;
    }
  }
  return prefix;
}

/** A checksum of the file list (names relative to their common folder, in order). */
function fingerprint(files: readonly string[]): number {
  const root = commonFolder(files);
  return crc32c(files.map((f) => (root === '' ? f : path.relative(root, f))).join('\n'));
}

// ---------------------------------------------------------------------------------------------
// Pair sampling

export interface Pair {
  content: string;
  style: string;
}

export interface PairSamplerOptions {
  /** The run's seed: the same seed and file lists give the same pairs. */
  seed: number;
  /**
   * Debugging mode: draw N pairs once (from the seed) and cycle through just those, e.g. to
   * check that the decoder can overfit a handful of pairs.
   */
  subset?: number;
  /**
   * How styles are drawn: 'file' (each image once per pass over the folder) or 'source'
   * (sources in proportion to the square root of their image count; see BalancedStream), so
   * that one big source (a painter, a clip-art set) does not dominate what the decoder learns.
   */
  styleBalance?: StyleBalance;
}

export type StyleBalance = 'file' | 'source';
export const STYLE_BALANCES: readonly StyleBalance[] = ['file', 'source'];

/** Everything needed to continue a PairSampler exactly where it was (JSON-serialisable). */
export interface PairSamplerState {
  version: 1;
  seed: number;
  subset: number | null;
  /** How many pairs next() has returned. */
  drawn: number;
  contents: { count: number; fingerprint: number };
  styles: { count: number; fingerprint: number };
  content: EpochStreamState;
  style: EpochStreamState;
  /** With styleBalance 'source' (absent in runs that drew styles by file). */
  styleSources?: BalancedStreamState;
}

/**
 * Random (content, style) pairs from a seeded generator. Contents and styles are drawn from two
 * independent streams, each a new random permutation per pass over its list, so every image is
 * used once per epoch of its folder and the pairings differ from epoch to epoch.
 */
export class PairSampler {
  readonly contents: readonly string[];
  readonly styles: readonly string[];
  readonly seed: number;
  readonly subset: number | null;
  private readonly contentStream: EpochStream;
  private readonly styleStream: EpochStream;
  private readonly balanced: BalancedStream | null;
  private readonly fixed: Pair[] | null = null;
  private readonly contentPrint: number;
  private readonly stylePrint: number;
  private drawn = 0;

  constructor(contents: readonly string[], styles: readonly string[], opts: PairSamplerOptions) {
    if (contents.length === 0) throw new RangeError('PairSampler needs at least one content image');
    if (styles.length === 0) throw new RangeError('PairSampler needs at least one style image');
    if (opts.subset !== undefined && (!Number.isSafeInteger(opts.subset) || opts.subset < 1)) {
      throw new UserError(`the subset size must be a whole number of at least 1, got ${opts.subset}; e.g. 8`);
    }
    this.contents = [...contents];
    this.styles = [...styles];
    this.seed = opts.seed;
    this.subset = opts.subset ?? null;
    this.contentStream = new EpochStream(contents.length, opts.seed, 'pairs/content');
    this.styleStream = new EpochStream(styles.length, opts.seed, 'pairs/style');
    this.balanced = opts.styleBalance === 'source' ? new BalancedStream(this.styles, commonFolder(this.styles), opts.seed, 'pairs/style-sources') : null;
    this.contentPrint = fingerprint(this.contents);
    this.stylePrint = fingerprint(this.styles);
    if (this.subset !== null) {
      this.fixed = Array.from({ length: this.subset }, () => this.draw());
    }
  }

  private draw(): Pair {
    const style = this.balanced ? this.balanced.next() : this.styleStream.next();
    return { content: this.contents[this.contentStream.next()], style: this.styles[style] };
  }

  /** With styleBalance 'source': each style source's share of the draws. */
  styleShares(): Map<string, number> | null {
    return this.balanced?.shares() ?? null;
  }

  /** The next pair. */
  next(): Pair {
    const pair = this.fixed !== null ? this.fixed[this.drawn % this.fixed.length] : this.draw();
    this.drawn++;
    return { ...pair };
  }

  /** How many pairs next() has returned (including those before a restore). */
  get count(): number {
    return this.drawn;
  }

  state(): PairSamplerState {
    return {
      version: 1,
      seed: this.seed,
      subset: this.subset,
      drawn: this.drawn,
      contents: { count: this.contents.length, fingerprint: this.contentPrint },
      styles: { count: this.styles.length, fingerprint: this.stylePrint },
      content: this.contentStream.state(),
      style: this.styleStream.state(),
      ...(this.balanced ? { styleSources: this.balanced.state() } : {}),
    };
  }

  /**
   * Continues exactly where `state` was taken. The sampler must have been built with the same
   * seed, subset and file lists; otherwise a UserError says what changed (an image added to or
   * removed from a folder would silently change every later pair).
   */
  restore(state: PairSamplerState): void {
    const valid =
      typeof state === 'object' &&
      state !== null &&
      state.version === 1 &&
      Number.isSafeInteger(state.drawn) &&
      state.drawn >= 0 &&
      isRngState(state.content?.epochStart) &&
      isRngState(state.style?.epochStart);
    if (!valid) throw new UserError('the checkpoint holds no valid data-sampler state; it was not written by this version of the trainer');
    if (state.seed !== this.seed) {
      throw new UserError(`the checkpoint was trained with seed ${state.seed}, not ${this.seed}; resume with seed ${state.seed}`);
    }
    if (state.subset !== this.subset) {
      throw new UserError(`the checkpoint was trained with subset ${state.subset ?? 'off'}, not ${this.subset ?? 'off'}; resume with the same subset setting`);
    }
    const changed = (kind: string, then: { count: number; fingerprint: number }, now: readonly string[], print: number): void => {
      if (then.count !== now.length || then.fingerprint !== print) {
        throw new UserError(
          `the ${kind} images differ from those the checkpoint was trained on (${then.count} files then, ${now.length} now, ` +
            `or renamed); resume with the same ${kind} folder`,
        );
      }
    };
    changed('content', state.contents, this.contents, this.contentPrint);
    changed('style', state.styles, this.styles, this.stylePrint);
    this.contentStream.restore(state.content);
    this.styleStream.restore(state.style);
    if (this.balanced) {
      if (!isBalancedStreamState(state.styleSources, this.balanced.sources.length)) {
        throw new UserError(`the checkpoint drew styles ${state.styleSources ? 'from other sources' : 'by file, not balanced by source'}; resume with the run's own setting`);
      }
      this.balanced.restore(state.styleSources);
    } else if (state.styleSources) {
      throw new UserError('the checkpoint drew styles balanced by source; resume with the run\'s own setting');
    }
    this.drawn = state.drawn;
  }
}

// ---------------------------------------------------------------------------------------------
// Loading one training image

/**
 * A training image that cannot be used: missing, unreadable, not an image, truncated or
 * corrupt, or too large. The batch loader recognises it, skips the file with a warning and
 * draws a replacement; anything else is a real failure.
 */
export class UnreadableImageError extends UserError {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`image ${quoteName(file)} cannot be used for training (${reason}); remove it or re-download it`);
    this.name = 'UnreadableImageError';
  }
}

export interface LoadTrainingImageOptions {
  /** The shorter side is resized to this (but never below `crop`). */
  loadSize: number;
  /** The side of the square random crop. */
  crop: number;
  /** Chooses the crop's position (two draws: left, then top). */
  rng: Rng;
  /** Refuse images with more pixels than this, before decoding. Default 100e6. */
  maxPixels?: number;
}

/**
 * libvips strictness, as in image/io.ts: the 'error' level rejects truncated and corrupt data
 * (which would otherwise decode to grey) but still accepts JPEGs with harmless warnings.
 */
const FAIL_ON = 'error' as const;

/** Why sharp could not read a file's header, in words for a one-line message. */
async function metadataFailure(file: string, err: unknown): Promise<string> {
  const why = reason(err);
  if (/unsupported image format/i.test(why)) {
    let stat;
    try {
      stat = await fs.stat(file);
    } catch (e) {
      const code = errnoCode(e);
      if (code === 'ENOENT' || code === 'ENOTDIR') return 'it no longer exists';
      if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
      return reason(e);
    }
    if (stat.isDirectory()) return 'it is a folder';
    if (stat.size === 0) return 'empty file';
    return 'not a PNG, JPEG or WebP image';
  }
  if (/input file is missing/i.test(why)) return 'it no longer exists';
  return why;
}

function checkSide(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
}

/**
 * Decodes `file` as 8-bit sRGB (EXIF orientation applied, transparency flattened onto white),
 * resizes it so its shorter side is max(loadSize, crop) and takes a random crop x crop square,
 * all in one libvips pipeline (decoding, resizing and cropping run on libvips' threads).
 * A file that cannot be used throws UnreadableImageError.
 */
export async function loadTrainingImage(file: string, opts: LoadTrainingImageOptions): Promise<RgbImage> {
  checkSide('crop', opts.crop);
  checkSide('loadSize', opts.loadSize);
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;

  // sharp opens the file itself (twice: header, then pixels; the second read comes from the OS
  // cache): each await is a hop through the JS main thread, and fewer hops keep the loader going
  // while a training step occupies that thread.
  let meta: Metadata;
  try {
    meta = await sharp(file, { failOn: FAIL_ON, limitInputPixels: false }).metadata();
  } catch (err) {
    throw new UnreadableImageError(file, await metadataFailure(file, err));
  }
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!(width > 0 && height > 0)) throw new UnreadableImageError(file, 'it has no pixels');
  if (width * height > maxPixels) {
    throw new UnreadableImageError(file, `${width}x${height} is more than ${(maxPixels / 1e6).toFixed(0)} megapixels`);
  }

  // The size after resizing: shorter side exactly `short`, the other side in proportion.
  const short = Math.max(opts.loadSize, opts.crop);
  const outW = width <= height ? short : Math.max(short, Math.round((width * short) / height));
  const outH = width <= height ? Math.max(short, Math.round((height * short) / width)) : short;
  const left = opts.rng.int(outW - opts.crop + 1);
  const top = opts.rng.int(outH - opts.crop + 1);

  let decoded: { data: Buffer; info: OutputInfo };
  try {
    decoded = await sharp(file, { failOn: FAIL_ON, limitInputPixels: false })
      .autoOrient()
      .resize({ width: outW, height: outH, fit: 'fill' })
      .extract({ left, top, width: opts.crop, height: opts.crop })
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new UnreadableImageError(file, `truncated or corrupt: ${reason(err)}`);
  }
  const { data, info } = decoded;
  if (info.channels !== 3 || info.width !== opts.crop || info.height !== opts.crop) {
    throw new Error(`expected a ${opts.crop}x${opts.crop} RGB crop of ${file}, got ${info.width}x${info.height}x${info.channels}`);
  }
  return fromInterleavedU8(data, info.width, info.height, 3);
}

/** Stacks equally sized images into one [B,3,H,W] tensor (planar RGB per image). */
export function makeBatch(images: readonly RgbImage[]): Float32Array {
  if (images.length === 0) throw new RangeError('makeBatch needs at least one image');
  const { width, height } = images[0];
  const size = 3 * width * height;
  const out = new Float32Array(images.length * size);
  images.forEach((img, i) => {
    if (img.width !== width || img.height !== height || img.data.length !== size) {
      throw new RangeError(`batch image ${i} is ${img.width}x${img.height}, the first is ${width}x${height}`);
    }
    out.set(img.data, i * size);
  });
  return out;
}
