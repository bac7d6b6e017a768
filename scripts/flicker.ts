// `npm run flicker [-- flags]`: an alias of `adain eval video` (src/eval/flicker-table.ts), run
// from the sources so that no build is needed. --blend, the flag's old name here, still works.
// The full table of docs/VIDEO.md:
//   npm run flicker -- --temporal 0,0.5,0.8,0.9,1 --temporal-blend 0.3,0.5,0.7,0.8 -t 1
import path from 'node:path';
import { main } from '../src/cli/main.js';

// as before, the shared weights beside the repository unless told otherwise
process.env.ADAIN_MODELS_DIR ??= path.resolve(import.meta.dirname, '../../shared/models');
const args = process.argv.slice(2).map((a) => (a === '--blend' ? '--temporal-blend' : a.startsWith('--blend=') ? `--temporal-blend=${a.slice(8)}` : a));
process.exitCode = await main([process.argv[0], 'adain', 'eval', 'video', ...args]);
