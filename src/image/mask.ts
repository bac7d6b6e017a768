import { UserError } from '../errors.js';
import { quoteName, readImage, resamplePlanar } from './io.js';

/** Below this a mask pixel counts as black, above 1 - this as white; anything between is grey. */
const NEAR_BLACK = 0.1;
const NEAR_WHITE = 0.9;
/**
 * Antialiased edges and JPEG ringing make a few grey pixels in any honest mask; more than this
 * share means the file is a photo or a soft matte, whose meaning as a 0/1 choice is a guess.
 */
const MAX_GREY_FRACTION = 0.01;

export interface ReadMaskOptions {
  /** Refuse mask images with more pixels than this, before decoding them. Default as readImage. */
  maxPixels?: number;
}

/**
 * Reads a black-and-white mask as width*height values of 1 (white: style 1) or 0 (black: style 2),
 * row-major. The mask is resized (bilinear, then thresholded at 0.5) when its size differs.
 * A mask with more than 1% grey pixels is refused with a UserError naming the file.
 */
export async function readMask(file: string, width: number, height: number, opts: ReadMaskOptions = {}): Promise<Float32Array> {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`mask size must be positive integers, got ${width}x${height}`);
  }
  const img = await readImage(file, { maxPixels: opts.maxPixels });
  const n = img.width * img.height;
  const d = img.data;
  const grey = new Float32Array(n);
  let greyPixels = 0;
  for (let i = 0; i < n; i++) {
    // Rec. 709 luma; a coloured mask lands in the grey band and is refused rather than guessed at.
    const v = 0.2126 * d[i] + 0.7152 * d[n + i] + 0.0722 * d[2 * n + i];
    grey[i] = v;
    if (v >= NEAR_BLACK && v <= NEAR_WHITE) greyPixels++;
  }
  if (greyPixels > MAX_GREY_FRACTION * n) {
    const percent = (100 * greyPixels) / n;
    const shown = percent < 10 ? percent.toFixed(1) : percent.toFixed(0);
    throw new UserError(
      `${quoteName(file)} is not a black-and-white mask: ${shown}% of its pixels are grey; ` +
        `use pure white for style 1 and black for style 2`,
    );
  }
  const sized = img.width === width && img.height === height ? grey : resamplePlanar(grey, 1, img.width, img.height, width, height);
  return threshold(sized);
}

function threshold(values: Float32Array): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i] >= 0.5 ? 1 : 0;
  return out;
}

/**
 * Shrinks a width*height 0/1 mask by `factor` to the resolution of a feature map: each output
 * value is the average of its factor x factor block, thresholded at 0.5. The output size
 * defaults to floor(width/factor) x floor(height/factor), what stride-2 max pooling without
 * ceil mode gives after log2(factor) poolings; pass outWidth/outHeight for another rounding
 * (blocks past the edge then average over the pixels that exist).
 */
export function downsampleMask(
  mask: Float32Array,
  width: number,
  height: number,
  factor: number,
  outWidth = Math.floor(width / factor),
  outHeight = Math.floor(height / factor),
): Float32Array {
  if (mask.length !== width * height) throw new RangeError(`mask has ${mask.length} values, ${width}x${height} needs ${width * height}`);
  if (!Number.isInteger(factor) || factor < 1) throw new RangeError(`factor must be a positive integer, got ${factor}`);
  if (!Number.isInteger(outWidth) || !Number.isInteger(outHeight) || outWidth < 1 || outHeight < 1) {
    throw new RangeError(`mask ${width}x${height} downsampled by ${factor} gives an empty ${outWidth}x${outHeight} mask`);
  }
  const out = new Float32Array(outWidth * outHeight);
  for (let oy = 0; oy < outHeight; oy++) {
    // Clamp so that a requested size slightly past the edge reuses the last row/column.
    const y0 = Math.min(oy * factor, height - 1);
    const y1 = Math.max(y0 + 1, Math.min((oy + 1) * factor, height));
    for (let ox = 0; ox < outWidth; ox++) {
      const x0 = Math.min(ox * factor, width - 1);
      const x1 = Math.max(x0 + 1, Math.min((ox + 1) * factor, width));
      let sum = 0;
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) sum += mask[y * width + x];
      out[oy * outWidth + ox] = sum / ((y1 - y0) * (x1 - x0)) >= 0.5 ? 1 : 0;
    }
  }
  return out;
}
