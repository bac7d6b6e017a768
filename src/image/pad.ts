import type { RgbImage } from './io.js';

/** Reflect an index into [0, n) the way reflection padding does (edge not repeated). */
function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  i = ((i % period) + period) % period;
  return i < n ? i : period - i;
}

/** Pads a planar image on the right and bottom by reflection, to (height, width). */
export function padPlanar(data: Float32Array, c: number, h: number, w: number, height: number, width: number): Float32Array {
  if (height === h && width === w) return data;
  const out = new Float32Array(c * height * width);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < height; y++) {
      const sy = reflect(y, h);
      const src = ch * h * w + sy * w, dst = ch * height * width + y * width;
      for (let x = 0; x < width; x++) out[dst + x] = data[src + reflect(x, w)];
    }
  }
  return out;
}

/** Copies the window [y0, y0+height) x [x0, x0+width) of a planar map, reflecting outside it. */
export function cropPlanar(data: Float32Array, c: number, h: number, w: number, y0: number, x0: number, height: number, width: number): Float32Array {
  const out = new Float32Array(c * height * width);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < height; y++) {
      const sy = reflect(y0 + y, h);
      const src = ch * h * w + sy * w, dst = ch * height * width + y * width;
      if (x0 >= 0 && x0 + width <= w) out.set(data.subarray(src + x0, src + x0 + width), dst);
      else for (let x = 0; x < width; x++) out[dst + x] = data[src + reflect(x0 + x, w)];
    }
  }
  return out;
}

export function roundUp(n: number, multiple: number): number {
  return Math.ceil(n / multiple) * multiple;
}

export function padImage(img: RgbImage, multiple: number): RgbImage {
  const height = roundUp(img.height, multiple), width = roundUp(img.width, multiple);
  return { width, height, data: padPlanar(img.data, 3, img.height, img.width, height, width) };
}

export function cropImage(img: RgbImage, width: number, height: number): RgbImage {
  if (img.width === width && img.height === height) return img;
  return { width, height, data: cropPlanar(img.data, 3, img.height, img.width, 0, 0, height, width) };
}
