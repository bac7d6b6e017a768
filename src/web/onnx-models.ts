/**
 * The ONNX files the browser runs: each registry model's encoder and decoder, built once from
 * its weight files with the same graph builders the server's onnxruntime-node sessions use
 * (dynamic N, H and W, so one file serves every image size).
 */
import { createHash } from 'node:crypto';
import { decoderLayers, downsampleFactor, encoderLayers } from '../models/architectures.js';
import { decoderWeights, encoderWeights } from '../models/canonical-weights.js';
import { decoderModel, encoderModel } from '../models/graphs.js';
import { findModel } from '../models/registry.js';
import { resolveWeightFile, type ResolveOptions } from '../models/resolve.js';
import { readWeights } from '../weights/index.js';

export interface BrowserModel {
  name: string;
  /** ONNX bytes: input `image` [N,3,H,W] in [0,1], output named after the cut layer (e.g. `relu4_1`). */
  encoder: Uint8Array;
  /** ONNX bytes: input `features` [N,C,h,w], output `image` [N,3,H,W]. */
  decoder: Uint8Array;
  /** Name of the encoder's output. */
  featureName: string;
  /** Feature channels at the cut layer. */
  channels: number;
  /** Image sides must be multiples of this (reflect-pad otherwise). */
  factor: number;
  /** Short content hashes for ETags. */
  encoderEtag: string;
  decoderEtag: string;
}

function etag(bytes: Uint8Array): string {
  return `"${createHash('sha256').update(bytes).digest('hex').slice(0, 32)}"`;
}

/** Builds both graphs of a registry model from its weight files (UserError when they are missing). */
export async function buildBrowserModel(name: string, opts: Omit<ResolveOptions, 'fetchImpl'> = {}): Promise<BrowserModel> {
  const spec = findModel(name);
  const { kind, cut } = spec.encoder;
  const encFile = await resolveWeightFile(spec.encoder.weights, opts);
  const decFile = await resolveWeightFile(spec.decoder.weights, opts);
  const enc = encoderWeights(kind, cut, await readWeights(encFile), encFile);
  const dec = decoderWeights(cut, await readWeights(decFile), decFile);
  const encoder = encoderModel(encoderLayers(cut, kind !== 'vgg19bn'), enc, [cut]);
  const decoder = decoderModel(decoderLayers(cut), dec);
  const channels = [...enc.values()].at(-1)!.weight.shape[0];
  return {
    name, encoder, decoder, featureName: cut, channels, factor: downsampleFactor(cut),
    encoderEtag: etag(encoder), decoderEtag: etag(decoder),
  };
}

/** Builds each model at most once per process; a failed build is forgotten so that it can be retried. */
export class BrowserModelCache {
  private readonly built = new Map<string, Promise<BrowserModel>>();
  constructor(private readonly opts: Omit<ResolveOptions, 'fetchImpl'> = {}) {}

  get(name: string): Promise<BrowserModel> {
    let p = this.built.get(name);
    if (!p) {
      p = buildBrowserModel(name, this.opts);
      p.catch(() => this.built.delete(name));
      this.built.set(name, p);
    }
    return p;
  }
}
