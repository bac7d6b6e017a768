import { Command } from 'commander';

export function benchCommand(): Command {
  return new Command('bench').description('Benchmark stylisation speed (see docs)').action(() => {
    throw new Error('not yet');
  });
}
