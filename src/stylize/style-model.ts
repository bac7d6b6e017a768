import type { ImageFormat, RgbImage } from '../image/io.js';
import { encodeImage, readImage, resizeImage } from '../image/io.js';
import { readMask } from '../image/mask.js';
import { DEFAULT_MODEL, findModel, type ModelSpec } from '../models/registry.js';
import { resolveWeightFile, type ResolveOptions } from '../models/resolve.js';
import type { RuntimeOptions } from '../runtime/session.js';
import type { ChannelStats } from './features.js';
import { stylizeImage, styleStats, type StylizeOptions } from './model.js';
import type { Network } from './network.js';
import { openNetwork, type PrecisionOption } from '../quant/precision.js';
import { stylizeVideoFile, type StylizeVideoOptions, type VideoResult } from '../video/stylize-video.js';

/** An image as a file path, encoded bytes, or decoded planar RGB. */
export type ImageInput = string | Buffer | RgbImage;

export interface LoadModelOptions extends RuntimeOptions, Omit<ResolveOptions, 'fetchImpl'> {
  /** Use this encoder weights file instead of the registry's. */
  encoder?: string;
  /** Use this decoder weights file (a PyTorch checkpoint or the project's safetensors) instead of the registry's. */
  decoder?: string;
  /**
   * fp32 (default); int8 (needs a calibration of these weights: `adain calibrate`); auto: int8
   * when calibrated and faster on this CPU, else fp32. `model.network.precision` says which.
   */
  precision?: PrecisionOption;
}

export interface StylizeImageOptions extends Omit<StylizeOptions, 'mask'> {
  /** Mask image path or width*height values (1 = style 1): needs two styles. */
  mask?: string | Float32Array;
  /** Scale the content's longer side down to this first. */
  maxSize?: number;
  /** Style images are scaled so that their shorter side is this (default 512). */
  styleSize?: number;
  /** Refuse images with more pixels than this (default 100 million). */
  maxPixels?: number;
  /** Output encoding (default png). */
  format?: ImageFormat;
}

export const DEFAULT_STYLE_SIZE = 512;

/** Options of StyleModel.stylizeVideo: the per-frame options of images plus the video's own. */
export interface StylizeVideoFileOptions extends StylizeVideoOptions, Pick<StylizeImageOptions, 'styleSize'> {}

/**
 * A loaded style-transfer model: encoder and decoder sessions built once, then
 * `stylize(content, style)` as often as needed.
 */
export class StyleModel {
  constructor(readonly spec: ModelSpec, readonly network: Network) {}

  /** Stylises and encodes the result (PNG unless `format` says otherwise). */
  async stylize(content: ImageInput, style: ImageInput | ImageInput[], opts: StylizeImageOptions = {}): Promise<Buffer> {
    return encodeImage(await this.stylizeToImage(content, style, opts), opts.format ?? 'png');
  }

  /** Stylises and returns planar RGB in [0,1] at the content's size. */
  async stylizeToImage(content: ImageInput, style: ImageInput | ImageInput[] | ChannelStats[], opts: StylizeImageOptions = {}): Promise<RgbImage> {
    const c = await this.readContent(content, opts);
    const list = Array.isArray(style) ? style : [style];
    const styles: (RgbImage | ChannelStats)[] = [];
    for (const s of list) styles.push(isStats(s) ? s : await this.readStyle(s, opts));
    const mask = typeof opts.mask === 'string' ? await readMask(opts.mask, c.width, c.height) : opts.mask;
    return stylizeImage(this.network, c, styles, { ...opts, mask });
  }

  /**
   * Stylises a video file (any container ffmpeg reads) into `opts.output` (.mp4, .m4v, .mov,
   * .mkv, .webm or .gif), keeping frame rate, size, frame count and audio where the container
   * allows; needs the system ffmpeg. Style statistics are computed once per clip.
   */
  async stylizeVideo(input: string, style: ImageInput | readonly (ImageInput | ChannelStats)[], opts: StylizeVideoFileOptions): Promise<VideoResult> {
    const list: readonly (ImageInput | ChannelStats)[] = Array.isArray(style) ? style : [style as ImageInput];
    const styles: (RgbImage | ChannelStats)[] = [];
    for (const s of list) {
      if (isStats(s)) styles.push(s);
      // with preserveColor the style is recoloured to the first frame, so it stays an image
      else styles.push(opts.preserveColor ? await this.readStyle(s, opts) : await this.styleStats(s, opts));
    }
    return stylizeVideoFile(this.network, input, styles, opts);
  }

  /** Style statistics, to reuse one style across many contents. */
  async styleStats(style: ImageInput, opts: Pick<StylizeImageOptions, 'styleSize' | 'maxPixels' | 'transform'> = {}): Promise<ChannelStats> {
    return styleStats(this.network, await this.readStyle(style, opts), opts.transform);
  }

  async readContent(input: ImageInput, opts: Pick<StylizeImageOptions, 'maxSize' | 'maxPixels'> = {}): Promise<RgbImage> {
    return isImage(input) ? input : readImage(input, { maxSize: opts.maxSize, maxPixels: opts.maxPixels });
  }

  /** Reads a style image and scales its shorter side to `styleSize`, sides rounded to the network's alignment. */
  async readStyle(input: ImageInput, opts: Pick<StylizeImageOptions, 'styleSize' | 'maxPixels'> = {}): Promise<RgbImage> {
    const img = isImage(input) ? input : await readImage(input, { maxPixels: opts.maxPixels });
    const size = opts.styleSize ?? DEFAULT_STYLE_SIZE;
    const f = this.network.factor;
    const scale = size / Math.min(img.width, img.height);
    const w = Math.max(2 * f, Math.round((img.width * scale) / f) * f), h = Math.max(2 * f, Math.round((img.height * scale) / f) * f);
    return w === img.width && h === img.height ? img : resizeImage(img, w, h);
  }

  async dispose(): Promise<void> {
    await this.network.dispose();
  }
}

function isImage(x: unknown): x is RgbImage {
  return typeof x === 'object' && x !== null && 'data' in x && (x as RgbImage).data instanceof Float32Array && 'width' in x;
}

function isStats(x: unknown): x is ChannelStats {
  return typeof x === 'object' && x !== null && 'mean' in x && 'std' in x;
}

/** Loads a named model from the registry (files from the models dir, or downloaded and verified). */
export async function loadModel(name: string = DEFAULT_MODEL, opts: LoadModelOptions = {}): Promise<StyleModel> {
  const spec = findModel(name);
  const encoderFile = opts.encoder ?? (await resolveWeightFile(spec.encoder.weights, opts));
  const decoderFile = opts.decoder ?? (await resolveWeightFile(spec.decoder.weights, opts));
  const net = await openNetwork(spec.encoder.kind, spec.encoder.cut, encoderFile, decoderFile, {
    ...opts, modelName: spec.name, userDecoder: opts.decoder !== undefined,
  });
  return new StyleModel(spec, net);
}
