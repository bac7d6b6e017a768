import { exportBenchCommand } from './export-command.js';
import { benchVideoCommand } from './bench-video-command.js';
import { Command, Option } from 'commander';
import { formatJson, formatTable, footer } from '../bench/format.js';
import { runBench } from '../bench/run.js';
import { formatTrainJson, formatTrainTable, trainFooter } from '../bench/train-format.js';
import { DEFAULT_DATA_CONTENT, DEFAULT_DATA_STYLE, runTrainBench, TRAIN_BENCH_MODELS, TRAIN_BENCH_WARMUP } from '../bench/train-run.js';
import { defaultThreads } from '../runtime/session.js';
import { collectNames, parseInteger, parsePrecisionList, parseSizes, withParentFlags } from './options.js';
import type { Precision } from '../stylize/network.js';


interface BenchFlags {
  modelsDir?: string;
  model: string[];
  sizes: number[];
  runs: number;
  threads: number;
  json?: boolean;
  torch: boolean;
  precision: Precision[];
}

const HELP = `
Each row is one model at one size: the median ms of one stylisation of a square content
with a style of the same size (encode content + encode style + AdaIN + decode), the conv
GFLOP/s that achieves (FLOPs counted from the layer list and weight shapes: the encoder
twice, then the decoder), of_peak = that over the GFLOP/s onnxruntime reaches on one
3x3 conv 128->128 at 128x128 (zero padding) measured alongside, and the same architecture in PyTorch (random weights, same
threads) with the speed-up torch_ms / ms. onnxruntime, PyTorch and the reference conv run
in turn, run by run, so that machine noise hits all three alike.

A model is benchmarked when its files are present (see \`adain models\`); the others are
skipped with a note on stderr. PyTorch is the first of $ADAIN_TORCH_PYTHON,
/usr/bin/python3, python3 that can import torch (it runs scripts/bench_torch.py).

--precision fp32,int8 adds an int8 row (the QDQ graphs of stylize --precision int8) for each
model that has a calibration (\`adain calibrate\`), timed in turn with the fp32 one; the footer
names the CPU and whether it has AVX-512 VNNI / AVX-VNNI, which int8 speed depends on.

"frame ms" is one frame of a stream (the webcam, a video): the style's statistics computed
beforehand, so encode content + AdaIN + decode; PyTorch's the same, beside it.

--json prints an array of rows {model, precision, size, ms, frame_ms, gflops, torch_ms, ratio,
torch_frame_ms, frame_ratio, of_peak} (the torch fields are null without PyTorch; PyTorch is
float32 in every row). Every row is a model: the reference conv
and the thread count go to stderr instead, as the table's footer does.
`;

/** Where the command writes; tests pass their own to read the output. */
export interface BenchOutput {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const PROCESS_OUTPUT: BenchOutput = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

export function benchCommand(io: BenchOutput = PROCESS_OUTPUT): Command {
  return new Command('bench')
    .description('Benchmark stylisation speed per model and size, against PyTorch when installed')
    // `bench train`: bench's own options only before the subcommand name, so both can share flag names.
    .enablePositionalOptions()
    // The subcommand gets bench's exit and output settings (main() sets them after building bench).
    .hook('preSubcommand', (self, sub) => { sub.copyInheritedSettings(self); })
    .addCommand(benchTrainCommand(io))
    .addCommand(exportBenchCommand(io))
    .addCommand(benchVideoCommand(io))
    .option('--models-dir <dir>', 'folder with weight files (also $ADAIN_MODELS_DIR)')
    .addOption(new Option('--model <names>', 'models to benchmark, repeatable or comma-separated').argParser(collectNames).default([], 'every model whose files are present'))
    .addOption(new Option('--sizes <list>', 'comma-separated image sides in pixels').argParser(parseSizes).default([256, 512], '256,512'))
    .option('--runs <n>', 'timed runs after one warm-up; the median is reported', parseInteger('a run count', 1, 1000), 5)
    .addOption(new Option('--threads <n>', 'intra-op threads for onnxruntime and PyTorch').argParser(parseInteger('a thread count', 1, 1024)).default(defaultThreads(), `all cores: ${defaultThreads()}`))
    .option('--json', 'print a JSON array of rows instead of the table')
    .option('--no-torch', 'do not compare with PyTorch')
    .addOption(new Option('--precision <list>', 'fp32, int8 or fp32,int8 (int8 needs a calibration)').argParser(parsePrecisionList).default(['fp32'], 'fp32'))
    .addHelpText('after', HELP)
    .action(async (o: BenchFlags) => {
      const result = await runBench({
        modelsDir: o.modelsDir, models: o.model, sizes: o.sizes, runs: o.runs, threads: o.threads, torch: o.torch, precisions: o.precision,
        onNote: (line) => io.stderr(`bench: ${line}\n`),
      });
      if (o.json) {
        io.stdout(formatJson(result));
        io.stderr(`${footer(result)}\n`);
      } else {
        io.stdout(formatTable(result));
      }
    });
}

interface TrainBenchFlags {
  modelsDir?: string;
  model: string[];
  batch: number;
  crop: number;
  runs: number;
  warmup: number;
  threads: number;
  json?: boolean;
  torch: boolean;
  data: boolean;
  dataContent?: string;
  dataStyle?: string;
  loadSize: number;
  dataSteps: number;
}

const TRAIN_HELP = `
Each row is one model: the median ms of one decoder training step as \`adain train\` takes it
(encoder targets: content features at the cut, AdaIN, style statistics at relu1_1..cut; the
forward/backward graph; the Adam update) on a batch of random crops, images/s = batch * 1000 /
that, and the same step in PyTorch on the CPU with the same threads (the same architecture,
encoder frozen, decoder trainable, the same losses, torch.optim.Adam; random weights) with the
speed-up torch ms / ms. onnxruntime and PyTorch run in turn, step by step. The decoder starts
from random (He) weights of the real layout; the encoder is the model's real one.

Then, when the data folders exist, the same step runs --data-steps + 1 times on real images
fed by the trainer's loader (decoding, resizing and cropping in libvips, prefetched ahead of
the step): "data wait ms" is the total time the step waited on that queue after the first
batch (the pipeline filling up), and the footer sets it against the step time.

A model is benchmarked when its encoder file is present (see \`adain models\`). PyTorch is the
first of $ADAIN_TORCH_PYTHON, /usr/bin/python3, python3 that can import torch (it runs
scripts/bench_torch_train.py).

--json prints an array of rows {model, batch, crop, images_per_s, torch_images_per_s, ratio,
step_ms, torch_step_ms, data_steps, data_step_ms, data_wait_ms} (PyTorch's and the data
fields are null when not measured); the footer goes to stderr.
`;

function benchTrainCommand(io: BenchOutput): Command {
  return new Command('train')
    .description('Benchmark the training step (images/s) per model, against PyTorch when installed')
    .option('--models-dir <dir>', 'folder with weight files (also $ADAIN_MODELS_DIR)')
    .addOption(new Option('--model <names>', 'models to benchmark, repeatable or comma-separated').argParser(collectNames).default([], TRAIN_BENCH_MODELS.join(',')))
    .option('--batch <n>', 'images per step', parseInteger('a batch size', 1, 1024), 8)
    .option('--crop <px>', 'side of the square training crops', parseInteger('a crop side in pixels', 8, 4096), 256)
    .option('--runs <n>', 'timed steps after the warm-up; the median is reported', parseInteger('a run count', 1, 1000), 5)
    .option('--warmup <n>', 'untimed steps first, each side', parseInteger('a warm-up count', 0, 1000), TRAIN_BENCH_WARMUP)
    .addOption(new Option('--threads <n>', 'intra-op threads for onnxruntime and PyTorch').argParser(parseInteger('a thread count', 1, 1024)).default(defaultThreads(), `all cores: ${defaultThreads()}`))
    .option('--json', 'print a JSON array of rows instead of the table')
    .option('--no-torch', 'do not compare with PyTorch')
    .option('--data-content <dir>', 'content images for the data-path measurement (default: ../shared/data/content/train from the repository root)')
    .option('--data-style <dir>', 'style images for the data-path measurement (default: ../shared/data/style/train)')
    .option('--no-data', 'skip the data-path measurement')
    .option('--load-size <px>', 'data path: shorter side images are resized to before cropping', parseInteger('an image side in pixels', 8, 16384), 512)
    .option('--data-steps <n>', 'data path: steps measured after the first batch', parseInteger('a step count', 1, 10000), 5)
    .addHelpText('after', TRAIN_HELP)
    .action(async (_flags: TrainBenchFlags, cmd: Command) => {
      const o = withParentFlags(cmd) as unknown as TrainBenchFlags;
      const explicit = o.dataContent !== undefined || o.dataStyle !== undefined;
      const result = await runTrainBench({
        modelsDir: o.modelsDir, models: o.model, batch: o.batch, crop: o.crop, runs: o.runs, warmup: o.warmup, threads: o.threads, torch: o.torch,
        data: o.data ? {
          content: o.dataContent ?? DEFAULT_DATA_CONTENT, style: o.dataStyle ?? DEFAULT_DATA_STYLE, explicit,
          loadSize: o.loadSize, steps: o.dataSteps,
        } : null,
        onNote: (line) => io.stderr(`bench train: ${line}\n`),
      });
      if (o.json) {
        io.stdout(formatTrainJson(result));
        io.stderr(`${trainFooter(result)}\n`);
      } else {
        io.stdout(formatTrainTable(result));
      }
    });
}

