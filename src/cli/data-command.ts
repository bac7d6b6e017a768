import { Argument, Command } from 'commander';
import { DATASETS, findDataset } from '../data/datasets.js';
import { downloadDataset, type DatasetPhase } from '../data/download-dataset.js';
import { parseInteger } from './options.js';
import { createProgress, formatBytes, type Progress } from './progress.js';

const LABELS: Record<DatasetPhase, string> = { download: 'downloading', verify: 'verifying', unpack: 'unpacking' };

export function dataCommand(): Command {
  const data = new Command('data').description('Training datasets: COCO (content images) and WikiArt (style images)');

  data
    .command('list')
    .description('List the datasets that `adain data download` knows')
    .action(() => {
      for (const d of Object.values(DATASETS)) {
        process.stdout.write(`${d.name}: ${d.description}\n  ${d.url}${d.bytes ? ` (${formatBytes(d.bytes)})` : ''}\n  ${d.md5 ? `md5 ${d.md5}` : d.sha256 ? `sha256 ${d.sha256}` : 'no published hash'}; ${d.terms}\n`);
      }
    });

  data
    .command('download')
    .description('Download a dataset and unpack it into DIR/<name>/ (resumable: rerun after an interruption)')
    .addArgument(new Argument('<dataset>', 'dataset to download').choices(Object.keys(DATASETS)))
    .requiredOption('--dir <dir>', 'folder for the archive and the unpacked images')
    .option('--keep-archive', 'keep the downloaded archive after unpacking')
    .option('--retries <n>', 'retries after a broken connection (each resumes)', parseInteger('a count', 0), 5)
    .option('-q, --quiet', 'print nothing but errors')
    .action(async (name: string, o: { dir: string; keepArchive?: boolean; retries: number; quiet?: boolean }) => {
      const spec = findDataset(name);
      const say = (s: string) => {
        if (!o.quiet) process.stderr.write(`${s}\n`);
      };
      let phase: DatasetPhase | undefined;
      let bar: Progress | undefined;
      const result = await downloadDataset(spec, o.dir, {
        keepArchive: o.keepArchive,
        retries: o.retries,
        log: say,
        onProgress: o.quiet
          ? undefined
          : (p, done, total) => {
              if (p !== phase) {
                bar?.stop();
                phase = p;
                bar = createProgress(`${LABELS[p]} ${spec.name}`, total, { unit: 'bytes' });
              }
              bar!.update(done, total);
            },
      }).finally(() => bar?.stop());
      if (result.skipped) say(`${spec.name} is already in ${result.dir} (${result.files} files); nothing to do`);
      else say(`${spec.name}: ${result.files} files (${formatBytes(result.bytes)}) in ${result.dir}${result.sha256 ? `; archive sha256 ${result.sha256}` : ''}`);
      process.stdout.write(`${result.dir}\n`);
    });

  // main() makes the top-level commands throw instead of exiting; do the same one level down.
  data.exitOverride();
  for (const c of data.commands) c.exitOverride();
  return data;
}
