/**
 * Runs exported bytes in onnxruntime and compares them with the in-process model on real
 * images, before anything is written.
 */
import * as ort from 'onnxruntime-node';
import type { RgbImage } from '../image/io.js';
import { createSession, type RuntimeOptions } from '../runtime/session.js';
import type { ChannelStats } from '../stylize/features.js';
import { fromOutputData, inputAdapter, toInputData, type PixelFormat } from './formats.js';
import { INPUT_CONTENT, INPUT_STYLE, INPUT_STYLE_MEAN, INPUT_STYLE_STD, OUTPUT_IMAGE, type StyleSource } from './stylizer.js';

/** One validation case: what the exported model is fed (as RGB in [0,1]). */
export interface ModelInputs {
  content: RgbImage;
  /** For a style-image model. */
  style?: RgbImage;
  /** For a style-statistics model. */
  stats?: ChannelStats;
}

/** An exported model loaded in onnxruntime, fed and read in RGB [0,1] whatever its pixel formats. */
export class ExportedSession {
  private constructor(
    readonly session: ort.InferenceSession,
    readonly input: PixelFormat,
    readonly output: PixelFormat,
    readonly style: StyleSource['kind'],
  ) {}

  static async create(bytes: Uint8Array, formats: { input: PixelFormat; output: PixelFormat; style: StyleSource['kind'] }, opts: RuntimeOptions = {}): Promise<ExportedSession> {
    return new ExportedSession(await createSession(bytes, opts), formats.input, formats.output, formats.style);
  }

  /** The raw output tensor data (float32 or uint8, in the model's output format). */
  async runRaw(x: ModelInputs): Promise<Float32Array | Uint8Array> {
    return this.runFeeds(this.feeds(x));
  }

  async runFeeds(feeds: Record<string, ort.Tensor>): Promise<Float32Array | Uint8Array> {
    const out = await this.session.run(feeds);
    return out[OUTPUT_IMAGE].data as Float32Array | Uint8Array;
  }

  /** The input tensors for `x`, in the model's formats. */
  feeds(x: ModelInputs): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = { [INPUT_CONTENT]: this.imageTensor(x.content) };
    if (this.style === 'image') {
      if (!x.style) throw new Error('this model needs a style image');
      feeds[INPUT_STYLE] = this.imageTensor(x.style);
    } else if (this.style === 'stats') {
      if (!x.stats) throw new Error('this model needs style statistics');
      const c = x.stats.mean.length;
      feeds[INPUT_STYLE_MEAN] = new ort.Tensor('float32', x.stats.mean, [1, c, 1, 1]);
      feeds[INPUT_STYLE_STD] = new ort.Tensor('float32', x.stats.std, [1, c, 1, 1]);
    }
    return feeds;
  }

  /** The output as planar RGB in [0,1]. */
  async run(x: ModelInputs): Promise<RgbImage> {
    return fromOutputData(await this.runRaw(x), this.output, x.content.width, x.content.height);
  }

  private imageTensor(img: RgbImage): ort.Tensor {
    const data = toInputData(img, this.input);
    const dims = [1, 3, img.height, img.width];
    return inputAdapter(this.input).type === 'float'
      ? new ort.Tensor('float32', data as Float32Array, dims)
      : new ort.Tensor('uint8', data as Uint8Array, dims);
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

/** Largest absolute difference; NaN when either side has a NaN. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) return NaN;
    if (d > m) m = d;
  }
  return m;
}

/** PSNR in dB of two images with values in [0,1] (Infinity when equal; NaN with NaNs). */
export function psnr(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let se = 0;
  for (let i = 0; i < a.length; i++) { const d = a[i] - b[i]; se += d * d; }
  const mse = se / a.length;
  return mse === 0 ? Infinity : -10 * Math.log10(mse);
}

export function clip01(img: RgbImage): RgbImage {
  return { ...img, data: img.data.map((v) => (v > 0 ? (v < 1 ? v : 1) : 0)) };
}
