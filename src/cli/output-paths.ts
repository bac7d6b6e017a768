/**
 * Checks on where a command will write, made before any model is loaded: a bad output path
 * should cost a second, not the whole run, and must never destroy one of the inputs.
 */
import { constants, promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import { formatFromPath, quoteName, type ImageFormat } from '../image/io.js';

/** A file the command reads, with the flag that named it, for messages. */
export interface NamedInput {
  flag: string;
  file: string;
}

async function statOf(p: string): Promise<Stats | undefined> {
  return fs.stat(p).catch(() => undefined);
}

/** Like statOf, but a folder on the way that may not be searched is said as such, not as missing. */
async function statForOutput(p: string, output: string): Promise<Stats | undefined> {
  try {
    return await fs.stat(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') throw new UserError(`cannot write ${quoteName(output)}: ${quoteName(p)} cannot be reached (permission denied); choose a folder you can write to`);
    return undefined;
  }
}

async function checkWritableFolder(dir: string, output: string): Promise<void> {
  try {
    await fs.access(dir, constants.W_OK | constants.X_OK);
  } catch {
    throw new UserError(`cannot write ${quoteName(output)}: folder ${quoteName(dir)} is not writable (permission denied); choose a folder you can write to`);
  }
}

/** An output image file: a known extension, not a folder, in an existing folder that can be written. */
export async function checkOutputFile(file: string): Promise<ImageFormat> {
  const format = formatFromPath(file);
  await checkOutputLocation(file);
  return format;
}

/** An output file of any kind: not a folder, in an existing folder that can be written. */
export async function checkOutputLocation(file: string): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  const st = await statForOutput(dir, file);
  if ((await statOf(file))?.isDirectory()) throw new UserError(`cannot write ${quoteName(file)}: it is a folder; give a file name such as out.png`);
  if (!st) throw new UserError(`cannot write ${quoteName(file)}: folder ${quoteName(dir)} does not exist; create it first`);
  if (!st.isDirectory()) throw new UserError(`cannot write ${quoteName(file)}: ${quoteName(dir)} is a file, not a folder; choose another output path`);
  await checkWritableFolder(dir, file);
}

/** An output folder, created later if missing: it, or else the nearest folder above it that exists, must be a writable folder. */
export async function checkOutputFolder(dir: string): Promise<void> {
  let p = path.resolve(dir);
  let st = await statForOutput(p, dir);
  if (st && !st.isDirectory()) throw new UserError(`--output ${quoteName(dir)} is a file; with a folder of contents, give a folder to write into`);
  while (!st && path.dirname(p) !== p) {
    p = path.dirname(p);
    st = await statForOutput(p, dir);
  }
  if (!st?.isDirectory()) throw new UserError(`cannot create folder ${quoteName(dir)}: ${quoteName(p)} is not a folder; choose another output path`);
  await checkWritableFolder(p, dir);
}

/**
 * The real path of `p` with symlinks, `.` and `..` resolved; for a path that does not exist
 * yet, the real path of the nearest folder above it that does, and the rest. Also the file's
 * device and inode when it exists, which tells hard links (and names on case-insensitive
 * disks) apart from other files too.
 */
export async function fileIdentity(p: string): Promise<{ real: string; dev?: number; ino?: number }> {
  const abs = path.resolve(p);
  const st = await statOf(abs);
  let base = abs;
  const rest: string[] = [];
  let real: string | undefined;
  while (real === undefined) {
    real = await fs.realpath(base).catch(() => undefined);
    if (real === undefined) {
      if (path.dirname(base) === base) real = base;
      else {
        rest.unshift(path.basename(base));
        base = path.dirname(base);
      }
    }
  }
  real = path.join(real, ...rest);
  return st ? { real, dev: st.dev, ino: st.ino } : { real };
}

function same(a: Awaited<ReturnType<typeof fileIdentity>>, b: Awaited<ReturnType<typeof fileIdentity>>): boolean {
  return a.real === b.real || (a.ino !== undefined && a.dev === b.dev && a.ino === b.ino);
}

/** Refuses an output that is, under any spelling or link, one of the inputs: writing it would replace the input with the result. */
export async function refuseOverwritingInputs(output: string, inputs: readonly NamedInput[], outputFlag = '--output'): Promise<void> {
  const out = await fileIdentity(output);
  for (const input of inputs) {
    if (same(out, await fileIdentity(input.file))) {
      throw new UserError(`${outputFlag} ${quoteName(output)} is the same file as ${input.flag} ${quoteName(input.file)} and would overwrite it; choose another output name`);
    }
  }
}

/** Whether folder `inner` is folder `outer` or somewhere inside it (through links and any spelling). */
export async function isWithinFolder(inner: string, outer: string): Promise<boolean> {
  const i = await fileIdentity(inner), o = await fileIdentity(outer);
  return same(i, o) || i.real.startsWith(o.real.endsWith(path.sep) ? o.real : o.real + path.sep);
}
