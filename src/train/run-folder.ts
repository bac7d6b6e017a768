/**
 * A run folder belongs to one run: starting a new run where one already lives would overwrite
 * its checkpoints and decoders and mix two runs in one log. Only --resume continues it, and
 * only --force starts over there (clearing the old run's files first, so nothing is mixed).
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { BEST_DECODER_FILE, CHECKPOINT_FILE, DECODER_FILE, PREV_CHECKPOINT_FILE } from './checkpoint.js';

const RUN_FILE = /^(checkpoint(\.prev)?\.safetensors|decoder(\.best)?\.safetensors|log\.jsonl|events\.out\.tfevents\..+|val_\d+\.png)$/;
const MARKERS = [CHECKPOINT_FILE, PREV_CHECKPOINT_FILE, DECODER_FILE, BEST_DECODER_FILE, 'log.jsonl'];

/** The files of an earlier run in `dir` (empty when the folder is missing or holds none). */
export async function runFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    if (code === 'ENOTDIR') throw new UserError(`--out ${dir} is a file; give a folder for the run`);
    throw err;
  }
  return names.filter((n) => RUN_FILE.test(n)).sort();
}

/**
 * Refuses to start a new run in `dir` when it holds an earlier one; with `force`, deletes that
 * run's files (nothing else in the folder) so that the new run starts clean.
 */
export async function claimRunFolder(dir: string, force: boolean): Promise<void> {
  const files = await runFiles(dir);
  if (!files.some((f) => MARKERS.includes(f))) return;
  if (!force) {
    throw new UserError(`${dir} already holds a training run (${files.filter((f) => MARKERS.includes(f)).join(', ')}); continue it with --resume ${dir}, or start over with --force (deletes that run) or a new --out folder`);
  }
  await Promise.all(files.map((f) => fs.rm(join(dir, f), { force: true })));
}
