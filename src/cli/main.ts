import { Command, CommanderError, Option } from 'commander';
import { env as ortEnv } from 'onnxruntime-node';
import { ExitStatus, UserError } from '../errors.js';
import { benchCommand } from './bench-command.js';
import { modelsCommand } from './models-command.js';
import { stylizeCommand } from './stylize-command.js';
import { trainCommand } from './train-command.js';
import { dataCommand } from './data-command.js';
import { exportCommand } from './export-command.js';
import { evalCommand } from './eval-command.js';
import { optimizeCommand } from './optimize-command.js';
import { serveCommand } from './serve-command.js';
import { calibrateCommand } from './calibrate-command.js';
import { availableExecutionProviders, defaultExecutionProvider, setDefaultExecutionProvider } from '../runtime/session.js';
import { withParentFlags } from './options.js';

/** The commands that run networks, and so take --execution-provider (their subcommands too). */
const NETWORK_COMMANDS = new Set(['stylize', 'serve', 'eval', 'train', 'optimize', 'export', 'bench', 'calibrate']);

/**
 * --execution-provider on every command that runs networks, added here once rather than in each
 * command file; the preAction hook makes it the default of every session createSession builds.
 */
function addExecutionProviderOption(cmd: Command): void {
  cmd.addOption(new Option('--execution-provider <name>', `onnxruntime execution provider: ${availableExecutionProviders().join(', ')} (default: $ADAIN_EP, else cpu; a GPU provider leaves the ops it lacks to cpu)`));
  for (const sub of cmd.commands) addExecutionProviderOption(sub);
}

/** Exit codes: 0 ok, 2 bad input or usage (one-line message), 130 interrupted, 1 a bug (stack trace). */
export async function main(argv: string[]): Promise<number> {
  const program = new Command('adain')
    .description('Real-time arbitrary style transfer with Adaptive Instance Normalization (AdaIN), on onnxruntime')
    .version(process.env.npm_package_version ?? '0.1.0')
    .exitOverride()
    .configureOutput({ outputError: (s, write) => write(s) })
    .showHelpAfterError('(add --help for usage)');
  program.addCommand(stylizeCommand());
  program.addCommand(modelsCommand());
  program.addCommand(trainCommand());
  program.addCommand(dataCommand());
  program.addCommand(exportCommand());
  program.addCommand(evalCommand());
  program.addCommand(optimizeCommand());
  program.addCommand(serveCommand());
  program.addCommand(benchCommand());
  program.addCommand(calibrateCommand());
  for (const c of program.commands) {
    c.exitOverride();
    if (NETWORK_COMMANDS.has(c.name())) addExecutionProviderOption(c);
  }
  program.hook('preAction', (_program, action) => {
    if (!action.options.some((o) => o.long === '--execution-provider')) return;
    // `bench --execution-provider webgpu train` counts for the subcommand too.
    const flag = withParentFlags(action).executionProvider;
    setDefaultExecutionProvider(typeof flag === 'string' ? flag : undefined);
    // Also refuses a bad $ADAIN_EP before any work starts.
    // onnxruntime logs a provider's load failure itself (several red lines) before throwing
    // the error that createSession turns into our one line; the CPU keeps its warnings.
    if (defaultExecutionProvider() !== 'cpu') ortEnv.logLevel = 'fatal';
  });
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return 2;
    }
    if (err instanceof ExitStatus) return err.code;
    if (err instanceof UserError) {
      process.stderr.write(`adain: error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
