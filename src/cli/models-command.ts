import { Command } from 'commander';
import { MODELS, DEFAULT_MODEL } from '../models/registry.js';
import { modelStatus } from '../models/resolve.js';
import { formatBytes } from './progress.js';

export function modelsCommand(): Command {
  return new Command('models')
    .description('List the models, where each file comes from and whether it is present locally')
    .option('--models-dir <dir>', 'folder with weight files (also $ADAIN_MODELS_DIR)')
    .option('--json', 'print JSON instead of text')
    .action(async (o: { modelsDir?: string; json?: boolean }) => {
      const rows = [];
      for (const spec of MODELS) rows.push({ ...spec, default: spec.name === DEFAULT_MODEL, files: await modelStatus(spec, { modelsDir: o.modelsDir }) });
      if (o.json) {
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      for (const r of rows) {
        const ready = r.files.every((f) => f.localPath && !f.problem);
        process.stdout.write(`${r.name}${r.default ? ' (default)' : ''}  [${ready ? 'ready' : 'missing files'}]  encoder ${r.encoder.kind} to ${r.encoder.cut}, ${r.decoder.kind} decoder\n`);
        process.stdout.write(`  ${r.description}\n`);
        for (const f of r.files) {
          const where = f.localPath ? `present: ${f.localPath}${f.problem ? ` (${f.problem})` : ''}` : f.url ? 'not present: downloaded on first use' : 'not present: bring it yourself';
          process.stdout.write(`  ${f.role}: ${f.file}${f.bytes ? ` (${formatBytes(f.bytes)})` : ''}\n    ${where}\n`);
          if (f.url) process.stdout.write(`    from ${f.url}${f.sha256 ? `\n    sha256 ${f.sha256}` : ''}\n`);
        }
        process.stdout.write('\n');
      }
    });
}
