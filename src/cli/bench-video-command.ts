import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { cpuInfo, describeCpu } from '../bench/cpu.js';
import { runVideoBench, type VideoBenchResult } from '../bench/video.js';
import { UserError } from '../errors.js';
import { defaultThreads } from '../runtime/session.js';
import { DEFAULT_TEMPORAL_BLEND } from '../video/temporal.js';
import type { Precision } from '../stylize/network.js';
import { DEFAULT_X264_PRESET, X264_PRESETS, type X264Preset } from '../video/encode.js';
import { parseInteger, parseList, parsePrecisionList, withParentFlags } from './options.js';

interface VideoBenchFlags {
  modelsDir?: string;
  /** A list when `bench` itself took the flag (its --model is repeatable). */
  model: string | string[];
  size: string;
  frames: number;
  threads: number;
  format: 'mp4' | 'webm';
  precision: Precision[];
  x264Preset: X264Preset[];
  runs: number;
  json?: boolean;
}

function parsePresetList(v: string): X264Preset[] {
  const list = parseList(v);
  const bad = list.filter((p) => !(X264_PRESETS as readonly string[]).includes(p));
  if (bad.length || !list.length) throw new InvalidArgumentError(`x264 presets are ${X264_PRESETS.join(', ')}; got '${v}'`);
  return list as X264Preset[];
}

const EXAMPLES = path.resolve(import.meta.dirname, '../../examples');
const DEFAULT_MODELS = 'cd16x-r41,cd16x-r31';

/** `adain bench video`: whole pipeline vs stylisation alone, frames per second. */
export function benchVideoCommand(io: { stdout: (t: string) => void; stderr: (t: string) => void }): Command {
  return new Command('video')
    .description('Benchmark video stylisation (frames/s): the whole ffmpeg pipeline vs the stylisation alone')
    .option('--models-dir <dir>', 'folder with weight files (also $ADAIN_MODELS_DIR)')
    .option('-m, --model <names>', 'models, comma-separated', DEFAULT_MODELS)
    .option('--size <WxH>', 'frame size of the synthetic clip', '640x360')
    .option('--frames <n>', 'frames of the clip', parseInteger('a frame count', 2, 10000), 48)
    .addOption(new Option('--format <ext>', 'output container').choices(['mp4', 'webm']).default('mp4'))
    .addOption(new Option('--precision <list>', 'fp32, int8 or fp32,int8; int8 rows only for calibrated models').argParser(parsePrecisionList).default(['fp32', 'int8'], 'fp32,int8'))
    .addOption(new Option('--threads <n>', 'onnxruntime threads').argParser(parseInteger('a thread count', 1, 1024)).default(defaultThreads(), `all cores: ${defaultThreads()}`))
    .addOption(new Option('--x264-preset <list>', 'mp4 output: x264 presets to compare, comma-separated (a row each)').argParser(parsePresetList).default([DEFAULT_X264_PRESET], DEFAULT_X264_PRESET))
    .option('--runs <n>', 'rounds per row (stylisation alone, pipeline, frame by frame in turn); medians', parseInteger('a count', 1, 100), 3)
    .option('--json', 'print a JSON array of rows instead of the table')
    .addHelpText('after', `
Each row stylises the same synthetic 48-frame pan: frames already decoded in memory
(stylisation alone), then the whole pipeline from the encoded clip to the encoded output,
whose decode and encode overlap the network, twice: with the default temporal blend and its
cut detector (what adain stylize does) and frame by frame (--temporal-blend 0). The pipeline
times count probing, starting ffmpeg (given --threads threads, as adain stylize does) and the
encoder's flush at the end; "steady" leaves those out (first to last frame handed to the
encoder). pipeline / stylisation says what the video path costs.
An int8 row of a model without a calibration is left out with a note (\`adain calibrate\`).`)
    .action(async (_flags: VideoBenchFlags, cmd: Command) => {
      const o = withParentFlags(cmd) as unknown as VideoBenchFlags;
      const m = /^(\d+)x(\d+)$/.exec(o.size);
      if (!m) throw new UserError(`--size must be WIDTHxHEIGHT, e.g. 640x360, got '${o.size}'`);
      // `bench` parses its own repeatable --model into a list before this command sees it
      const models = Array.isArray(o.model) ? (o.model.length ? o.model : parseList(DEFAULT_MODELS)) : parseList(o.model);
      const rows: VideoBenchResult[] = [];
      for (const model of models) {
        for (const precision of o.precision) {
          for (const x264Preset of o.format === 'mp4' ? o.x264Preset : [undefined]) {
            try {
              rows.push(await runVideoBench({
                model, precision, modelsDir: o.modelsDir, threads: o.threads, width: Number(m[1]), height: Number(m[2]), frames: o.frames,
                photo: path.join(EXAMPLES, 'chelsea.jpg'), style: path.join(EXAMPLES, 'scream.jpg'), output: o.format, x264Preset, runs: o.runs,
              }));
            } catch (err) {
              // only a missing calibration is a note; anything else is the benchmark failing
              if (precision !== 'int8' || !(err instanceof UserError) || !/calibrat/.test(err.message)) throw err;
              io.stderr(`adain: note: no int8 row for ${model}: it has no calibration (adain calibrate --model ${model})\n`);
              break;
            }
          }
        }
      }
      if (o.json) {
        io.stdout(`${JSON.stringify(rows)}\n`);
        return;
      }
      io.stdout(`${describeCpu(await cpuInfo())}\n`);
      io.stdout('| model | precision | size | frames | x264 preset | pipeline fps | steady fps | frame-by-frame pipeline fps | stylisation fps | pipeline / stylisation | frame by frame / stylisation |\n|---|---|---|---|---|---|---|---|---|---|---|\n');
      const pct = (a: number, b: number) => `${(a / b * 100).toFixed(0)}%`;
      for (const r of rows) {
        io.stdout(`| ${r.model} | ${r.precision} | ${r.width}x${r.height} | ${r.frames} | ${r.x264Preset ?? '-'} | ${r.pipelineFps.toFixed(2)} | ${r.steadyFps.toFixed(2)} | ${r.frameByFrameFps.toFixed(2)} | ${r.stylizeFps.toFixed(2)} | ${pct(r.pipelineFps, r.stylizeFps)} | ${pct(r.frameByFrameFps, r.stylizeFps)} |\n`);
      }
      io.stdout(`(medians of ${o.runs} rounds; ${o.threads} onnxruntime threads, ffmpeg -threads ${o.threads}; ${o.format} output; pipeline: default --temporal-blend ${DEFAULT_TEMPORAL_BLEND} with its cut detector, from the call to the renamed file; steady: first to last frame encoded; frame by frame: --temporal-blend 0)\n`);
    });
}
