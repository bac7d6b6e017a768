/** Picks the models whose files are on disk and loads them with their layer shapes. */
import { decoderLayers, encoderLayers } from '../models/architectures.js';
import { decoderWeights, encoderWeights, type ConvWeights } from '../models/canonical-weights.js';
import { findModel, MODELS, type ModelSpec } from '../models/registry.js';
import { modelStatus, type ResolveOptions } from '../models/resolve.js';
import { Network } from '../stylize/network.js';
import { readWeights } from '../weights/index.js';
import { layerShapes, type ArchitectureShape } from './architecture.js';

export interface AvailableModel {
  spec: ModelSpec;
  encoderFile: string;
  decoderFile: string;
}

export interface ModelSelection {
  available: AvailableModel[];
  /** One line per model left out, saying which files it lacks. */
  skipped: string[];
}

/** The named models (all registry models when `names` is empty), split by whether their files are present. */
export async function selectModels(names: readonly string[], opts: Pick<ResolveOptions, 'modelsDir'>): Promise<ModelSelection> {
  const specs = names.length ? [...new Set(names)].map(findModel) : MODELS;
  const out: ModelSelection = { available: [], skipped: [] };
  for (const spec of specs) {
    const files = await modelStatus(spec, opts);
    const bad = files.filter((f) => !f.localPath || f.problem);
    if (bad.length) {
      out.skipped.push(`${spec.name}: ${bad.map((f) => `${f.file} ${f.problem ?? 'not present'}`).join('; ')}`);
      continue;
    }
    const file = (role: 'encoder' | 'decoder') => files.find((f) => f.role === role)!.localPath!;
    out.available.push({ spec, encoderFile: file('encoder'), decoderFile: file('decoder') });
  }
  return out;
}

/** A model's encoder and decoder weights and the layer shapes the FLOP count and PyTorch use. */
export async function loadBenchWeights(m: AvailableModel): Promise<{ enc: ConvWeights; dec: ConvWeights; arch: ArchitectureShape }> {
  const { kind, cut } = m.spec.encoder;
  const enc = encoderWeights(kind, cut, await readWeights(m.encoderFile), m.encoderFile);
  const dec = decoderWeights(cut, await readWeights(m.decoderFile), m.decoderFile);
  const arch = {
    encoder: layerShapes(encoderLayers(cut, kind !== 'vgg19bn'), enc),
    decoder: layerShapes(decoderLayers(cut), dec),
  };
  return { enc, dec, arch };
}

/** The onnxruntime network and the layer shapes, from the same weights. */
export async function loadBenchNetwork(m: AvailableModel, threads: number): Promise<{ net: Network; arch: ArchitectureShape }> {
  const { enc, dec, arch } = await loadBenchWeights(m);
  const net = await Network.fromWeights(m.spec.encoder.kind, m.spec.encoder.cut, enc, dec, { threads }, m.decoderFile);
  return { net, arch };
}
