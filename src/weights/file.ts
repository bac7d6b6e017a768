import { readFile } from 'node:fs/promises';
import { UserError } from '../errors.js';

/** What to tell a user whose weights file is unusable. */
export const WEIGHTS_HINT = 're-download it or pass the right file with --encoder/--decoder';

/** Reads a whole weights file, turning the usual file-system failures into one-line UserErrors. */
export async function readWeightsFile(path: string): Promise<Uint8Array> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`${path} does not exist; check the path, or pass the right file with --encoder/--decoder`);
    if (code === 'EISDIR') throw new UserError(`${path} is a folder, not a weights file; pass the .pth or .safetensors file inside it`);
    if (code === 'EACCES' || code === 'EPERM') throw new UserError(`${path} cannot be read (permission denied); fix its permissions`);
    throw err;
  }
  if (bytes.length === 0) throw new UserError(`${path} is empty (0 bytes); ${WEIGHTS_HINT}`);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
