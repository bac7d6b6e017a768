import sharp from 'sharp';
import { UserError } from '../errors.js';
import { fromInterleavedU8, quoteName, type RgbImage } from '../image/io.js';
import { listImages } from '../train/data.js';
import { Rng } from '../train/rng.js';

/**
 * The evaluation set: a fixed, seeded choice of content and style images (every content is
 * paired with every style), and a seeded subset of those pairs for the expensive
 * optimisation references. The same folders, counts and seed give the same set on every
 * machine (listImages sorts by code units; the generator is xoshiro128**).
 */
export interface EvalSet {
  contents: string[];
  styles: string[];
  /** Indices [content, style] of the optimisation subset, in a fixed order. */
  subset: [number, number][];
}

export interface SelectOptions {
  contents: number;
  styles: number;
  seed: number;
  /** Size of the optimisation subset (0: none); capped at contents x styles. */
  subset: number;
}

/** A seeded choice of `n` of `files` (all of them when there are fewer), in drawn order. */
export function choose(files: readonly string[], n: number, seed: number, stream: string): string[] {
  return new Rng(seed, stream).shuffle([...files]).slice(0, Math.min(n, files.length));
}

export function selectPairs(contentFiles: readonly string[], styleFiles: readonly string[], opts: SelectOptions): EvalSet {
  const contents = choose(contentFiles, opts.contents, opts.seed, 'eval/content');
  const styles = choose(styleFiles, opts.styles, opts.seed, 'eval/style');
  const all: [number, number][] = [];
  for (let c = 0; c < contents.length; c++) for (let s = 0; s < styles.length; s++) all.push([c, s]);
  const subset = new Rng(opts.seed, 'eval/optimize').shuffle(all).slice(0, Math.max(0, Math.min(opts.subset, all.length)));
  return { contents, styles, subset };
}

/** Lists both folders and selects the evaluation set. */
export async function loadEvalSet(contentDir: string, styleDir: string, opts: SelectOptions): Promise<EvalSet> {
  const [contents, styles] = await Promise.all([listImages(contentDir, { label: 'content' }), listImages(styleDir, { label: 'style' })]);
  return selectPairs(contents, styles, opts);
}

/**
 * An image as the evaluation sees it: resized so that its shorter side is `size` and
 * centre-cropped to size x size (EXIF orientation applied, transparency on white, sRGB).
 * Content and style images get the same treatment, so every output is size x size.
 */
export async function loadSquare(file: string, size: number): Promise<RgbImage> {
  try {
    const { data, info } = await sharp(file, { failOn: 'error', limitInputPixels: false })
      .autoOrient()
      .resize({ width: size, height: size, fit: 'cover', position: 'centre' })
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    return fromInterleavedU8(data, info.width, info.height, info.channels);
  } catch (err) {
    const why = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    throw new UserError(`image ${quoteName(file)} cannot be read for the evaluation (${why}); remove it or choose other folders`);
  }
}
