/**
 * POST /api/stylize: validates a multipart request (content, 1-4 styles, options), checks each
 * image's header before any decoding, then stylises in the job queue with the server's models.
 */
import { createHash } from 'node:crypto';
import sharp, { type Metadata } from 'sharp';
import { UserError } from '../errors.js';
import { encodeImage, readImage, type ImageFormat, type RgbImage } from '../image/io.js';
import { findModel } from '../models/registry.js';
import type { ChannelStats } from '../stylize/features.js';
import { FEATURE_TRANSFORMS, stylizeImage, type FeatureTransform } from '../stylize/model.js';
import type { StyleModel } from '../stylize/style-model.js';
import { HttpError } from './http-error.js';
import type { MultipartBody, UploadedFile } from './multipart.js';

export const MAX_STYLES = 4;

/** The fields POST /api/stylize understands; anything else is refused so that typos show. */
export const STYLIZE_FIELDS = ['content', 'style', 'alpha', 'style_weights', 'preserve_color', 'model', 'style_size', 'format', 'transform'] as const;

export interface StylizeRequest {
  content: UploadedFile;
  styles: UploadedFile[];
  alpha: number;
  styleWeights?: number[];
  preserveColor: boolean;
  model: string;
  styleSize: number;
  format: ImageFormat;
  transform: FeatureTransform;
}

const FORMATS: Record<string, ImageFormat> = { png: 'png', jpeg: 'jpeg', jpg: 'jpeg', webp: 'webp' };
export const CONTENT_TYPES: Record<ImageFormat, string> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };

function parseBool(name: string, v: string | undefined): boolean {
  if (v === undefined) return false;
  const s = v.trim().toLowerCase();
  if (['1', 'true', 'on', 'yes'].includes(s)) return true;
  if (['0', 'false', 'off', 'no', ''].includes(s)) return false;
  throw new HttpError(400, `field "${name}" must be true or false, got ${JSON.stringify(v)}`);
}

function parseNum(name: string, v: string, min: number, max: number, integer = false): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new HttpError(400, `field "${name}" must be ${integer ? 'an integer' : 'a number'} between ${min} and ${max}, got ${JSON.stringify(v)}`);
  }
  return n;
}

/** Checks the fields of a parsed request; every problem is a 400 naming the field. */
export function parseStylizeRequest(body: MultipartBody, defaultModel: string, defaultStyleSize: number): StylizeRequest {
  const known = new Set<string>(STYLIZE_FIELDS);
  for (const name of [...body.fields.keys(), ...body.files.map((f) => f.field)]) {
    if (!known.has(name)) throw new HttpError(400, `unknown field "${name}"; the fields are ${STYLIZE_FIELDS.join(', ')}`);
  }
  for (const name of ['content', 'style']) {
    if (body.fields.has(name)) throw new HttpError(400, `field "${name}" must be a file upload, not a text value`);
  }
  for (const f of body.files) {
    if (f.field !== 'content' && f.field !== 'style') throw new HttpError(400, `field "${f.field}" must be a text value, not a file`);
  }
  const contents = body.files.filter((f) => f.field === 'content');
  const styles = body.files.filter((f) => f.field === 'style');
  if (contents.length === 0) throw new HttpError(400, 'missing field "content": upload the content image as a file');
  if (contents.length > 1) throw new HttpError(400, 'give exactly one "content" image');
  if (styles.length === 0) throw new HttpError(400, 'missing field "style": upload one to four style images as files');
  if (styles.length > MAX_STYLES) throw new HttpError(400, `at most ${MAX_STYLES} style images, got ${styles.length}`);

  const f = body.fields;
  const alpha = f.has('alpha') ? parseNum('alpha', f.get('alpha')!, 0, 1) : 1;
  let styleWeights: number[] | undefined;
  if (f.has('style_weights')) {
    styleWeights = f.get('style_weights')!.split(',').map((s) => parseNum('style_weights', s, 0, 1e6));
    if (styleWeights.length !== styles.length) {
      throw new HttpError(400, `field "style_weights" has ${styleWeights.length} values for ${styles.length} styles; give one weight per style`);
    }
    if (styleWeights.reduce((a, b) => a + b, 0) <= 0) throw new HttpError(400, 'field "style_weights" must not be all zero');
  }
  const model = f.get('model') ?? defaultModel;
  try {
    findModel(model);
  } catch (err) {
    throw new HttpError(400, (err as Error).message);
  }
  const styleSize = f.has('style_size') ? parseNum('style_size', f.get('style_size')!, 64, 2048, true) : defaultStyleSize;
  const formatName = (f.get('format') ?? 'png').trim().toLowerCase();
  const format = FORMATS[formatName];
  if (!format) throw new HttpError(400, `field "format" must be png, jpeg or webp, got ${JSON.stringify(f.get('format'))}`);
  const transformName = (f.get('transform') ?? 'adain').trim().toLowerCase();
  if (!(FEATURE_TRANSFORMS as readonly string[]).includes(transformName)) throw new HttpError(400, `field "transform" must be ${FEATURE_TRANSFORMS.join(' or ')}, got ${JSON.stringify(f.get('transform'))}`);
  return {
    content: contents[0], styles, alpha, styleWeights, preserveColor: parseBool('preserve_color', f.get('preserve_color')), model, styleSize, format,
    transform: transformName as FeatureTransform,
  };
}

function label(f: UploadedFile, role: string): string {
  return f.filename && f.filename !== f.field ? `${role} (${f.filename})` : role;
}

/**
 * Reads only the image header: 400 for an empty upload, 415 for something that is not a
 * PNG/JPEG/WebP/... image, 413 for too many pixels. Pixel data problems (truncation) show up
 * when decoding, as 422.
 */
export async function probeImage(f: UploadedFile, role: string, maxPixels: number): Promise<{ width: number; height: number }> {
  const name = label(f, role);
  if (f.data.length === 0) throw new HttpError(400, `${name} is empty (0 bytes); upload a PNG, JPEG or WebP image`);
  let meta: Metadata;
  try {
    meta = await sharp(f.data, { limitInputPixels: false }).metadata();
  } catch (err) {
    const why = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    if (/unsupported image format/i.test(why)) throw new HttpError(415, `${name} is not an image this server can read; upload a PNG, JPEG or WebP file`);
    throw new HttpError(422, `${name} is corrupt (${why})`);
  }
  const { width, height } = meta;
  if (!(width > 0 && height > 0)) throw new HttpError(422, `${name} has no pixels`);
  if (width * height > maxPixels) {
    throw new HttpError(413, `${name} is ${width}x${height} (${(width * height / 1e6).toFixed(1)} megapixels), more than this server's limit of ${(maxPixels / 1e6).toFixed(1)} megapixels; shrink it first`);
  }
  return { width, height };
}

/** Decodes an upload; a UserError from decoding (truncated, corrupt) becomes 422. */
export async function decodeUpload(f: UploadedFile, role: string, maxPixels: number): Promise<RgbImage> {
  try {
    return await readImage(f.data, { label: label(f, role), maxPixels });
  } catch (err) {
    if (err instanceof UserError) throw new HttpError(422, err.message);
    throw err;
  }
}

/** A small LRU of style statistics, keyed by model, style size and the style's bytes. */
export class StyleStatsCache {
  private readonly map = new Map<string, ChannelStats>();
  constructor(private readonly capacity = 32) {}

  static key(model: string, styleSize: number, bytes: Buffer): string {
    return `${model}:${styleSize}:${createHash('sha256').update(bytes).digest('hex')}`;
  }

  get(key: string): ChannelStats | undefined {
    const v = this.map.get(key);
    if (v) { this.map.delete(key); this.map.set(key, v); }
    return v;
  }

  set(key: string, v: ChannelStats): void {
    this.map.delete(key);
    this.map.set(key, v);
    while (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value!);
  }
}

export interface StylizeJobOptions {
  maxPixels: number;
  memoryBudget: number;
  statsCache?: StyleStatsCache;
  /** Aborts when the answer is no longer wanted (client gone, time up): the job stops at its next step. */
  signal?: AbortSignal;
}

/**
 * Decodes, stylises and encodes one request (run inside the job queue). When `o.signal`
 * aborts, it stops at the next step (decode, style, tile, encode) and rejects with the
 * signal's reason, dropping its buffers.
 */
export async function runStylize(model: StyleModel, r: StylizeRequest, o: StylizeJobOptions): Promise<{ bytes: Buffer; width: number; height: number }> {
  const { signal } = o;
  signal?.throwIfAborted();
  const content = await decodeUpload(r.content, 'content', o.maxPixels);
  const styles: (RgbImage | ChannelStats)[] = [];
  for (const [i, s] of r.styles.entries()) {
    signal?.throwIfAborted();
    const role = r.styles.length > 1 ? `style ${i + 1}` : 'style';
    // colour preservation recolours the style per content, so its statistics cannot be reused
    if (r.preserveColor || !o.statsCache) {
      styles.push(await decodeUpload(s, role, o.maxPixels));
      continue;
    }
    // statistics for wct carry the covariance: cached apart from AdaIN's
    const key = StyleStatsCache.key(r.transform === 'wct' ? `${r.model}+wct` : r.model, r.styleSize, s.data);
    let stats = o.statsCache.get(key);
    if (!stats) {
      stats = await model.styleStats(await decodeUpload(s, role, o.maxPixels), { styleSize: r.styleSize, transform: r.transform });
      o.statsCache.set(key, stats);
    }
    styles.push(stats);
  }
  let img: RgbImage;
  try {
    img = await stylizeImage(model.network, content, await Promise.all(styles.map((s) => ('mean' in s ? s : model.readStyle(s, { styleSize: r.styleSize })))), {
      alpha: r.alpha, styleWeights: r.styleWeights, preserveColor: r.preserveColor, memoryBudget: o.memoryBudget, signal, transform: r.transform,
    });
  } catch (err) {
    if (err instanceof UserError) throw new HttpError(422, err.message);
    throw err;
  }
  signal?.throwIfAborted();
  return { bytes: await encodeImage(img, r.format), width: img.width, height: img.height };
}
