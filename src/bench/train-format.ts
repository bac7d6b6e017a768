import { alignTable, describeTorch } from './format.js';
import type { TrainBenchResult } from './train-run.js';

const HEADERS = ['model', 'batch', 'crop', 'step ms', 'images/s', 'torch ms', 'torch images/s', 'vs torch', 'data wait ms'] as const;

/** The rows as an aligned text table (model left-aligned, numbers right-aligned) and a footer. */
export function formatTrainTable(r: TrainBenchResult): string {
  const cells = r.rows.map((row) => [
    row.model,
    String(row.batch),
    `${row.crop}x${row.crop}`,
    row.step_ms.toFixed(1),
    row.images_per_s.toFixed(2),
    row.torch_step_ms === null ? '-' : row.torch_step_ms.toFixed(1),
    row.torch_images_per_s === null ? '-' : row.torch_images_per_s.toFixed(2),
    row.ratio === null ? '-' : `${row.ratio.toFixed(2)}x`,
    row.data_wait_ms === null ? '-' : row.data_wait_ms.toFixed(1),
  ]);
  return [...alignTable(HEADERS, cells), '', trainFooter(r)].join('\n') + '\n';
}

/** Threads, PyTorch, and one line per model on how long the step waited on the data loader. */
export function trainFooter(r: TrainBenchResult): string {
  const torch = describeTorch(r.torch);
  const lines = [
    `threads: ${r.threads}; median of ${r.runs} step${r.runs === 1 ? '' : 's'} after ${r.warmup} warm-up${r.warmup === 1 ? '' : 's'}${r.torch.used ? ', onnxruntime and PyTorch in turn' : ''}; ${torch}`,
    'one step: encoder targets (content at the cut, AdaIN, style statistics relu1_1..cut) + forward/backward + Adam, synthetic inputs',
  ];
  if (r.roundRatios.length) {
    lines.push(`vs torch per round (PyTorch ms / ours, one after the other): ${r.roundRatios.map((x) => `${x.model} ${x.min.toFixed(2)}x..${x.max.toFixed(2)}x`).join('; ')}`);
  }
  const d = r.data;
  if (!d.used) {
    lines.push(`data path: ${d.why}`);
  } else {
    lines.push(`data path: ${d.used.contents} content / ${d.used.styles} style images, shorter side ${d.used.loadSize}, random crop, ` +
      `decoded in libvips ${d.used.depth} batches ahead of the step (TrainingBatches)`);
    for (const x of d.details) {
      const row = r.rows.find((row) => row.model === x.model);
      const pct = x.totalStepMs > 0 ? (100 * x.waitMs) / x.totalStepMs : 0;
      lines.push(`data (${x.model}): waited ${x.waitMs.toFixed(1)} ms over ${x.steps} step${x.steps === 1 ? '' : 's'} after the first ` +
        `(${pct.toFixed(2)}% of ${x.totalStepMs.toFixed(0)} ms of steps; longest wait ${x.maxWaitMs.toFixed(1)} ms, ` +
        `${x.stalls} stall${x.stalls === 1 ? '' : 's'}; first batch ${x.firstWaitMs.toFixed(0)} ms); ` +
        `median step ${row?.data_step_ms?.toFixed(1) ?? '-'} ms with the loader running`);
    }
  }
  return lines.join('\n');
}

export function formatTrainJson(r: TrainBenchResult): string {
  return `${JSON.stringify(r.rows, null, 2)}\n`;
}
