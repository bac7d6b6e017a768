import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp, { type Metadata, type OutputInfo } from 'sharp';
import { UserError } from '../errors.js';

/**
 * An RGB image as planar (CHW) float32 values in [0,1]: all reds, then all greens, then all
 * blues, row by row. This is the layout of an ONNX input [1,3,H,W], so it can be fed as is.
 */
export interface RgbImage {
  width: number;
  height: number;
  data: Float32Array;
}

export type ImageFormat = 'png' | 'jpeg' | 'webp';

export interface ReadImageOptions {
  /** Refuse images with more pixels than this, before decoding them. Default 100e6. */
  maxPixels?: number;
  /** Scale the image down so that its longer side is at most this; never scales up. */
  maxSize?: number;
  /** The name used in error messages when the input is a buffer. */
  label?: string;
}

export const DEFAULT_MAX_PIXELS = 100e6;

/**
 * Levels of strictness for libvips: 'error' rejects truncated and corrupt pixel data (a
 * half-written JPEG decodes to grey without it) but, unlike 'warning', still accepts the many
 * camera JPEGs that carry harmless warnings such as extraneous bytes between markers.
 */
const FAIL_ON = 'error' as const;

const EXTENSION_FORMATS: Record<string, ImageFormat> = {
  '.png': 'png',
  '.jpg': 'jpeg',
  '.jpeg': 'jpeg',
  '.webp': 'webp',
};
const SUPPORTED_EXTENSIONS = Object.keys(EXTENSION_FORMATS).join(', ');

/**
 * The formats read as content, style and mask images, by what the bytes are, not the file
 * name. sharp reads more (SVG, libvips' own format, HEIC where libheif has the codec), but an
 * SVG is a document rather than pixels: it can pull in other files through `<image href>`,
 * relative to its own folder, so it is refused with the rest.
 */
export const INPUT_FORMATS = ['PNG', 'JPEG', 'WebP', 'GIF', 'TIFF', 'AVIF'] as const;
/** File name extensions of INPUT_FORMATS, for picking the images out of a folder. */
export const INPUT_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff', '.avif'] as const;
const INPUT_FORMAT_LIST = `${INPUT_FORMATS.slice(0, -1).join(', ')} or ${INPUT_FORMATS.at(-1)}`;

/** Whether a file name has one of INPUT_EXTENSIONS (any case). */
export function hasImageExtension(file: string): boolean {
  return (INPUT_EXTENSIONS as readonly string[]).includes(path.extname(file).toLowerCase());
}

/** Whether the format sharp found in the header is one of INPUT_FORMATS. */
function isAcceptedFormat(meta: Pick<Metadata, 'format' | 'compression'>): boolean {
  switch (meta.format) {
    case 'jpeg': case 'png': case 'webp': case 'gif': case 'tiff':
      return true;
    case 'heif':
      // AVIF is HEIF with AV1; HEIC (HEVC) decodes only where libvips was built with the codec.
      return meta.compression === 'av1';
    default:
      return false;
  }
}

/** A file name safe to put inside a one-line message (names may contain newlines). */
export function quoteName(name: string): string {
  return `"${name.replace(/[\u0000-\u001f\u007f]/g, '?')}"`;
}

/** The first line of a library's error message, for inclusion in a one-line UserError. */
function reason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0].trim().replace(/\.$/, '');
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

/** Turns a failed stat/open of an input file into a message saying what to do. */
export function inputFileError(name: string, err: unknown): Error {
  switch (errnoCode(err)) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new UserError(`image ${quoteName(name)} does not exist; check the path`);
    case 'EACCES':
    case 'EPERM':
      return new UserError(`image ${quoteName(name)} cannot be read: permission denied; check its permissions (chmod +r)`);
    case 'EISDIR':
      return new UserError(`image ${quoteName(name)} is a folder, not a file; give the path of an image file`);
    default:
      return err instanceof Error ? err : new Error(String(err));
  }
}

function pixelCount(n: number): string {
  return n >= 1e5 ? `${(n / 1e6).toFixed(1)} megapixels` : `${n} pixels`;
}

/**
 * Checks that `input` names a non-empty regular file (or is a non-empty buffer) and that its
 * header describes an image of at most maxPixels pixels; only the header is read, so a huge
 * image is refused without being decoded.
 */
async function checkImageInput(input: string | Buffer, name: string, maxPixels: number): Promise<void> {
  if (typeof input === 'string') {
    let stat;
    try {
      stat = await fs.stat(input);
    } catch (err) {
      throw inputFileError(name, err);
    }
    if (stat.isDirectory()) throw new UserError(`image ${quoteName(name)} is a folder, not a file; give the path of an image file`);
    if (stat.size === 0) throw new UserError(`image ${quoteName(name)} is an empty file (0 bytes); re-export or re-download it`);
    // libvips reports a file it may not open as 'unsupported image format', which would
    // send the user looking at the file's contents instead of its permissions.
    try {
      await (await fs.open(input, 'r')).close();
    } catch (err) {
      throw inputFileError(name, err);
    }
  } else if (input.length === 0) {
    throw new UserError(`image ${quoteName(name)} is empty (0 bytes); give a ${INPUT_FORMAT_LIST} image`);
  }

  let meta: Metadata;
  try {
    meta = await sharp(input, { failOn: FAIL_ON, limitInputPixels: false }).metadata();
  } catch (err) {
    const why = reason(err);
    if (/unsupported image format/i.test(why)) {
      throw new UserError(`${quoteName(name)} is not an image that can be read; give a ${INPUT_FORMAT_LIST} file`);
    }
    throw new UserError(`image ${quoteName(name)} is corrupt (${why}); re-export or re-download it`);
  }
  if (!isAcceptedFormat(meta)) {
    const what = meta.format === 'svg' ? 'an SVG (vector) file' : meta.format === 'heif' ? `a HEIF (${meta.compression ?? 'unknown'}) image` : `a ${meta.format} file`;
    throw new UserError(`image ${quoteName(name)} is ${what}, which is not accepted; convert it to one of ${INPUT_FORMATS.join(', ')}`);
  }
  const pixels = meta.width * meta.height;
  if (!(pixels > 0)) throw new UserError(`image ${quoteName(name)} has no pixels; re-export or re-download it`);
  if (pixels > maxPixels) {
    throw new UserError(
      `image ${quoteName(name)} is ${meta.width}x${meta.height} (${pixelCount(pixels)}), more than the limit of ${pixelCount(maxPixels)}; ` +
        `shrink it or raise the limit with --max-pixels`,
    );
  }
}

/**
 * Checks an image file without decoding it: it exists, can be read, is one of INPUT_FORMATS
 * and has at most maxPixels pixels. Lets a command refuse bad inputs before loading models.
 */
export async function checkImageFile(file: string, opts: Pick<ReadImageOptions, 'maxPixels' | 'label'> = {}): Promise<void> {
  await checkImageInput(file, opts.label ?? file, opts.maxPixels ?? DEFAULT_MAX_PIXELS);
}

/**
 * Reads an image as sRGB: honours EXIF orientation, flattens transparency onto white and
 * converts grey, CMYK and 16-bit images to 8-bit sRGB. Problems with the input (missing, empty,
 * not an image, truncated, too large) are reported as a UserError naming the file.
 */
export async function readImage(input: string | Buffer, opts: ReadImageOptions = {}): Promise<RgbImage> {
  const name = opts.label ?? (typeof input === 'string' ? input : 'input image');
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  await checkImageInput(input, name, maxPixels);

  let pipeline = sharp(input, { failOn: FAIL_ON, limitInputPixels: false }).autoOrient();
  if (opts.maxSize !== undefined) {
    if (!(opts.maxSize >= 1)) throw new RangeError(`maxSize must be at least 1, got ${opts.maxSize}`);
    const side = Math.floor(opts.maxSize);
    pipeline = pipeline.resize({ width: side, height: side, fit: 'inside', withoutEnlargement: true });
  }
  pipeline = pipeline.flatten({ background: '#ffffff' }).toColourspace('srgb').removeAlpha();

  let decoded: { data: Buffer; info: OutputInfo };
  try {
    decoded = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new UserError(`image ${quoteName(name)} is truncated or corrupt (${reason(err)}); re-export or re-download it`);
  }
  const { data, info } = decoded;
  if (info.channels !== 3) throw new Error(`expected 3 channels after sRGB conversion, got ${info.channels} for ${name}`);
  return fromInterleavedU8(data, info.width, info.height, 3);
}

function checkImage(img: RgbImage): void {
  const { width, height, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`image size must be positive integers, got ${width}x${height}`);
  }
  if (data.length !== 3 * width * height) {
    throw new RangeError(`image data has ${data.length} values, ${width}x${height} RGB needs ${3 * width * height}`);
  }
}

/** Planar float RGB to interleaved (HWC) uint8, clamping to [0,1] (NaN becomes 0) and rounding. */
export function toInterleavedU8(img: RgbImage): Uint8Array {
  checkImage(img);
  const { data } = img;
  const n = img.width * img.height;
  // A clamped store maps NaN and v < 0 to 0 and v > 1 to 255, and rounds; it rounds half to
  // even where Math.round rounds half up, but v * 255 of a float32 v in [0, 1] is exact in a
  // double and is a half only at v = 0.5 (127.5), where both give 128. One pass over the
  // pixels, no Math calls: this runs once per video frame while the network waits.
  const out = new Uint8ClampedArray(3 * n);
  for (let i = 0, k = 0; i < n; i++, k += 3) {
    out[k] = data[i] * 255;
    out[k + 1] = data[n + i] * 255;
    out[k + 2] = data[2 * n + i] * 255;
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/** b / 255 as float32 for every byte: the same rounding as dividing and storing into a Float32Array. */
export const BYTE_TO_UNIT = Float32Array.from({ length: 256 }, (_, b) => b / 255);

/** Interleaved (HWC) uint8 pixels with `channels` channels to planar float RGB (extra channels are dropped). */
export function fromInterleavedU8(pixels: Uint8Array, width: number, height: number, channels = 3): RgbImage {
  if (channels < 3) throw new RangeError(`need at least 3 channels, got ${channels}`);
  const n = width * height;
  if (pixels.length !== channels * n) {
    throw new RangeError(`pixel buffer has ${pixels.length} bytes, ${width}x${height}x${channels} needs ${channels * n}`);
  }
  const data = new Float32Array(3 * n);
  const lut = BYTE_TO_UNIT;
  for (let i = 0, k = 0; i < n; i++, k += channels) {
    data[i] = lut[pixels[k]];
    data[n + i] = lut[pixels[k + 1]];
    data[2 * n + i] = lut[pixels[k + 2]];
  }
  return { width, height, data };
}

/** Encodes an image; quality is set high because stylised output is full of fine colour texture. */
export async function encodeImage(img: RgbImage, format: ImageFormat): Promise<Buffer> {
  const pixels = toInterleavedU8(img);
  const pipeline = sharp(pixels, { raw: { width: img.width, height: img.height, channels: 3 } });
  switch (format) {
    case 'png':
      return pipeline.png().toBuffer();
    case 'jpeg':
      // 4:4:4 because chroma subsampling smears the thin coloured strokes styles are made of.
      return pipeline.jpeg({ quality: 95, chromaSubsampling: '4:4:4' }).toBuffer();
    case 'webp':
      return pipeline.webp({ quality: 95 }).toBuffer();
    default: {
      const never: never = format;
      throw new RangeError(`unknown image format ${String(never)}`);
    }
  }
}

/** The output format for a file name, from its extension; a UserError listing the choices otherwise. */
export function formatFromPath(file: string): ImageFormat {
  const ext = path.extname(file).toLowerCase();
  const format = EXTENSION_FORMATS[ext];
  if (format === undefined) {
    const got = ext === '' ? 'has no extension' : `has extension ${quoteName(ext)}`;
    throw new UserError(`output ${quoteName(file)} ${got}; name it with one of ${SUPPORTED_EXTENSIONS}`);
  }
  return format;
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    () => true,
    () => false,
  );
}

async function outputFileError(file: string, err: unknown): Promise<Error> {
  const dir = path.dirname(file);
  switch (errnoCode(err)) {
    case 'ENOENT':
    case 'ENOTDIR':
      if (await exists(dir)) return new UserError(`cannot write ${quoteName(file)} (${reason(err)}); choose another folder`);
      return new UserError(`cannot write ${quoteName(file)}: folder ${quoteName(dir)} does not exist; create it first`);
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new UserError(`cannot write ${quoteName(file)}: permission denied; choose a folder you can write to`);
    case 'EISDIR':
      return new UserError(`cannot write ${quoteName(file)}: it is a folder; give a file name such as out.png`);
    case 'ENOSPC':
    case 'EDQUOT':
      return new UserError(`cannot write ${quoteName(file)}: the disk is full; free some space or write elsewhere`);
    default:
      return err instanceof Error ? err : new Error(String(err));
  }
}

/**
 * Writes an image in the format its extension names. The bytes go to a temporary file in the
 * same folder which is then renamed over `file`, so a reader (or a crash) never sees a
 * half-written image, and the temporary file is removed if anything fails.
 */
export async function writeImage(file: string, img: RgbImage): Promise<void> {
  const format = formatFromPath(file);
  const bytes = await encodeImage(img, format);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let created = false;
  try {
    const handle = await fs.open(tmp, 'wx');
    created = true;
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, file);
    created = false;
  } catch (err) {
    throw await outputFileError(file, err);
  } finally {
    if (created) await fs.rm(tmp, { force: true });
  }
}

/**
 * Resizes with a separable triangle filter whose support widens when shrinking, so that
 * downscaling averages every source pixel instead of skipping (aliasing) most of them.
 */
export async function resizeImage(img: RgbImage, width: number, height: number): Promise<RgbImage> {
  checkImage(img);
  if (width === img.width && height === img.height) return { width, height, data: img.data.slice() };
  return { width, height, data: resamplePlanar(img.data, 3, img.width, img.height, width, height) };
}

/** For each output index along one axis: the first source index and the normalised weights. */
interface AxisWeights {
  start: Int32Array;
  count: Int32Array;
  weights: Float64Array;
  stride: number;
}

function axisWeights(inSize: number, outSize: number): AxisWeights {
  const scale = inSize / outSize;
  const radius = Math.max(scale, 1);
  const stride = Math.ceil(2 * radius) + 2;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * stride);
  for (let o = 0; o < outSize; o++) {
    const centre = (o + 0.5) * scale; // half-pixel centres, as in PIL and torch (align_corners=false)
    const lo = Math.max(0, Math.floor(centre - radius));
    const hi = Math.min(inSize, Math.ceil(centre + radius));
    let sum = 0;
    for (let j = lo; j < hi; j++) {
      const w = Math.max(0, 1 - Math.abs((j + 0.5 - centre) / radius));
      weights[o * stride + (j - lo)] = w;
      sum += w;
    }
    if (sum === 0) {
      // Cannot happen for sizes >= 1, but keep the pixel rather than divide by zero.
      const nearest = Math.min(inSize - 1, Math.floor(centre));
      start[o] = nearest;
      count[o] = 1;
      weights[o * stride] = 1;
      continue;
    }
    for (let k = 0; k < hi - lo; k++) weights[o * stride + k] /= sum;
    start[o] = lo;
    count[o] = hi - lo;
  }
  return { start, count, weights, stride };
}

/**
 * Resamples `channels` planes of inW x inH floats to outW x outH with a triangle (bilinear)
 * filter that widens when shrinking, i.e. bilinear when enlarging and area-like when reducing.
 */
export function resamplePlanar(
  data: Float32Array,
  channels: number,
  inW: number,
  inH: number,
  outW: number,
  outH: number,
): Float32Array {
  if (!Number.isInteger(outW) || !Number.isInteger(outH) || outW < 1 || outH < 1) {
    throw new RangeError(`target size must be positive integers, got ${outW}x${outH}`);
  }
  if (data.length !== channels * inW * inH) {
    throw new RangeError(`data has ${data.length} values, ${inW}x${inH}x${channels} needs ${channels * inW * inH}`);
  }
  const xs = axisWeights(inW, outW);
  const ys = axisWeights(inH, outH);
  const rows = new Float32Array(inH * outW); // one channel resized horizontally only
  const out = new Float32Array(channels * outW * outH);
  for (let c = 0; c < channels; c++) {
    const src = c * inW * inH;
    for (let y = 0; y < inH; y++) {
      const row = src + y * inW;
      for (let x = 0; x < outW; x++) {
        const s = xs.start[x];
        const base = x * xs.stride;
        let acc = 0;
        for (let k = 0; k < xs.count[x]; k++) acc += xs.weights[base + k] * data[row + s + k];
        rows[y * outW + x] = acc;
      }
    }
    const dst = c * outW * outH;
    for (let y = 0; y < outH; y++) {
      const s = ys.start[y];
      const base = y * ys.stride;
      for (let x = 0; x < outW; x++) {
        let acc = 0;
        for (let k = 0; k < ys.count[y]; k++) acc += ys.weights[base + k] * rows[(s + k) * outW + x];
        out[dst + y * outW + x] = acc;
      }
    }
  }
  return out;
}
