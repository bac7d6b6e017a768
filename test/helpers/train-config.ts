// The tiny training run the train tests share: test split, 32x32 crops, batch 2.
import path from 'node:path';
import type { TrainConfig } from '../../src/train/trainer.js';
import { SHARED } from './cli.js';

export function tinyTrainConfig(out: string, over: Partial<TrainConfig> = {}): TrainConfig {
  return {
    content: path.join(SHARED, 'data/content/test'), style: path.join(SHARED, 'data/style/test'), encoder: 'cd16x-r41',
    out, mode: 'style', init: 'random', styleWeight: 10, contentWeight: 1, styleLoss: 'mse', lr: 1e-3, lrSchedule: 'inverse:5e-5',
    batchSize: 2, loadSize: 64, crop: 32, iterations: 6, seed: 1, valEvery: 1000, checkpointEvery: 1000, logEvery: 1, threads: 2,
    modelsDir: path.join(SHARED, 'models'), ...over,
  };
}
