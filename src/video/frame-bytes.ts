/**
 * Frame conversions between ffmpeg's interleaved RGB bytes and the network's planar floats,
 * with exactly the values of image/io.ts's fromInterleavedU8 / toInterleavedU8. Those run
 * on the main thread between two network runs, while onnxruntime's threads wait, once per
 * frame; written for speed here (a table instead of a division, one pass over the pixels,
 * a clamped store instead of clamp + Math.round) they take a few times less of that gap.
 */
import type { RgbImage } from '../image/io.js';

/** b / 255 as float32 for every byte: the same rounding as dividing and storing into a Float32Array. */
const BYTE_TO_UNIT = Float32Array.from({ length: 256 }, (_, b) => b / 255);

/** Interleaved RGB bytes (width*height*3) to planar RGB floats in [0, 1]. */
export function bytesToPlanar(bytes: Uint8Array, width: number, height: number): RgbImage {
  const n = width * height;
  if (bytes.length !== 3 * n) throw new RangeError(`frame has ${bytes.length} bytes, ${width}x${height} RGB needs ${3 * n}`);
  const data = new Float32Array(3 * n);
  const lut = BYTE_TO_UNIT;
  for (let i = 0, k = 0; i < n; i++, k += 3) {
    data[i] = lut[bytes[k]];
    data[n + i] = lut[bytes[k + 1]];
    data[2 * n + i] = lut[bytes[k + 2]];
  }
  return { width, height, data };
}

/**
 * Planar RGB floats to interleaved bytes, clamped to [0, 1] (NaN becomes 0) and rounded.
 * A Uint8ClampedArray store rounds half to even where Math.round rounds half up, but for a
 * float32 v in [0, 1], v * 255 is exact in a double and lands on a half only at v = 0.5
 * (127.5, 255 being odd), where both give 128; so the bytes equal toInterleavedU8's.
 */
export function planarToBytes(img: RgbImage): Uint8Array {
  const { width, height, data } = img;
  const n = width * height;
  if (data.length !== 3 * n) throw new RangeError(`image data has ${data.length} values, ${width}x${height} RGB needs ${3 * n}`);
  const out = new Uint8ClampedArray(3 * n);
  for (let i = 0, k = 0; i < n; i++, k += 3) {
    out[k] = data[i] * 255;
    out[k + 1] = data[n + i] * 255;
    out[k + 2] = data[2 * n + i] * 255;
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}
