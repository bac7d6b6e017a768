import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { DEFAULT_MODEL } from '../models/registry.js';
import { defaultThreads } from '../runtime/session.js';
import { loadCheckpoint } from '../train/checkpoint.js';
import { STYLE_BALANCES } from '../train/data.js';
import { BEST_BY } from '../train/judge-validation.js';
import { FEATURE_TRANSFORMS } from '../stylize/model.js';
import { DEFAULT_VAL_PAIRS, train, type StepValues, type TrainConfig } from '../train/trainer.js';
import { ExitStatus, UserError } from '../errors.js';
import { parseInteger, parseNumber } from './options.js';

type Flags = Omit<TrainConfig, 'out' | 'content'> & { content?: string; out?: string; resume?: string; force?: boolean; quiet?: boolean };

export function trainCommand(): Command {
  return new Command('train')
    .description('Train an AdaIN decoder (encoder frozen) from folders of photos and paintings')
    .option('-c, --content <dir>', 'content images (searched recursively), e.g. MS-COCO train2017')
    .option('-s, --style <dir>', 'style images (searched recursively), e.g. WikiArt')
    .option('-e, --encoder <model>', 'encoder and AdaIN layer, as a model name from `adain models`', DEFAULT_MODEL)
    .option('-o, --out <dir>', 'run folder: checkpoints, decoder.safetensors, logs, validation grids')
    .addOption(new Option('--mode <mode>', 'style: AdaIN decoder; reconstruct: encode -> decode warm-up').choices(['style', 'reconstruct']).default('style'))
    .option('--init <how>', "'random' (He init) or a decoder file to start from", 'random')
    .option('--style-weight <w>', 'weight of the style loss', parseNumber('a weight', 0), 10)
    .option('--content-weight <w>', 'weight of the content loss', parseNumber('a weight', 0), 1)
    .option('--loss-network <model>', 'a model from `adain models` whose encoder measures the style loss at relu1_1..its AdaIN layer, in place of the encoder\'s own layers there (e.g. vgg19-r31: the paper\'s VGG-19 as the loss network of a cd16x decoder)')
    .option('--photo-content-weight <w>', 'weight of a content loss to the content image itself, measured by --loss-network at its deepest layer (with vgg19-r31: the judge\'s content distance of `adain eval`)', parseNumber('a weight', 0), 0)
    .addOption(new Option('--transform <t>', 'the decoder\'s input: adain (the paper) or wct (the style\'s full channel covariance, for decoders used with stylize --transform wct)').choices(FEATURE_TRANSFORMS).default('adain'))
    .option('--tv-weight <w>', 'weight of a total-variation loss on the decoded image (against grid artefacts)', parseNumber('a weight', 0), 0)
    .option('--grid-weight <w>', 'weight of a loss on the decoded luminance\'s energy at 2, 4 and 8 px periods (the upsampling grid; eval\'s grid_score)', parseNumber('a weight', 0), 0)
    .addOption(new Option('--style-loss <kind>', 'mse: the paper; rms: the seed (sqrt of each term)').choices(['mse', 'rms']).default('mse'))
    .option('--lr <lr>', 'Adam learning rate', parseNumber('a learning rate', 0), 1e-4)
    .option('--lr-schedule <s>', "'inverse[:decay]' (lr/(1+decay*iter), paper) or 'step[:gamma[:every]]' (seed)", 'inverse:5e-5')
    .option('-b, --batch-size <n>', 'images per step', parseInteger('a batch size'), 8)
    .option('--load-size <n>', 'images are scaled so their shorter side is n', parseInteger('a size in pixels'), 512)
    .option('--crop <n>', 'random square crop side', parseInteger('a size in pixels'), 256)
    .option('-n, --iterations <n>', 'training steps in total', parseInteger('an iteration count'), 160000)
    .option('--seed <n>', 'seed for pairs, crops and initialisation', parseInteger('a seed', 0), 0)
    .addOption(new Option('--style-balance <how>', "file: each style image once per pass; source: sources (first subfolder, or the file-name prefix before '__' up to its first '-') drawn by the square root of their size").choices(STYLE_BALANCES).default('file'))
    .option('--subset <n>', 'train on a fixed seeded set of n pairs (debugging)', parseInteger('a pair count'))
    .option('--val-content <dir>', 'held-out content images for validation')
    .option('--val-style <dir>', 'held-out style images for validation')
    .option('--val-pairs <n>', 'held-out pairs per validation (whole batches); decoder.best is best on their mean', parseInteger('a pair count'), DEFAULT_VAL_PAIRS)
    .option('--val-every <n>', 'validate every n steps', parseInteger('a step count'), 500)
    .addOption(new Option('--best-by <what>', 'what decoder.best is best at: loss (the validation loss) or judge (the lowest style distance of eval\'s judge on the validation pairs)').choices(BEST_BY).default('loss'))
    .option('--best-max-content <d>', 'with --best-by judge: validations whose judge content distance is above d do not count', parseNumber('a distance', 0))
    .option('--ema <decay>', 'keep a moving average of the weights (e.g. 0.999: about the last 1000 steps) and validate and save it as the decoder; 0: off', parseNumber('a decay', 0), 0)
    .option('--checkpoint-every <n>', 'checkpoint every n steps', parseInteger('a step count'), 1000)
    .option('--log-every <n>', 'log every n steps', parseInteger('a step count'), 10)
    .option('--resume <dir>', 'continue a run exactly (same data order, optimiser state, step count)')
    .option('--force', 'start a new run in an --out folder that holds one, deleting that run\'s checkpoints, decoders and logs')
    .option('-t, --threads <n>', 'CPU threads', parseInteger('a thread count'), defaultThreads())
    .option('--models-dir <dir>', 'folder with weight files (also $ADAIN_MODELS_DIR)')
    .option('-q, --quiet', 'no progress bar')
    .addHelpText('after', `
Losses (mean reductions): content = mean((f(g(t)) - t)^2) at the AdaIN layer; style = sum over
relu1_1..the AdaIN layer of mean((mu - mu_s)^2) + mean((sigma - sigma_s)^2), means over batch and
channels (with --loss-network, that network's statistics at its layers and the encoder's at
deeper ones); --photo-content-weight adds mean((l(g(t)) - l(c))^2), l the loss network to its
deepest layer and c the content image (the AdaIN content loss pulls towards t instead); --tv-weight adds the mean squared neighbour differences of the decoded image, and
--grid-weight the mean square of any pattern at 2, 4 or 8 px periods along x and y. Ctrl-C
writes a checkpoint and exits with status 130; --resume continues it. A NaN/Inf loss stops the
run and leaves the last checkpoint intact; a corrupt checkpoint is never rotated over the good
previous one. An --out folder that holds a run is refused unless --resume or --force. The run folder holds decoder.safetensors (latest) and
decoder.best.safetensors (lowest validation loss so far; with --best-by judge, the lowest
style distance of eval's judge, the normalised VGG-19, on the validation pairs, among those
within --best-max-content: the training loss and that judge disagree about which checkpoints
are better; its two distances are logged as val_judge_style and val_judge_content; --best-by
and --best-max-content may be given with --resume, and a switch starts the best afresh), which
with --ema are the moving average of the weights rather than the last step's (it smooths the
step-to-step wandering of small-batch training; --ema may be given with --resume), which
\`adain stylize --decoder DIR/decoder.safetensors --model ${DEFAULT_MODEL}\` uses; log.jsonl;
TensorBoard events (tensorboard --logdir runs) and val_*.png grids (style | content | stylised).`)
    .action(async (flags: Flags, cmd: Command) => {
      const config = await configFrom(flags, cmd);
      let stop = false;
      const onSigint = () => {
        if (stop) process.exit(130);
        stop = true;
        process.stderr.write('\nadain: interrupted, writing a checkpoint (Ctrl-C again to quit at once)\n');
      };
      process.on('SIGINT', onSigint);
      const bar = flags.quiet ? undefined : progressBar(config);
      try {
        const res = await train(config, {
          shouldStop: () => stop,
          onStep: (step, v) => bar?.update(step, v),
        }, flags.resume, { force: flags.force });
        bar?.stop();
        const how = res.reason === 'interrupted' ? `interrupted at step ${res.step}; resume with --resume ${config.out}` : `finished ${res.step} steps`;
        process.stderr.write(`${how}. Decoder: ${config.out}/decoder.safetensors${res.last ? ` (loss ${res.last.loss.toFixed(4)})` : ''}\n`);
        if (res.reason === 'interrupted') throw new ExitStatus(130);
      } finally {
        bar?.stop();
        process.off('SIGINT', onSigint);
      }
    });
}

async function configFrom(f: Flags, cmd: Command): Promise<TrainConfig> {
  if (f.force && f.resume) throw new UserError('--force starts a new run and --resume continues one: give one of them');
  if (f.resume) {
    // train() loads it again and gives any fallback warning, once
    const ckpt = await loadCheckpoint(f.resume, { warn: () => {} });
    const saved = ckpt.config as unknown as TrainConfig;
    // only what cannot change the run's meaning may be overridden when resuming
    const given = (name: string) => cmd.getOptionValueSource(name) === 'cli';
    return {
      ...saved, out: f.resume,
      iterations: given('iterations') ? f.iterations : saved.iterations,
      threads: f.threads,
      checkpointEvery: given('checkpointEvery') ? f.checkpointEvery : saved.checkpointEvery,
      // which decoder is kept as the best does not change the training itself
      bestBy: given('bestBy') ? f.bestBy : saved.bestBy,
      bestMaxContent: given('bestMaxContent') ? f.bestMaxContent : saved.bestMaxContent,
      // the average is read, never trained on: turning it on (or changing its decay) leaves the steps as they were
      ema: given('ema') ? f.ema : saved.ema,
      modelsDir: f.modelsDir ?? saved.modelsDir,
    };
  }
  if (!f.content) throw new UserError('--content DIR is required (or --resume RUN_DIR)');
  if (!f.out) throw new UserError('--out DIR is required: the run folder for checkpoints and logs');
  return { ...f, content: f.content, out: f.out } as TrainConfig;
}

function progressBar(config: TrainConfig) {
  const tty = Boolean(process.stderr.isTTY);
  const bar = new cliProgress.SingleBar({
    format: 'train |{bar}| {value}/{total} | {its} it/s | {ips} img/s | loss {loss} (c {closs} s {sloss}) | ETA {eta_formatted}',
    stream: process.stderr, hideCursor: tty, noTTYOutput: !tty, notTTYSchedule: 10_000, etaBuffer: 50,
  }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update(step: number, v: StepValues) {
      const payload = { its: v.its.toFixed(2), ips: v.images_per_s.toFixed(1), loss: v.loss.toPrecision(4), closs: v.content_loss.toPrecision(3), sloss: v.style_loss.toPrecision(3) };
      if (!started) { bar.start(config.iterations, step, payload); started = true; } else bar.update(step, payload);
    },
    stop() { if (started) { bar.stop(); started = false; } },
  };
}

