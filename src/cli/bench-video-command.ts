import path from 'node:path';
import { Command, Option } from 'commander';
import { runVideoBench } from '../bench/video.js';
import { UserError } from '../errors.js';
import { DEFAULT_MODEL } from '../models/registry.js';
import { defaultThreads } from '../runtime/session.js';
import { parseInteger, withParentFlags } from './options.js';

interface VideoBenchFlags {
  modelsDir?: string;
  /** A list when `bench` itself took the flag (its --model is repeatable). */
  model: string | string[];
  size: string;
  frames: number;
  threads: number;
  format: 'mp4' | 'webm';
  json?: boolean;
}

const EXAMPLES = path.resolve(import.meta.dirname, '../../examples');

/** `adain bench video`: whole pipeline vs stylisation alone, frames per second. */
export function benchVideoCommand(io: { stdout: (t: string) => void }): Command {
  return new Command('video')
    .description('Benchmark video stylisation (frames/s): the whole ffmpeg pipeline vs the stylisation alone')
    .option('--models-dir <dir>', 'folder with weight files (also $ADAIN_MODELS_DIR)')
    .option('-m, --model <name>', 'model', DEFAULT_MODEL)
    .option('--size <WxH>', 'frame size of the synthetic clip', '640x360')
    .option('--frames <n>', 'frames of the clip', parseInteger('a frame count', 2, 10000), 48)
    .addOption(new Option('--format <ext>', 'output container').choices(['mp4', 'webm']).default('mp4'))
    .addOption(new Option('--threads <n>', 'onnxruntime threads').argParser(parseInteger('a thread count', 1, 1024)).default(defaultThreads(), `all cores: ${defaultThreads()}`))
    .option('--json', 'print a JSON object instead of the table')
    .action(async (_flags: VideoBenchFlags, cmd: Command) => {
      const o = withParentFlags(cmd) as unknown as VideoBenchFlags;
      const m = /^(\d+)x(\d+)$/.exec(o.size);
      if (!m) throw new UserError(`--size must be WIDTHxHEIGHT, e.g. 640x360, got '${o.size}'`);
      const r = await runVideoBench({
        model: Array.isArray(o.model) ? o.model[0] ?? DEFAULT_MODEL : o.model, modelsDir: o.modelsDir, threads: o.threads, width: Number(m[1]), height: Number(m[2]), frames: o.frames,
        photo: path.join(EXAMPLES, 'chelsea.jpg'), style: path.join(EXAMPLES, 'scream.jpg'), output: o.format,
      });
      if (o.json) {
        io.stdout(`${JSON.stringify(r)}\n`);
        return;
      }
      io.stdout(`| model | size | frames | pipeline fps | stylisation fps | pipeline / stylisation |\n|---|---|---|---|---|---|\n`);
      io.stdout(`| ${r.model} | ${r.width}x${r.height} | ${r.frames} | ${r.pipelineFps.toFixed(2)} | ${r.stylizeFps.toFixed(2)} | ${(r.pipelineFps / r.stylizeFps * 100).toFixed(0)}% |\n`);
      io.stdout(`(${o.threads} onnxruntime threads; ${o.format} output; the pipeline overlaps ffmpeg decoding and encoding with the network)\n`);
    });
}
