// The training objective of decoders on fixed, seeded train and test pairs (the diagnosis
// behind the model cards: over-fitting or too few steps?). Prints a table. Usage:
//   node --import tsx scripts/objective.ts -e cd16x-r41 --decoder a.safetensors[,b.safetensors] \
//     [--pairs 64] [--crop 256] [--load-size 512] [--style-weight 1] [--tv-weight 0] [--data ../shared/data]
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { measureObjective } from '../src/train/objective.js';

const num = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`expected a non-negative number, got ${v}`);
  return n;
};
const o = new Command('objective')
  .requiredOption('-e, --encoder <model>', 'registry model of the decoders (encoder and cut)')
  .requiredOption('--decoder <files>', 'comma-separated decoder files')
  .option('--data <dir>', 'corpus with content/{train,test} and style/{train,test}', path.resolve(import.meta.dirname, '../../shared/data'))
  .option('--pairs <n>', 'pairs per set', num, 64)
  .option('-b, --batch-size <n>', 'batch size', num, 8)
  .option('--crop <n>', 'crop side', num, 256)
  .option('--load-size <n>', 'shorter side before cropping', num, 512)
  .option('--style-weight <w>', 'style weight', num, 1)
  .option('--content-weight <w>', 'content weight', num, 1)
  .option('--tv-weight <w>', 'total-variation weight', num, 0)
  .option('--seed <n>', 'pair seed', num, 7)
  .option('-t, --threads <n>', 'threads', num, os.availableParallelism())
  .option('--models-dir <dir>', 'weights folder', process.env.ADAIN_MODELS_DIR)
  .parse()
  .opts<{ encoder: string; decoder: string; data: string; pairs: number; batchSize: number; crop: number; loadSize: number; styleWeight: number; contentWeight: number; tvWeight: number; seed: number; threads: number; modelsDir?: string }>();

const sets = ['train', 'test'].map((split) => ({ label: split, content: path.join(o.data, 'content', split), style: path.join(o.data, 'style', split) }));
console.log(`objective = ${o.contentWeight} x content + ${o.styleWeight} x style${o.tvWeight ? ` + ${o.tvWeight} x tv` : ''}; ${o.pairs} pairs per set, ${o.crop}x${o.crop} crops of ${o.loadSize}, seed ${o.seed}`);
console.log(['decoder', 'set', 'objective', 'content', 'style', 'tv'].join('\t'));
for (const decoder of o.decoder.split(',')) {
  const rows = await measureObjective({ ...o, decoder, sets, styleLoss: 'mse' });
  for (const r of rows) {
    const l = r.losses;
    console.log([path.relative(process.cwd(), decoder), r.label, l.loss.toFixed(3), l.content_loss.toFixed(3), l.style_loss.toFixed(3), l.tv_loss.toFixed(5)].join('\t'));
  }
}
