import type * as ort from 'onnxruntime-node';
import { UserError } from '../errors.js';
import { padPlanar, cropPlanar } from '../image/pad.js';
import type { RgbImage } from '../image/io.js';
import { decoderLayers, downsampleFactor, encoderLayers, type CutLayer } from '../models/architectures.js';
import { decoderWeights, encoderWeights, type ConvWeights, type EncoderKind } from '../models/canonical-weights.js';
import { decoderModel, encoderModel } from '../models/graphs.js';
import { createSession, runFloat, type RuntimeOptions } from '../runtime/session.js';
import { readWeights } from '../weights/index.js';
import { qdqDecoderModel, qdqEncoderModel, type QuantSpec } from '../quant/qdq.js';
import type { FeatureMap } from './features.js';
import { peakBytesPerPixel } from './tiled.js';
import { WctRunner } from './wct-runner.js';

export type Precision = 'fp32' | 'int8';

export interface NetworkOptions extends RuntimeOptions {
  /** Build the int8 (QDQ) graphs with these calibrated activation ranges; fp32 without. */
  int8?: QuantSpec;
}

/**
 * An encoder + decoder pair as two onnxruntime sessions, built once. Graphs have dynamic
 * H and W, so one session serves every image size.
 *
 * An int8 network encodes style images with a float encoder (a third session, built on the
 * first style): the style statistics set the mean and std of every channel of the decoder's
 * input, so their quantisation error reaches every pixel, and most of the int8 encoder's error
 * came that way. A style is encoded once per stylisation (once per clip, or cached), so where
 * int8 matters (many frames per style) the float encode costs little.
 */
export class Network {
  /** The float style encoder of an int8 network, once built. */
  private styleEncoder?: Promise<ort.InferenceSession>;
  /** The wct transform's matrix products (wct-runner.ts), built on the first wct stylisation. */
  private wctRunner?: Promise<WctRunner>;

  private constructor(
    readonly kind: EncoderKind,
    readonly cut: CutLayer,
    readonly channels: number,
    /** Activation bytes per input pixel at the hungriest layer, to size tiles. */
    readonly encoderBytesPerPixel: number,
    /** The same for the decoder, per feature pixel. */
    readonly decoderBytesPerPixel: number,
    private readonly encoder: ort.InferenceSession,
    private readonly decoder: ort.InferenceSession,
    readonly precision: Precision = 'fp32',
    /** Builds the float encoder for styles; absent when `encoder` is float already. */
    private readonly buildStyleEncoder?: () => Promise<ort.InferenceSession>,
    /** Threads and provider, for the sessions built later (wct). */
    private readonly runtime: RuntimeOptions = {},
  ) {}

  /** Images are padded to a multiple of this before encoding (2 per pooling). */
  get factor(): number {
    return downsampleFactor(this.cut);
  }

  static async fromFiles(kind: EncoderKind, cut: CutLayer, encoderFile: string, decoderFile: string, opts: NetworkOptions = {}): Promise<Network> {
    const enc = encoderWeights(kind, cut, await readWeights(encoderFile), encoderFile);
    const dec = decoderWeights(cut, await readWeights(decoderFile), decoderFile);
    return Network.fromWeights(kind, cut, enc, dec, opts, decoderFile);
  }

  static async fromWeights(kind: EncoderKind, cut: CutLayer, enc: ConvWeights, dec: ConvWeights, opts: NetworkOptions = {}, decoderFile = 'decoder'): Promise<Network> {
    const encLayers = encoderLayers(cut, kind !== 'vgg19bn');
    const decLayers = decoderLayers(cut);
    const featC = [...enc.values()].at(-1)!.weight.shape[0];
    const first = dec.values().next().value!;
    const last = [...dec.values()].at(-1)!;
    if (first.weight.shape[1] !== featC || last.weight.shape[0] !== 3) {
      throw new UserError(`${decoderFile}: decoder maps ${first.weight.shape[1]} channels to ${last.weight.shape[0]}, the encoder gives ${featC} at ${cut}; use the decoder trained for this encoder`);
    }
    const q = opts.int8;
    const [encoder, decoder] = await Promise.all([
      createSession(q ? qdqEncoderModel(encLayers, enc, [cut], q.encoder) : encoderModel(encLayers, enc, [cut]), opts),
      createSession(q ? qdqDecoderModel(decLayers, dec, q.decoder) : decoderModel(decLayers, dec), opts),
    ]);
    // lazily: auto (quant/precision.ts) builds int8 networks it may throw away after a timing that encodes no style
    const styleEncoder = q ? () => createSession(encoderModel(encLayers, enc, [cut]), opts) : undefined;
    return new Network(kind, cut, featC, peakBytesPerPixel(encLayers, enc), peakBytesPerPixel(decLayers, dec), encoder, decoder, q ? 'int8' : 'fp32', styleEncoder,
      { threads: opts.threads, executionProvider: opts.executionProvider });
  }

  /** Features of an image whose sides are multiples of `factor`. */
  async encode(img: RgbImage): Promise<FeatureMap> {
    return this.run(this.encoder, img);
  }

  /** Any size: reflect-pads to a multiple of `factor` first (the features then cover the padded image). */
  async encodeAnySize(img: RgbImage): Promise<FeatureMap> {
    return this.encode(this.padded(img));
  }

  /**
   * Features of a style image (any size, padded as encodeAnySize does) for its statistics:
   * the same as encodeAnySize in fp32, the float encoder in int8 (see the class comment).
   */
  async encodeStyle(img: RgbImage): Promise<FeatureMap> {
    if (!this.buildStyleEncoder) return this.encodeAnySize(img);
    // a failed build is not kept, so that the next style tries again
    this.styleEncoder ??= this.buildStyleEncoder().catch((err: unknown) => {
      this.styleEncoder = undefined;
      throw err;
    });
    return this.run(await this.styleEncoder, this.padded(img));
  }

  private async run(session: ort.InferenceSession, img: RgbImage): Promise<FeatureMap> {
    const out = (await runFloat(session, 'image', img.data, [1, 3, img.height, img.width])).get(this.cut)!;
    return { c: out.dims[1], h: out.dims[2], w: out.dims[3], data: out.data };
  }

  private padded(img: RgbImage): RgbImage {
    const f = this.factor;
    const h = Math.max(Math.ceil(img.height / f), 2) * f, w = Math.max(Math.ceil(img.width / f), 2) * f;
    return h === img.height && w === img.width ? img : { width: w, height: h, data: padPlanar(img.data, 3, img.height, img.width, h, w) };
  }

  async decode(f: FeatureMap): Promise<RgbImage> {
    const out = (await runFloat(this.decoder, 'features', f.data, [1, f.c, f.h, f.w])).get('image')!;
    return { width: out.dims[3], height: out.dims[2], data: out.data };
  }

  /** Decodes and crops back to (width, height). */
  async decodeTo(f: FeatureMap, width: number, height: number): Promise<RgbImage> {
    const img = await this.decode(f);
    if (img.width === width && img.height === height) return img;
    return { width, height, data: cropPlanar(img.data, 3, img.height, img.width, 0, 0, height, width) };
  }

  /** The wct transform's runner, with this network's runtime options. */
  wct(): Promise<WctRunner> {
    this.wctRunner ??= WctRunner.create(this.runtime).catch((err: unknown) => {
      this.wctRunner = undefined;
      throw err;
    });
    return this.wctRunner;
  }

  async dispose(): Promise<void> {
    const style = this.styleEncoder?.then((s) => s.release(), () => {});
    const wct = this.wctRunner?.then((r) => r.dispose(), () => {});
    this.styleEncoder = undefined;
    this.wctRunner = undefined;
    await Promise.all([this.encoder.release(), this.decoder.release(), style, wct]);
  }
}
