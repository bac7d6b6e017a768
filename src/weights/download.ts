/**
 * Verified downloads: stream to `<dest>.part`, hash while streaming, check size and hash,
 * then rename into place. A file at `dest` is therefore always complete and verified; any
 * failure removes the partial file and becomes a one-line UserError saying what to do.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';

export interface DownloadOptions {
  sha256?: string;
  bytes?: number;
  /** Leading hex digits the sha256 must start with (used when only a prefix is published). */
  shaPrefix?: string;
  onProgress?: (done: number, total: number | undefined) => void;
  fetchImpl?: typeof fetch;
  /** Tail of every error message telling the user how to get the file without us. */
  byHandHint?: string;
}

/** Downloads `url` to `dest` (creating its folder) and returns the file's sha256 (hex). */
export async function downloadVerified(url: string, dest: string, opts: DownloadOptions = {}): Promise<string> {
  const fetchImpl = opts.fetchImpl ?? fetch;
  const part = `${dest}.part`;
  const byHand = opts.byHandHint ?? `download it by hand and save it as ${dest}`;
  const fail = (what: string): UserError =>
    new UserError(oneLine(`download of ${url} failed: ${what}; retry, or ${byHand}`));

  let res: Response;
  try {
    res = await fetchImpl(url, { redirect: 'follow' });
  } catch (e) {
    throw fail(`could not connect (${describe(e)})`);
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel().catch(() => undefined);
    throw fail(`HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
  }

  // Content-Length is only a progress hint: with compression it counts the encoded bytes.
  const headerLength = Number(res.headers.get('content-length'));
  const total = opts.bytes ?? (Number.isFinite(headerLength) && headerLength > 0 ? headerLength : undefined);

  await fs.mkdir(path.dirname(dest), { recursive: true });
  const hash = createHash('sha256');
  let done = 0;
  const out = await fs.open(part, 'w');
  try {
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        done += chunk.byteLength;
        // Stop early rather than fill the disk with something that cannot be the right file.
        if (opts.bytes !== undefined && done > opts.bytes) {
          throw fail(`the server sent more than the expected ${opts.bytes} bytes`);
        }
        hash.update(chunk);
        await out.write(chunk);
        opts.onProgress?.(done, total);
      }
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw fail(`the connection broke after ${done} bytes (${describe(e)})`);
    } finally {
      await out.close();
    }
    const actual = hash.digest('hex');
    if (opts.bytes !== undefined && done !== opts.bytes) {
      throw fail(`expected ${opts.bytes} bytes, got ${done}`);
    }
    if (opts.sha256 !== undefined && actual !== opts.sha256.toLowerCase()) {
      throw fail(`expected sha256 ${opts.sha256}, got ${actual} (${done} bytes)`);
    }
    if (opts.sha256 === undefined && opts.shaPrefix !== undefined && !actual.startsWith(opts.shaPrefix.toLowerCase())) {
      throw fail(`expected a sha256 starting with ${opts.shaPrefix}, got ${actual} (${done} bytes)`);
    }
    await fs.rename(part, dest); // atomic on one filesystem: readers never see a half file
    return actual;
  } catch (e) {
    await fs.rm(part, { force: true });
    throw e;
  }
}

/** sha256 (hex) of a file, streamed so large checkpoints do not sit in memory. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as Error & { cause?: unknown }).cause;
    return cause instanceof Error ? `${e.message}: ${cause.message}` : e.message;
  }
  return String(e);
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ');
}
