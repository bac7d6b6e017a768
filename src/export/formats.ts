/**
 * The pixel formats an exported model takes and gives. The conversions live inside the
 * graph, folded into the first and last convolutions (channel order and scale are linear,
 * and commute with reflection padding), so a camera pipeline feeds its frames as they come
 * and shows the result as it comes out, with no arithmetic on the host.
 */
import type { RgbImage } from '../image/io.js';
import type { ConvParams } from '../nn/layers.js';

export const PIXEL_FORMATS = ['rgb-float', 'bgr-u8-planar'] as const;
/**
 * - rgb-float: float32 [1,3,H,W], RGB planes, values in [0,1] (outputs are clipped to [0,1]);
 * - bgr-u8-planar: uint8 [1,3,H,W], BGR planes, 0..255: depthai's planar camera frames.
 */
export type PixelFormat = (typeof PIXEL_FORMATS)[number];

export interface InputAdapter {
  type: 'float' | 'uint8';
  /** The network's RGB channel c (in [0,1]) is scale * input channel perm[c]. */
  perm: [number, number, number];
  scale: number;
}

export interface OutputAdapter {
  type: 'float' | 'uint8';
  /** Output channel c is clip(scale * rgb[perm[c]] + offset, lo, hi), then cast to `type`. */
  perm: [number, number, number];
  scale: number;
  offset: number;
  lo: number;
  hi: number;
}

export function inputAdapter(f: PixelFormat): InputAdapter {
  return f === 'rgb-float' ? { type: 'float', perm: [0, 1, 2], scale: 1 } : { type: 'uint8', perm: [2, 1, 0], scale: 1 / 255 };
}

/**
 * uint8 output: 255 * clip(rgb, 0, 1) + 0.5 = clip(255 * rgb + 0.5, 0.5, 255.5), and Cast then
 * truncates, which rounds to the nearest level (half up) like the project's PNG writer.
 */
export function outputAdapter(f: PixelFormat): OutputAdapter {
  return f === 'rgb-float'
    ? { type: 'float', perm: [0, 1, 2], scale: 1, offset: 0, lo: 0, hi: 1 }
    : { type: 'uint8', perm: [2, 1, 0], scale: 255, offset: 0.5, lo: 0.5, hi: 255.5 };
}

/** The first conv with its 3 input channels read through the adapter. */
export function foldInput(p: ConvParams, a: InputAdapter): ConvParams {
  const [o, i, kh, kw] = p.weight.shape;
  if (i !== 3) throw new Error(`first conv takes ${i} channels, expected 3`);
  const k = kh * kw;
  const w = new Float32Array(p.weight.data.length);
  for (let oc = 0; oc < o; oc++) {
    for (let c = 0; c < 3; c++) {
      // weight on network channel c moves to input channel perm[c], scaled
      const src = (oc * 3 + c) * k, dst = (oc * 3 + a.perm[c]) * k;
      for (let j = 0; j < k; j++) w[dst + j] = p.weight.data[src + j] * a.scale;
    }
  }
  return { weight: { shape: p.weight.shape, data: w }, bias: p.bias };
}

/** The last conv with its 3 output channels permuted, scaled and offset (the clip and cast follow it). */
export function foldOutput(p: ConvParams, a: OutputAdapter): ConvParams {
  const [o, i, kh, kw] = p.weight.shape;
  if (o !== 3) throw new Error(`last conv gives ${o} channels, expected 3`);
  const per = i * kh * kw;
  const w = new Float32Array(p.weight.data.length);
  const b = new Float32Array(3);
  for (let c = 0; c < 3; c++) {
    const src = a.perm[c];
    for (let j = 0; j < per; j++) w[c * per + j] = p.weight.data[src * per + j] * a.scale;
    b[c] = p.bias.data[src] * a.scale + a.offset;
  }
  return { weight: { shape: p.weight.shape, data: w }, bias: { shape: [3], data: b } };
}

/** A 3->3 1x1 conv that does nothing: where a network has no conv to fold an adapter into. */
export function identityConv(): ConvParams {
  const w = new Float32Array(9);
  for (let c = 0; c < 3; c++) w[c * 4] = 1;
  return { weight: { shape: [3, 3, 1, 1], data: w }, bias: { shape: [3], data: new Float32Array(3) } };
}

/** Host side: an image as the model's input tensor data. */
export function toInputData(img: RgbImage, f: PixelFormat): Float32Array | Uint8Array {
  if (f === 'rgb-float') return img.data;
  const n = img.width * img.height;
  const out = new Uint8Array(3 * n);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < n; i++) out[(2 - c) * n + i] = Math.round(Math.min(1, Math.max(0, img.data[c * n + i])) * 255);
  }
  return out;
}

/** Host side: the model's output tensor data as planar RGB in [0,1]. */
export function fromOutputData(data: Float32Array | Uint8Array, f: PixelFormat, width: number, height: number): RgbImage {
  if (f === 'rgb-float') return { width, height, data: Float32Array.from(data) };
  const n = width * height;
  const out = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) for (let i = 0; i < n; i++) out[c * n + i] = data[(2 - c) * n + i] / 255;
  return { width, height, data: out };
}

/**
 * What the model should output for the network's float RGB result, as the model gives it:
 * clipped floats, or BGR levels rounded half up (the model's Cast truncates v + 0.5).
 */
export function expectedOutput(img: RgbImage, f: PixelFormat): Float32Array | Uint8Array {
  const a = outputAdapter(f);
  const n = img.width * img.height;
  const out = a.type === 'float' ? new Float32Array(3 * n) : new Uint8Array(3 * n);
  for (let c = 0; c < 3; c++) {
    const src = a.perm[c] * n;
    for (let i = 0; i < n; i++) {
      const v = Math.min(a.hi, Math.max(a.lo, img.data[src + i] * a.scale + a.offset));
      out[c * n + i] = a.type === 'float' ? v : Math.floor(v);
    }
  }
  return out;
}

/** An image quantised to 8 bits per channel, as a camera (or a decoded JPEG) gives it. */
export function quantize8(img: RgbImage): RgbImage {
  return { ...img, data: img.data.map((v) => Math.round(Math.min(1, Math.max(0, v)) * 255) / 255) };
}
