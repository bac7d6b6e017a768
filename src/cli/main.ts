import { Command, CommanderError } from 'commander';
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
  for (const c of program.commands) c.exitOverride();
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
