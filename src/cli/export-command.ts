import { refuseOverwritingInputs } from './output-paths.js';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { UserError } from '../errors.js';
import { quoteName } from '../image/io.js';
import { DEFAULT_EXPORT_BENCH_SIZES, formatExportBenchJson, formatExportBenchTable, exportBenchFooter, runExportBench, type Precision } from '../bench/export.js';
import { defaultExportMemoryLimit, exportStylizer, writeFileAtomic, type ExportResult, type StyleMode } from '../export/export.js';
import { PIXEL_FORMATS, type PixelFormat } from '../export/formats.js';
import { DEFAULT_OPSET, MAX_OPSET, MIN_OPSET } from '../export/ops.js';
import { DEFAULT_MODEL } from '../models/registry.js';
import { defaultThreads } from '../runtime/session.js';
import { DEFAULT_STYLE_SIZE } from '../stylize/style-model.js';
import { collectNames, parseInteger, parseList, parseNumber, parseSizes, withParentFlags } from './options.js';
import { lazyProgress } from './progress.js';

interface ExportFlags {
  output: string;
  model: string;
  modelsDir?: string;
  encoder?: string;
  decoder?: string;
  style?: string;
  styleStats?: boolean;
  styleInput?: boolean;
  styleInputSize?: [number, number];
  styleSize: number;
  statsOutput?: string;
  size: [number, number];
  opset: number;
  alpha: number;
  inputFormat: PixelFormat;
  outputFormat: PixelFormat;
  fp16?: boolean;
  validateWith?: string[];
  threads: number;
  memoryBudget: number;
  download: boolean;
  json?: boolean;
  quiet?: boolean;
}

const HELP = `
The model is one static ONNX graph: fixed input size, constant shapes, and only the ops
Conv, Pad (reflect), Relu, MaxPool, Resize (nearest, constant scales), ReduceMean, Sub, Mul,
Add, Div, Sqrt, Clip and Cast (no InstanceNormalization/MVN, no shape computations).

Style, one of:
  --style FILE                 its AdaIN statistics are baked in; one input, the content
  --style-stats                inputs style_mean and style_std, float32 [1,C,1,1]; with
                               --style, that style's statistics are written as JSON
                               (--stats-output, default <output>.style.json)
  --style-input                a second input, style, a style image of --style-input-size

Pixel formats (--input-format, --output-format):
  rgb-float      float32 [1,3,H,W], RGB planes, values in [0,1] (outputs clipped to [0,1])
  bgr-u8-planar  uint8 [1,3,H,W], BGR planes, 0..255: what depthai's ColorCamera gives
                 with setInterleaved(False) and BGR colour order

Before anything is written the model is validated: the op allow-list; onnxruntime on
real photos (examples/chelsea.jpg and astronaut.jpg, or --validate-with) against the
in-process model; and, where Python's onnx package is installed (Debian: python3-onnx;
$ADAIN_ONNX_PYTHON picks the interpreter), onnx.checker with full_check and strict shape
inference. --fp16 exports are also compared with the float32 export (PSNR).
See docs/OAK-1.md for the way from the ONNX file to an OAK-1 camera.
`;

export function exportCommand(): Command {
  return new Command('export')
    .description('Export a model as a static ONNX file for edge runtimes (OpenVINO / OAK-1, onnxruntime)')
    .requiredOption('-o, --output <file>', 'the .onnx file to write')
    .option('-m, --model <name>', 'model from `adain models`', DEFAULT_MODEL)
    .option('--models-dir <dir>', 'folder with weight files (also $ADAIN_MODELS_DIR)')
    .option('--encoder <file>', 'encoder weights file, instead of the model\'s')
    .option('--decoder <file>', 'decoder weights file (.pth or .safetensors), instead of the model\'s')
    .option('-s, --style <file>', 'style image whose statistics are baked in')
    .option('--style-stats', 'take the style statistics as inputs (style_mean, style_std) instead of baking them in')
    .option('--style-input', 'take a style image as a second input (style) instead of baking its statistics in')
    .option('--style-input-size <WxH>', 'size of the style input with --style-input (default: --size)', parseSize('--style-input-size'))
    .option('--style-size <n>', 'scale the style image so its shorter side is n pixels before taking its statistics', parseInteger('a size in pixels'), DEFAULT_STYLE_SIZE)
    .option('--stats-output <file>', 'with --style-stats and --style: where to write the style statistics (JSON)')
    .option('--size <WxH>', 'the fixed content size, e.g. 256x256 (multiples of 8 for relu4_1 models)', parseSize('--size'), [256, 256] as [number, number])
    .option('--opset <n>', `ONNX opset, ${MIN_OPSET}..${MAX_OPSET}`, parseInteger('an opset version', MIN_OPSET, MAX_OPSET), DEFAULT_OPSET)
    .option('-a, --alpha <a>', 'content/style trade-off baked in: 0 = content, 1 = full style', parseNumber('a number', 0, 1), 1)
    .addOption(new Option('--input-format <fmt>', 'pixel format of the content (and style) input').choices(PIXEL_FORMATS).default('rgb-float'))
    .addOption(new Option('--output-format <fmt>', 'pixel format of the output').choices(PIXEL_FORMATS).default('rgb-float'))
    .option('--fp16', 'float16 weights and activations (the Myriad X runs FP16); the inputs and outputs keep their types')
    .option('--validate-with <images>', 'comma-separated content images to validate on (default: two bundled photos)', parseList)
    .option('-t, --threads <n>', 'CPU threads', parseInteger('a thread count'), defaultThreads())
    .addOption(new Option('--memory-budget <GB>', 'refuse sizes whose validation would need more memory than this (it runs the whole image at once)')
      .argParser((v) => parseNumber('gigabytes', 0.5)(v) * 1024 ** 3)
      .default(defaultExportMemoryLimit(), `3/4 of this machine's memory, ${(defaultExportMemoryLimit() / 1024 ** 3).toFixed(1)}`))
    .option('--no-download', 'never download missing weights')
    .option('--json', 'print the export report as JSON on stdout')
    .option('-q, --quiet', 'print nothing but errors')
    .addHelpText('after', HELP)
    .action(async (o: ExportFlags) => {
      const mode = styleMode(o);
      if (path.extname(o.output).toLowerCase() !== '.onnx') throw new UserError(`output ${quoteName(o.output)} must end in .onnx`);
      const dir = path.dirname(path.resolve(o.output));
      if (!(await fs.stat(dir).catch(() => undefined))?.isDirectory()) throw new UserError(`cannot write ${quoteName(o.output)}: folder ${quoteName(dir)} does not exist; create it first`);
      if (o.statsOutput && !(mode === 'stats' && o.style)) throw new UserError('--stats-output needs --style-stats and --style FILE (the statistics of that style are written)');
      const inputs = [['--style', o.style], ['--encoder', o.encoder], ['--decoder', o.decoder], ...(o.validateWith ?? []).map((f) => ['--validate-with', f])]
        .filter((x): x is [string, string] => x[1] !== undefined).map(([flag, file]) => ({ flag, file }));
      await refuseOverwritingInputs(o.output, inputs);
      if (o.statsOutput) await refuseOverwritingInputs(o.statsOutput, [...inputs, { flag: '--output', file: o.output }], '--stats-output');
      const note = o.quiet || o.json ? () => {} : (line: string) => process.stderr.write(`export: ${line}\n`);
      const dl = lazyProgress('Downloading weights', { unit: 'bytes' });
      let result: ExportResult;
      try {
        result = await exportStylizer({
          model: o.model, modelsDir: o.modelsDir, encoder: o.encoder, decoder: o.decoder, download: o.download, onProgress: dl.onProgress,
          width: o.size[0], height: o.size[1], opset: o.opset, alpha: o.alpha, inputFormat: o.inputFormat, outputFormat: o.outputFormat,
          style: o.style, styleMode: mode, styleSize: o.styleSize, styleWidth: o.styleInputSize?.[0], styleHeight: o.styleInputSize?.[1],
          fp16: o.fp16, validationImages: o.validateWith, threads: o.threads, onNote: note, memoryBudget: o.memoryBudget,
        });
      } finally {
        dl.stop();
      }
      await writeFileAtomic(o.output, result.bytes);
      let statsFile: string | undefined;
      if (mode === 'stats' && result.styleStats) {
        statsFile = o.statsOutput ?? o.output.replace(/\.onnx$/i, '.style.json');
        await writeFileAtomic(statsFile, `${JSON.stringify(result.styleStats)}\n`);
      }
      if (result.checker.status === 'skipped' && !o.quiet) {
        process.stderr.write(`export: warning: the ONNX checker step was skipped (${result.checker.why}); install python3-onnx to run it\n`);
      }
      if (o.json) process.stdout.write(`${JSON.stringify(reportJson(o.output, result, statsFile), null, 2)}\n`);
      else if (!o.quiet) process.stderr.write(report(o.output, result, statsFile));
    });
}

function styleMode(o: ExportFlags): StyleMode {
  if (o.styleStats && o.styleInput) throw new UserError('choose one of --style-stats and --style-input');
  if (o.styleInputSize && !o.styleInput) throw new UserError('--style-input-size needs --style-input');
  if (o.styleStats) return 'stats';
  if (o.styleInput) return 'image';
  if (!o.style) throw new UserError('give a style to bake in (--style FILE), or take the style at run time with --style-stats or --style-input');
  return 'baked';
}

function parseSize(flag: string) {
  return (v: string): [number, number] => {
    const m = /^\s*(\d+)\s*(?:[xX×]\s*(\d+))?\s*$/.exec(v);
    if (!m) throw new InvalidArgumentError(`expected WIDTHxHEIGHT such as 256x256, got '${v}'`);
    const w = Number(m[1]), h = Number(m[2] ?? m[1]);
    if (!(w >= 1 && h >= 1 && w <= 16384 && h <= 16384)) throw new InvalidArgumentError(`${flag} sides must be 1..16384 pixels, got '${v}'`);
    return [w, h];
  };
}

function shape(v: { name: string; dims: number[]; type: string }): string {
  return `${v.name} ${v.type}[${v.dims.join(',')}]`;
}

function report(file: string, r: ExportResult, statsFile?: string): string {
  const s = r.spec;
  const lines = [
    `Wrote ${file} (${(r.bytes.length / 1e6).toFixed(1)} MB): ${s.metadata?.['adain.model'] ?? ''} ${s.width}x${s.height}, opset ${r.summary.opset}, ${r.fp16 ? 'float16' : 'float32'}, ` +
      `style ${s.style === 'baked' ? 'baked in' : s.style === 'stats' ? 'statistics as inputs' : 'image as input'}, alpha ${s.alpha}`,
    `  inputs:  ${r.summary.inputs.map(shape).join(', ')} (${s.input})`,
    `  output:  ${r.summary.outputs.map(shape).join(', ')} (${s.output})`,
    `  ops:     ${[...r.summary.ops].map(([k, n]) => `${k} x${n}`).join(', ')}`,
    `  onnxruntime vs in-process (${r.tolerance}):`,
    ...r.images.map((c) => `    ${c.name}: max |diff| ${c.maxAbsDiff.toExponential(2)}, PSNR ${fmtDb(c.psnr)}` +
      (c.psnrVsFp32 !== undefined ? `; vs the float32 export: PSNR ${fmtDb(c.psnrVsFp32)}, with float16 activations ${fmtDb(c.psnrEmulatedVsFp32!)}` : '')),
    `  ONNX checker + strict shape inference: ${r.checker.status === 'passed' ? `passed (onnx ${r.checker.onnxVersion}, ${r.checker.python}; ${r.checker.values} values, all static)` : r.checker.status === 'skipped' ? `skipped (${r.checker.why})` : 'failed'}`,
  ];
  if (statsFile) lines.push(`  style statistics: ${statsFile} (feed mean and std as style_mean, style_std [1,${r.styleStats!.channels},1,1])`);
  return `${lines.join('\n')}\n`;
}

function fmtDb(v: number): string {
  return Number.isFinite(v) ? `${v.toFixed(1)} dB` : 'identical';
}

function reportJson(file: string, r: ExportResult, statsFile?: string) {
  const { metadata: _m, ...spec } = r.spec;
  return {
    file, bytes: r.bytes.length, precision: r.fp16 ? 'float16' : 'float32', spec,
    inputs: r.summary.inputs, outputs: r.summary.outputs, ops: Object.fromEntries(r.summary.ops),
    validation: { tolerance: r.tolerance, images: r.images.map((c) => ({ ...c, psnr: finite(c.psnr), psnrVsFp32: finite(c.psnrVsFp32), psnrEmulatedVsFp32: finite(c.psnrEmulatedVsFp32) })) },
    checker: r.checker, statsFile: statsFile ?? null,
  };
}

function finite(v: number | undefined): number | null | undefined {
  return v === undefined ? undefined : Number.isFinite(v) ? v : null;
}

/** Where `bench export` writes; tests pass their own to read the output. */
export interface ExportBenchOutput {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

interface ExportBenchFlags {
  modelsDir?: string;
  model: string[];
  sizes: number[];
  precision: Precision[];
  inputFormat: PixelFormat;
  outputFormat: PixelFormat;
  opset: number;
  runs: number;
  threads: number;
  json?: boolean;
}

const BENCH_HELP = `
Each row is the exported model (as \`adain export\` writes it, with a baked style) at one
square size and precision: the median ms of one frame in onnxruntime on the CPU, frames per
second, the conv GFLOP of one frame (to scale to other hardware), and the file size. float16 models run in onnxruntime's CPU provider through casts
it inserts, so their speed here says nothing about the Myriad X; the file is half the size.

--json prints an array of rows {model, size, precision, ms, fps, gflop, file_mb}; the footer goes
to stderr.
`;

/** `adain bench export`; add it to the bench command with .addCommand(exportBenchCommand(io)). */
export function exportBenchCommand(io: ExportBenchOutput = { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) }): Command {
  return new Command('export')
    .description('Benchmark the exported ONNX model (ms per frame in onnxruntime), float32 and float16')
    .option('--models-dir <dir>', 'folder with weight files (also $ADAIN_MODELS_DIR)')
    .addOption(new Option('--model <names>', 'models to benchmark, repeatable or comma-separated').argParser(collectNames).default([], DEFAULT_MODEL))
    .addOption(new Option('--sizes <list>', 'comma-separated square sides in pixels').argParser(parseSizes).default(DEFAULT_EXPORT_BENCH_SIZES, DEFAULT_EXPORT_BENCH_SIZES.join(',')))
    .addOption(new Option('--precision <list>', 'float32, float16 or both').argParser(parsePrecisions).default(['float32', 'float16'], 'float32,float16'))
    .addOption(new Option('--input-format <fmt>', 'pixel format of the input').choices(PIXEL_FORMATS).default('rgb-float'))
    .addOption(new Option('--output-format <fmt>', 'pixel format of the output').choices(PIXEL_FORMATS).default('rgb-float'))
    .option('--opset <n>', `ONNX opset, ${MIN_OPSET}..${MAX_OPSET}`, parseInteger('an opset version', MIN_OPSET, MAX_OPSET), DEFAULT_OPSET)
    .option('--runs <n>', 'timed runs after one warm-up; the median is reported', parseInteger('a run count', 1, 1000), 5)
    .addOption(new Option('--threads <n>', 'intra-op threads').argParser(parseInteger('a thread count', 1, 1024)).default(defaultThreads(), `all cores: ${defaultThreads()}`))
    .option('--json', 'print a JSON array of rows instead of the table')
    .addHelpText('after', BENCH_HELP)
    .action(async (_flags: ExportBenchFlags, cmd: Command) => {
      const o = withParentFlags(cmd) as unknown as ExportBenchFlags;
      const models = o.model.length ? [...new Set(o.model)] : [DEFAULT_MODEL];
      const rows = [];
      let last;
      for (const model of models) {
        last = await runExportBench({
          modelsDir: o.modelsDir, model, sizes: o.sizes, precisions: o.precision, inputFormat: o.inputFormat, outputFormat: o.outputFormat,
          opset: o.opset, runs: o.runs, threads: o.threads, onNote: (line) => io.stderr(`bench export: ${line}\n`),
        });
        rows.push(...last.rows);
      }
      const result = { ...last!, rows };
      if (o.json) {
        io.stdout(formatExportBenchJson(result));
        io.stderr(`${exportBenchFooter(result)}\n`);
      } else {
        io.stdout(formatExportBenchTable(result));
      }
    });
}


function parsePrecisions(v: string): Precision[] {
  const list = parseList(v);
  for (const p of list) if (p !== 'float32' && p !== 'float16') throw new InvalidArgumentError(`expected float32 and/or float16, got '${p}'`);
  if (!list.length) throw new InvalidArgumentError(`expected float32 and/or float16, got '${v}'`);
  return list as Precision[];
}
