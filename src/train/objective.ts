import { findModel } from '../models/registry.js';
import { resolveWeightFile } from '../models/resolve.js';
import { decoderWeights, encoderWeights } from '../models/canonical-weights.js';
import { readWeights } from '../weights/index.js';
import type { StyleLossKind } from './losses.js';
import { StepRunner, type MeanLosses } from './step-runner.js';
import { fixedBatches, styleLayersFor } from './trainer.js';

export interface ObjectiveOptions {
  /** Registry model whose encoder and cut the decoder belongs to. */
  encoder: string;
  /** The decoder weights file to measure. */
  decoder: string;
  /** Fixed pair sets to measure on, by label (e.g. train and test splits). */
  sets: { label: string; content: string; style: string }[];
  pairs: number;
  batchSize: number;
  loadSize: number;
  crop: number;
  seed: number;
  styleWeight: number;
  contentWeight: number;
  tvWeight: number;
  styleLoss: StyleLossKind;
  threads: number;
  modelsDir?: string;
  warn?: (m: string) => void;
}

/**
 * The training objective of one decoder on fixed, seeded pairs of each set: the diagnosis
 * of whether a gap between train and held-out loss is over-fitting (train much lower) or
 * capacity/steps (both alike).
 */
export async function measureObjective(o: ObjectiveOptions): Promise<{ label: string; losses: MeanLosses }[]> {
  const warn = o.warn ?? ((m: string) => process.stderr.write(`adain: warning: ${m}\n`));
  const spec = findModel(o.encoder);
  const { kind, cut } = spec.encoder;
  const encFile = await resolveWeightFile(spec.encoder.weights, { modelsDir: o.modelsDir });
  const encoder = encoderWeights(kind, cut, await readWeights(encFile), encFile);
  const decoder = decoderWeights(cut, await readWeights(o.decoder), o.decoder);
  const runner = await StepRunner.create({
    kind, cut, styleLayers: styleLayersFor(cut), encoder, decoder, mode: 'style', styleLoss: o.styleLoss, contentWeight: o.contentWeight,
    styleWeight: o.styleWeight, tvWeight: o.tvWeight, batch: o.batchSize, crop: o.crop, threads: o.threads,
  });
  try {
    const out: { label: string; losses: MeanLosses }[] = [];
    for (const set of o.sets) {
      const batches = await fixedBatches({ content: set.content, style: set.style, pairs: o.pairs, batchSize: o.batchSize, loadSize: o.loadSize, crop: o.crop, seed: o.seed }, warn);
      out.push({ label: set.label, losses: (await runner.meanLosses(batches)).losses });
    }
    return out;
  } finally {
    await runner.dispose();
  }
}
