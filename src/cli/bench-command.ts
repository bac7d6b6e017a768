import { Command, InvalidArgumentError, Option } from 'commander';
import { formatJson, formatTable, footer } from '../bench/format.js';
import { runBench } from '../bench/run.js';
import { defaultThreads } from '../runtime/session.js';
import { parseInteger, parseList } from './options.js';

interface BenchFlags {
  modelsDir?: string;
  model: string[];
  sizes: number[];
  runs: number;
  threads: number;
  json?: boolean;
  torch: boolean;
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

--json prints an array of rows {model, size, ms, gflops, torch_ms, ratio, of_peak}
(torch_ms and ratio are null without PyTorch). Every row is a model: the reference conv
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
    .option('--models-dir <dir>', 'folder with weight files (also $ADAIN_MODELS_DIR)')
    .addOption(new Option('--model <names>', 'models to benchmark, repeatable or comma-separated').argParser(collectNames).default([], 'every model whose files are present'))
    .addOption(new Option('--sizes <list>', 'comma-separated image sides in pixels').argParser(parseSizes).default([256, 512], '256,512'))
    .option('--runs <n>', 'timed runs after one warm-up; the median is reported', parseInteger('a run count', 1, 1000), 5)
    .addOption(new Option('--threads <n>', 'intra-op threads for onnxruntime and PyTorch').argParser(parseInteger('a thread count', 1, 1024)).default(defaultThreads(), `all cores: ${defaultThreads()}`))
    .option('--json', 'print a JSON array of rows instead of the table')
    .option('--no-torch', 'do not compare with PyTorch')
    .addHelpText('after', HELP)
    .action(async (o: BenchFlags) => {
      const result = await runBench({
        modelsDir: o.modelsDir, models: o.model, sizes: o.sizes, runs: o.runs, threads: o.threads, torch: o.torch,
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

function collectNames(v: string, prev: string[]): string[] {
  return [...prev, ...parseList(v)];
}

function parseSizes(v: string): number[] {
  const sizes = parseList(v).map(parseInteger('an image side in pixels', 8, 16384));
  if (!sizes.length) throw new InvalidArgumentError(`expected comma-separated sizes such as 256,512, got '${v}'`);
  return sizes;
}
