import { refuseOverwritingInputs } from './output-paths.js';
import { Command, Option } from 'commander';
import { DEFAULT_MODEL } from '../models/registry.js';
import { defaultThreads } from '../runtime/session.js';
import { DEFAULT_CALIBRATION_CONTENTS, DEFAULT_CALIBRATION_SIZE, DEFAULT_CALIBRATION_STYLES, DEFAULT_DECODER_METHOD, DEFAULT_EQUALIZATION_ALPHA, DEFAULT_METHOD, DEFAULT_PERCENTILE, type RangeMethod } from '../quant/calibrate.js';
import { calibrateModel, DEFAULT_CALIBRATION_CONTENT, DEFAULT_CALIBRATION_STYLE } from '../quant/calibrate-model.js';
import { parseInteger, parseNumber } from './options.js';

interface CalibrateFlags {
  model: string;
  modelsDir?: string;
  encoder?: string;
  decoder?: string;
  content: string;
  style: string;
  contents: number;
  styles: number;
  size: number;
  percentile: number;
  method?: RangeMethod;
  decoderMethod?: RangeMethod;
  float?: string;
  alpha: number;
  output?: string;
  threads: number;
  download: boolean;
  quiet?: boolean;
}

const HELP = `
Runs the float encoder and decoder on --contents training photos and --styles style images
(each style with one of the photos, through AdaIN) and records the range of every tensor the
int8 graphs quantise. The ranges are written as <decoder>.calibration.json beside the decoder
(models/cd16x-r41.calibration.json for the bundled one), or, when that folder is not writable,
into the cache (<cache>/calibration/<decoder sha256>.json); --output FILE writes elsewhere. The file
names the sha256 of both weight files: it is ignored for any other weights, so recalibrate after
retraining. Then: adain stylize --precision int8 (or auto).
`;

/** --float's list split by network: decoder convs are named dec*, encoder ones conv* (the names are checked against the model later). */
function splitFloat(list: string): { encoder: string[]; decoder: string[] } {
  const names = list.trim() === 'none' ? [] : list.split(',').map((x) => x.trim()).filter(Boolean);
  return { encoder: names.filter((n) => !n.startsWith('dec')), decoder: names.filter((n) => n.startsWith('dec')) };
}

export function calibrateCommand(): Command {
  return new Command('calibrate')
    .description('Measure activation ranges for int8 inference (stylize --precision int8|auto)')
    .option('-m, --model <name>', 'model from `adain models`', DEFAULT_MODEL)
    .option('--models-dir <dir>', 'folder with weight files (also $ADAIN_MODELS_DIR)')
    .option('--encoder <file>', 'encoder weights file, instead of the model\'s')
    .option('--decoder <file>', 'decoder weights file (.pth or .safetensors), instead of the model\'s')
    .option('--content <dir>', 'folder of content photos (training images, not test ones)', DEFAULT_CALIBRATION_CONTENT)
    .option('--style <dir>', 'folder of style images', DEFAULT_CALIBRATION_STYLE)
    .option('--contents <n>', 'content photos used, spread over the folder', parseInteger('an image count', 1, 10000), DEFAULT_CALIBRATION_CONTENTS)
    .option('--styles <n>', 'style images used', parseInteger('an image count', 1, 10000), DEFAULT_CALIBRATION_STYLES)
    .option('--size <n>', 'images are resized to n x n', parseInteger('a size in pixels', 32, 2048), DEFAULT_CALIBRATION_SIZE)
    .option('--percentile <p>', 'the percentile ranges clip at (both reductions are stored)', parseNumber('a percentile', 90, 100), DEFAULT_PERCENTILE)
    .addOption(new Option('--method <m>', `which ranges the int8 graphs use (default: ${DEFAULT_METHOD} for the encoder, ${DEFAULT_DECODER_METHOD} for the decoder)`).choices(['percentile', 'minmax', 'mse']))
    .addOption(new Option('--decoder-method <m>', 'the decoder\'s ranges, when they should differ from --method').choices(['percentile', 'minmax', 'mse']))
    .option('--float <convs>', 'conv layers kept in float, comma-separated (e.g. conv1_1,dec1_1), or none (default: the first and last encoder convs, the first and last decoder convs and narrow full-resolution decoder convs; styles are always encoded in float)')
    .option('--alpha <a>', 'channel equalisation: 0 = none, 1 = all of a channel\'s range moved onto the next conv\'s weights', parseNumber('a number', 0, 1), DEFAULT_EQUALIZATION_ALPHA)
    .option('-o, --output <file>', 'write the calibration here instead')
    .option('-t, --threads <n>', 'CPU threads', parseInteger('a thread count'), defaultThreads())
    .option('--no-download', 'never download missing weights')
    .option('-q, --quiet', 'print nothing but errors')
    .addHelpText('after', HELP)
    .action(async (o: CalibrateFlags) => {
      const started = performance.now();
      const note = o.quiet ? undefined : (line: string) => process.stderr.write(`calibrate: ${line}\n`);
      if (o.output) {
        const inputs = [['--encoder', o.encoder], ['--decoder', o.decoder]].filter((x): x is [string, string] => x[1] !== undefined).map(([flag, file]) => ({ flag, file }));
        await refuseOverwritingInputs(o.output, inputs);
      }
      const { file, calibration } = await calibrateModel(o.model, {
        modelsDir: o.modelsDir, encoder: o.encoder, decoder: o.decoder, download: o.download, threads: o.threads,
        contentDir: o.content, styleDir: o.style, contents: o.contents, styles: o.styles, size: o.size,
        percentile: o.percentile, method: o.method, decoderMethod: o.decoderMethod, float: o.float === undefined ? undefined : splitFloat(o.float), alpha: o.alpha, output: o.output, onNote: note,
      });
      note?.(`wrote ${file} (${calibration.pairs} pairs at ${calibration.size}x${calibration.size}, ${calibration.method}/${calibration.decoderMethod ?? calibration.method}) in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    });
}
