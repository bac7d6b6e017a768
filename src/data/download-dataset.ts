/**
 * Downloads and unpacks a training dataset (COCO, WikiArt: tens of GB each):
 * 1. resumable download to `<dir>/<file>.part` (HTTP Range from what is already there; a
 *    server that ignores the Range and answers 200 restarts the file from zero), retrying a
 *    broken connection a few times from where it stopped;
 * 2. size and md5/sha256 check of the whole file (streamed), then rename to `<dir>/<file>`;
 * 3. streamed unpacking into `<dir>/<name>/` (zip through its central directory, ZIP64
 *    included; tar.gz through gunzip and a small ustar/pax/GNU reader), nothing held in memory;
 * 4. a marker file `<dir>/<name>/.adain-complete.json`, so that a rerun is a no-op.
 * An interrupted run picks up where it stopped: the .part file, or the verified archive.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { UserError } from '../errors.js';
import type { DatasetSpec } from './datasets.js';

export const COMPLETE_MARKER = '.adain-complete.json';

export type DatasetPhase = 'download' | 'verify' | 'unpack';

export interface DatasetDownloadOptions {
  fetchImpl?: typeof fetch;
  /** Bytes done in the current phase (download: of the archive, incl. a resumed part; unpack: archive bytes read). */
  onProgress?: (phase: DatasetPhase, done: number, total: number | undefined) => void;
  /** Informational lines (resuming, restarting, retrying). */
  log?: (line: string) => void;
  /** Retries after a broken connection within one run (each resumes). Default 5. */
  retries?: number;
  /** Wait before retry n is n times this. Default 2000 ms. */
  retryDelayMs?: number;
  /** Keep the archive after unpacking (default: delete it, the images are what training reads). */
  keepArchive?: boolean;
}

export interface DatasetResult {
  /** The folder with the unpacked images: `<dir>/<name>`. */
  dir: string;
  files: number;
  bytes: number;
  /** True when the marker showed an earlier complete run and nothing was done. */
  skipped: boolean;
  sha256?: string;
}

interface Marker {
  name: string;
  url: string;
  files: number;
  bytes: number;
  sha256?: string;
  md5?: string;
  completed: string;
}

/** Something wrong with the archive's content: deleting it and downloading again is the fix. */
class ArchiveError extends Error {}

export async function downloadDataset(spec: DatasetSpec, dir: string, opts: DatasetDownloadOptions = {}): Promise<DatasetResult> {
  const target = join(dir, spec.name);
  const markerPath = join(target, COMPLETE_MARKER);
  const previous = await readMarker(markerPath);
  if (previous) return { dir: target, files: previous.files, bytes: previous.bytes, skipped: true, sha256: previous.sha256 };

  try {
    await fs.mkdir(dir, { recursive: true });
  } catch (err) {
    throw new UserError(`cannot create ${dir} (${(err as Error).message}); pass a writable folder with --dir`);
  }
  const archive = join(dir, spec.file);
  let hashes: { md5: string; sha256: string } | undefined;
  if (!(await exists(archive))) {
    await checkFreeSpace(spec, dir, archive);
    const size = await fetchResumable(spec, `${archive}.part`, opts);
    hashes = await verifyArchive(spec, `${archive}.part`, size, opts);
    await fs.rename(`${archive}.part`, archive);
  } else if (spec.bytes === undefined && !spec.md5 && !spec.sha256) {
    opts.log?.(`${archive} is already there; ${spec.name} publishes no size or hash to check it against, so it is unpacked as it is`);
  } else {
    // placed by hand, or ours from a run killed while unpacking: either way, check it first
    opts.log?.(`${archive} is already there; verifying it`);
    hashes = await verifyArchive(spec, archive, await fileSize(archive), opts, false);
    opts.log?.(`${archive} verified; unpacking it`);
  }

  let result: { files: number; bytes: number };
  try {
    await fs.mkdir(target, { recursive: true });
    result = spec.format === 'zip' ? await unzipFile(archive, target, opts) : await untarGzFile(archive, target, opts);
  } catch (err) {
    if (err instanceof ArchiveError) {
      await fs.rm(archive, { force: true });
      throw new UserError(`${archive} is damaged (${err.message}); it was deleted: rerun the command to download it again`);
    }
    if (err instanceof UserError) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOSPC') throw new UserError(`the disk holding ${target} is full; free some space (or pass another --dir) and rerun to finish unpacking`);
    if (e.code === 'EACCES' || e.code === 'EPERM') throw new UserError(`cannot write into ${target} (${e.message}); fix its permissions or pass another --dir`);
    throw err;
  }

  const marker: Marker = { name: spec.name, url: spec.url, files: result.files, bytes: result.bytes, sha256: hashes?.sha256, md5: hashes?.md5, completed: new Date().toISOString() };
  await fs.writeFile(`${markerPath}.tmp`, `${JSON.stringify(marker, null, 2)}\n`);
  await fs.rename(`${markerPath}.tmp`, markerPath);
  if (!opts.keepArchive) await fs.rm(archive, { force: true });
  return { dir: target, files: result.files, bytes: result.bytes, skipped: false, sha256: hashes?.sha256 };
}

async function readMarker(path: string): Promise<Marker | undefined> {
  try {
    const m = JSON.parse(await fs.readFile(path, 'utf8')) as Marker;
    return typeof m.files === 'number' ? m : undefined;
  } catch {
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await fs.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await fs.stat(path)).size;
  } catch {
    return 0;
  }
}

/** Refuses to start a download that cannot fit (archive remainder + unpacked images). */
async function checkFreeSpace(spec: DatasetSpec, dir: string, archive: string): Promise<void> {
  if (spec.bytes === undefined) return;
  let free: number;
  try {
    const s = await fs.statfs(dir);
    free = s.bavail * s.bsize;
  } catch {
    return; // not knowable here: let the writes tell
  }
  const need = spec.bytes - (await fileSize(`${archive}.part`)) + (spec.unpackedBytes ?? spec.bytes);
  if (free < need) {
    throw new UserError(`${spec.name} needs about ${gb(need)} free in ${dir} (archive and unpacked images), only ${gb(free)} is free; free some space or pass another --dir`);
  }
}

function gb(n: number): string {
  return `${(n / 1024 ** 3).toFixed(1)} GB`;
}

// ---------------------------------------------------------------------------------------
// Download

/** Fetches spec.url into `part`, resuming; returns the complete file's size. */
async function fetchResumable(spec: DatasetSpec, part: string, opts: DatasetDownloadOptions): Promise<number> {
  const fetchImpl = opts.fetchImpl ?? fetch;
  const retries = opts.retries ?? 5;
  const delay = opts.retryDelayMs ?? 2000;
  const byHand = `or download ${spec.url} by hand and save it as ${part.slice(0, -'.part'.length)}`;
  let failures = 0;
  let total = spec.bytes;

  // A transient failure: keep the .part file, retry a few times, then tell the user to rerun.
  const transient = async (why: string): Promise<void> => {
    failures++;
    const have = await fileSize(part);
    if (failures > retries) {
      throw new UserError(`download of ${spec.url} failed: ${why}; ${have} bytes are kept in ${part}: rerun the same command to resume, ${byHand}`);
    }
    opts.log?.(`download: ${why}; retrying from byte ${have} (${failures}/${retries})`);
    if (delay > 0) await new Promise((r) => setTimeout(r, delay * failures));
  };

  for (;;) {
    let have = await fileSize(part);
    if (total !== undefined && have > total) {
      opts.log?.(`${part} is larger than the ${total}-byte archive; starting over`);
      await fs.rm(part, { force: true });
      have = 0;
    }
    if (total !== undefined && have === total) return have;

    const headers: Record<string, string> = { 'accept-encoding': 'identity' };
    if (have > 0) headers.range = `bytes=${have}-`;
    let res: Response;
    try {
      res = await fetchImpl(spec.url, { headers, redirect: 'follow' });
    } catch (err) {
      await transient(`could not connect (${describe(err)})`);
      continue;
    }

    if (res.status === 416 && have > 0) {
      // Nothing left after `have`: complete if the server's size says so, else start over.
      await res.body?.cancel().catch(() => undefined);
      const size = /\/(\d+)\s*$/.exec(res.headers.get('content-range') ?? '')?.[1];
      if (size !== undefined && Number(size) === have && (spec.bytes === undefined || spec.bytes === have)) return have;
      opts.log?.(`the server refused to resume at byte ${have}; starting over`);
      await fs.rm(part, { force: true });
      await transient('the server refused the resume request');
      continue;
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel().catch(() => undefined);
      const what = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
      if (res.status >= 500 || res.status === 429 || res.status === 408) {
        await transient(what);
        continue;
      }
      throw new UserError(`download of ${spec.url} failed: ${what}; check the address and your network, ${byHand}`);
    }

    let start = 0;
    let reported: number | undefined;
    if (res.status === 206) {
      const m = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)/i.exec(res.headers.get('content-range') ?? '');
      if (!m || Number(m[1]) !== have) {
        // A range we did not ask for: do not guess, fetch the whole file again.
        await res.body.cancel().catch(() => undefined);
        opts.log?.(`the server answered the resume request with another range (${res.headers.get('content-range')}); starting over`);
        await fs.rm(part, { force: true });
        await transient('the server sent an unexpected range');
        continue;
      }
      start = have;
      if (m[3] !== '*') reported = Number(m[3]);
    } else {
      if (have > 0) opts.log?.(`the server ignored the resume request (HTTP ${res.status}); reading from the start, keeping the ${have} bytes already here`);
      const len = Number(res.headers.get('content-length'));
      if (res.headers.get('content-length') !== null && Number.isSafeInteger(len) && !res.headers.get('content-encoding')) reported = len;
    }
    if (reported !== undefined) {
      if (spec.bytes !== undefined && reported !== spec.bytes) {
        await res.body.cancel().catch(() => undefined);
        throw new UserError(`download of ${spec.url} failed: the server reports ${reported} bytes, the ${spec.name} archive has ${spec.bytes}; the file there has changed: ${byHand.replace(/^or /, '')} and check it`);
      }
      total = reported;
    }

    // A whole-file answer (200) to a resume request is read from byte 0, but the bytes already
    // on disk are skipped rather than truncated: a second drop must not leave less than before.
    let done = start;
    const keep = have;
    const out = await fs.open(part, keep > 0 ? 'a' : 'w');
    let broke: unknown;
    try {
      for await (const read of res.body as unknown as AsyncIterable<Uint8Array>) {
        if (total !== undefined && done + read.byteLength > total) {
          await out.close();
          await fs.rm(part, { force: true });
          throw new UserError(`download of ${spec.url} failed: the server sent more than the expected ${total} bytes; the partial file was deleted: retry later, ${byHand}`);
        }
        const chunk = done < keep ? read.subarray(Math.min(read.byteLength, keep - done)) : read;
        if (chunk.byteLength > 0) await out.write(chunk);
        done += read.byteLength;
        opts.onProgress?.('download', done, total);
      }
    } catch (err) {
      if (err instanceof UserError) throw err;
      broke = err;
    } finally {
      await out.close().catch(() => undefined);
    }
    if (done > keep) failures = 0; // progress was made: the retry budget is per stall
    if (broke !== undefined) {
      await transient(`the connection broke after ${done} bytes (${describe(broke)})`);
      continue;
    }
    if (total !== undefined && done < total) {
      await transient(`the connection closed after ${done} of ${total} bytes`);
      continue;
    }
    return done;
  }
}

/**
 * Checks size and hashes of an archive: the finished download (deleted if wrong, `ours`), or a
 * file that was already there (kept: it may be the user's own copy).
 */
async function verifyArchive(spec: DatasetSpec, part: string, size: number, opts: DatasetDownloadOptions, ours = true): Promise<{ md5: string; sha256: string }> {
  const fail = async (why: string): Promise<never> => {
    if (!ours) throw new UserError(`${part} is not the ${spec.name} archive (${why}); replace it with a good copy of ${spec.url}, or delete it and rerun to download it`);
    await fs.rm(part, { force: true });
    throw new UserError(`download of ${spec.url} is corrupt (${why}); the bad file was deleted: rerun the command to download it again, or download it by hand and check it`);
  };
  const actual = await fileSize(part);
  if (actual !== size || (spec.bytes !== undefined && actual !== spec.bytes)) await fail(`${actual} bytes, expected ${spec.bytes ?? size}`);
  const md5 = createHash('md5');
  const sha = createHash('sha256');
  let done = 0;
  for await (const chunk of createReadStream(part, { highWaterMark: 1 << 20 })) {
    md5.update(chunk as Buffer);
    sha.update(chunk as Buffer);
    done += (chunk as Buffer).length;
    opts.onProgress?.('verify', done, actual);
  }
  const hashes = { md5: md5.digest('hex'), sha256: sha.digest('hex') };
  if (spec.md5 && hashes.md5 !== spec.md5.toLowerCase()) await fail(`md5 ${hashes.md5}, expected ${spec.md5}`);
  if (spec.sha256 && hashes.sha256 !== spec.sha256.toLowerCase()) await fail(`sha256 ${hashes.sha256}, expected ${spec.sha256}`);
  return hashes;
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as Error & { cause?: unknown }).cause;
    return cause instanceof Error ? `${e.message}: ${cause.message}` : e.message;
  }
  return String(e);
}

// ---------------------------------------------------------------------------------------
// Unpacking helpers

/** A relative path inside the target, or an ArchiveError for absolute paths and `..`. */
function safeRelative(name: string): string | undefined {
  const clean = name.replace(/\\/g, '/');
  if (clean.startsWith('/') || /^[A-Za-z]:/.test(clean)) throw new ArchiveError(`it holds an absolute path ${JSON.stringify(name)}`);
  const parts = clean.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new ArchiveError(`it holds a path leaving its folder ${JSON.stringify(name)}`);
  if (parts.length === 0) return undefined;
  return parts.join('/');
}

/** mkdir -p with a cache, since archives hold many files per folder. */
function dirMaker(root: string): (rel: string) => Promise<string> {
  const made = new Set<string>();
  return async (rel) => {
    const full = join(root, rel);
    if (!made.has(full)) {
      await fs.mkdir(full, { recursive: true });
      made.add(full);
    }
    return full;
  };
}

const crc32: (data: Uint8Array, value?: number) => number =
  (zlib as unknown as { crc32?: (d: Uint8Array, v?: number) => number }).crc32 ?? crc32Js;

let crcTable: Uint32Array | undefined;
function crc32Js(data: Uint8Array, value = 0): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = ~value >>> 0;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

// ---------------------------------------------------------------------------------------
// Zip: read the central directory (at the end of the file), then stream each entry.

interface ZipEntry {
  name: string;
  flags: number;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) throw new ArchiveError(`it ends early (reading ${length} bytes at ${position})`);
    got += bytesRead;
  }
  return buf;
}

function u64(buf: Buffer, at: number): number {
  const v = buf.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ArchiveError('a ZIP64 field is out of range');
  return Number(v);
}

export async function readZipDirectory(fh: FileHandle, size: number): Promise<ZipEntry[]> {
  // End of central directory: 22 bytes + up to 64 KB of comment, at the very end.
  const tailLength = Math.min(size, 22 + 0xffff);
  const tail = await readAt(fh, size - tailLength, tailLength);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new ArchiveError('no zip end-of-directory record: not a zip file, or truncated');
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const locatorPos = size - tailLength + eocd - 20;
    const locator = locatorPos >= 0 ? await readAt(fh, locatorPos, 20) : undefined;
    if (!locator || locator.readUInt32LE(0) !== 0x07064b50) throw new ArchiveError('a ZIP64 archive without its ZIP64 locator');
    const rec = await readAt(fh, u64(locator, 8), 56);
    if (rec.readUInt32LE(0) !== 0x06064b50) throw new ArchiveError('a bad ZIP64 end-of-directory record');
    count = u64(rec, 32);
    cdSize = u64(rec, 40);
    cdOffset = u64(rec, 48);
  }
  if (cdOffset + cdSize > size) throw new ArchiveError('its central directory lies past the end of the file (truncated?)');
  const cd = await readAt(fh, cdOffset, cdSize);
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== 0x02014b50) throw new ArchiveError(`central directory entry ${i} is malformed`);
    const flags = cd.readUInt16LE(p + 8);
    const nameLength = cd.readUInt16LE(p + 28);
    const extraLength = cd.readUInt16LE(p + 30);
    const commentLength = cd.readUInt16LE(p + 32);
    const e: ZipEntry = {
      name: cd.toString(flags & 0x800 ? 'utf8' : 'latin1', p + 46, p + 46 + nameLength),
      flags,
      method: cd.readUInt16LE(p + 10),
      crc: cd.readUInt32LE(p + 16),
      compressedSize: cd.readUInt32LE(p + 20),
      size: cd.readUInt32LE(p + 24),
      localOffset: cd.readUInt32LE(p + 42),
    };
    // ZIP64 extra field (0x0001): 8-byte values for exactly those fields set to 0xffffffff.
    let x = p + 46 + nameLength;
    const extraEnd = x + extraLength;
    while (x + 4 <= extraEnd) {
      const id = cd.readUInt16LE(x);
      const len = cd.readUInt16LE(x + 2);
      if (id === 0x0001) {
        let q = x + 4;
        const take = () => {
          if (q + 8 > x + 4 + len) throw new ArchiveError(`entry ${e.name} has a short ZIP64 field`);
          const v = u64(cd, q);
          q += 8;
          return v;
        };
        if (e.size === 0xffffffff) e.size = take();
        if (e.compressedSize === 0xffffffff) e.compressedSize = take();
        if (e.localOffset === 0xffffffff) e.localOffset = take();
      }
      x += 4 + len;
    }
    entries.push(e);
    p = extraEnd + commentLength;
  }
  return entries;
}

async function* readRange(fh: FileHandle, start: number, length: number, onRead: (n: number) => void): AsyncGenerator<Buffer> {
  const chunk = 1 << 20;
  let done = 0;
  while (done < length) {
    const n = Math.min(chunk, length - done);
    const buf = Buffer.allocUnsafe(n);
    const { bytesRead } = await fh.read(buf, 0, n, start + done);
    if (bytesRead === 0) throw new ArchiveError('it ends inside an entry (truncated)');
    done += bytesRead;
    onRead(bytesRead);
    yield bytesRead === n ? buf : buf.subarray(0, bytesRead);
  }
}

async function unzipFile(file: string, target: string, opts: DatasetDownloadOptions): Promise<{ files: number; bytes: number }> {
  const fh = await fs.open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    const entries = (await readZipDirectory(fh, size)).sort((a, b) => a.localOffset - b.localOffset);
    const mkdir = dirMaker(target);
    let read = 0;
    let files = 0;
    let bytes = 0;
    const onRead = (n: number) => {
      read += n;
      opts.onProgress?.('unpack', read, size);
    };
    for (const e of entries) {
      const rel = safeRelative(e.name);
      if (rel === undefined) continue;
      if (e.name.endsWith('/')) {
        await mkdir(rel);
        continue;
      }
      if (e.flags & 1) throw new UserError(`${file}: entry ${e.name} is encrypted; unpack it by hand`);
      if (e.method !== 0 && e.method !== 8) throw new UserError(`${file}: entry ${e.name} uses compression method ${e.method}, only stored and deflate are supported; unpack it by hand`);
      const local = await readAt(fh, e.localOffset, 30);
      if (local.readUInt32LE(0) !== 0x04034b50) throw new ArchiveError(`entry ${e.name} has no local header at ${e.localOffset}`);
      const dataStart = e.localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
      if (dataStart + e.compressedSize > size) throw new ArchiveError(`entry ${e.name} lies past the end of the file`);

      const out = join(await mkdir(posix.dirname(rel)), posix.basename(rel));
      let crc = 0;
      let written = 0;
      const check = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          crc = crc32(chunk, crc);
          written += chunk.length;
          cb(null, chunk);
        },
      });
      const source = readRange(fh, dataStart, e.compressedSize, onRead);
      try {
        if (e.method === 8) await pipeline(source, zlib.createInflateRaw(), check, createWriteStream(out));
        else await pipeline(source, check, createWriteStream(out));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code?.startsWith('Z_')) throw new ArchiveError(`entry ${e.name} does not inflate (${(err as Error).message})`);
        throw err;
      }
      if (written !== e.size || crc >>> 0 !== e.crc >>> 0) throw new ArchiveError(`entry ${e.name} fails its CRC/size check`);
      files++;
      bytes += written;
    }
    return { files, bytes };
  } finally {
    await fh.close();
  }
}

// ---------------------------------------------------------------------------------------
// tar.gz: gunzip stream -> tar reader (ustar, pax 'x' records, GNU 'L' long names).

async function untarGzFile(file: string, target: string, opts: DatasetDownloadOptions): Promise<{ files: number; bytes: number }> {
  const size = await fileSize(file);
  let read = 0;
  const source = createReadStream(file, { highWaterMark: 1 << 20 });
  source.on('data', (c) => {
    read += (c as Buffer).length;
    opts.onProgress?.('unpack', read, size);
  });
  const tar = new TarExtractor(target, opts.log);
  try {
    await pipeline(source, zlib.createGunzip({ chunkSize: 1 << 18 }), async (gunzipped: AsyncIterable<Buffer>) => {
      for await (const chunk of gunzipped) await tar.write(chunk);
      await tar.end();
    });
  } catch (err) {
    await tar.abort();
    if ((err as NodeJS.ErrnoException).code?.startsWith('Z_')) throw new ArchiveError(`it does not gunzip (${(err as Error).message})`);
    throw err;
  }
  return { files: tar.files, bytes: tar.bytes };
}

const BLOCK = 512;

export class TarExtractor {
  files = 0;
  bytes = 0;
  private readonly mkdir: (rel: string) => Promise<string>;
  private header = Buffer.alloc(BLOCK);
  private headerFill = 0;
  /** Bytes of entry data still to come, then padding to the next block. */
  private remaining = 0;
  private padding = 0;
  private sink: { kind: 'file'; fh: FileHandle } | { kind: 'meta'; type: 'x' | 'L'; parts: Buffer[] } | { kind: 'skip' } | undefined;
  private nextPath: string | undefined;
  private nextSize: number | undefined;
  private ended = false;
  private skippedLinks = 0;

  constructor(target: string, private readonly log?: (line: string) => void) {
    this.mkdir = dirMaker(target);
  }

  async write(chunk: Buffer): Promise<void> {
    let p = 0;
    while (p < chunk.length) {
      if (this.ended) return; // anything after the end-of-archive blocks is ignored
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - p);
        await this.data(chunk.subarray(p, p + n));
        this.remaining -= n;
        p += n;
        if (this.remaining === 0) await this.finishEntry();
      } else if (this.padding > 0) {
        const n = Math.min(this.padding, chunk.length - p);
        this.padding -= n;
        p += n;
      } else {
        const n = Math.min(BLOCK - this.headerFill, chunk.length - p);
        chunk.copy(this.header, this.headerFill, p, p + n);
        this.headerFill += n;
        p += n;
        if (this.headerFill === BLOCK) {
          this.headerFill = 0;
          await this.startEntry(this.header);
        }
      }
    }
  }

  async end(): Promise<void> {
    if (this.remaining > 0 || this.headerFill > 0 || this.sink) throw new ArchiveError('the tar stream ends inside an entry (truncated)');
    if (!this.ended && this.files === 0) throw new ArchiveError('it holds no tar entries');
    if (this.skippedLinks > 0) this.log?.(`skipped ${this.skippedLinks} links and special files`);
  }

  /** Closes an open output file after a failure. */
  async abort(): Promise<void> {
    if (this.sink?.kind === 'file') await this.sink.fh.close().catch(() => undefined);
    this.sink = undefined;
  }

  private async startEntry(h: Buffer): Promise<void> {
    if (h.every((b) => b === 0)) {
      this.ended = true; // the first of the two zero blocks ends the archive
      return;
    }
    const stored = octal(h, 148, 8);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
    if (stored !== sum) throw new ArchiveError(this.files === 0 ? 'it is not a tar archive (bad header checksum)' : 'a tar header fails its checksum');

    const type = String.fromCharCode(h[156] || 0x30);
    let size = tarSize(h);
    let name = cString(h, 0, 100);
    if (h.toString('latin1', 257, 262) === 'ustar') {
      const prefix = cString(h, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    if (this.nextPath !== undefined && type !== 'x' && type !== 'L' && type !== 'g' && type !== 'K') name = this.nextPath;
    if (this.nextSize !== undefined && type !== 'x' && type !== 'L' && type !== 'g' && type !== 'K') size = this.nextSize;

    this.remaining = size;
    this.padding = (BLOCK - (size % BLOCK)) % BLOCK;
    if (type === 'x' || type === 'L') {
      if (size > 1 << 20) throw new ArchiveError('an extended header is implausibly large');
      this.sink = { kind: 'meta', type, parts: [] };
    } else {
      this.nextPath = undefined;
      this.nextSize = undefined;
      const rel = safeRelative(name);
      if ((type === '0' || type === '7') && rel !== undefined) {
        const out = join(await this.mkdir(posix.dirname(rel)), posix.basename(rel));
        this.sink = { kind: 'file', fh: await fs.open(out, 'w') };
        this.files++;
        this.bytes += size;
      } else {
        if (type === '5' && rel !== undefined) await this.mkdir(rel);
        else if ('12346'.includes(type)) this.skippedLinks++; // links, devices, fifos: not images
        this.sink = { kind: 'skip' };
      }
    }
    if (size === 0) await this.finishEntry();
  }

  private async data(bytes: Buffer): Promise<void> {
    const s = this.sink;
    if (s?.kind === 'file') await s.fh.write(bytes);
    else if (s?.kind === 'meta') s.parts.push(Buffer.from(bytes));
  }

  private async finishEntry(): Promise<void> {
    const s = this.sink;
    this.sink = undefined;
    if (s?.kind === 'file') await s.fh.close();
    if (s?.kind === 'meta') {
      const text = Buffer.concat(s.parts);
      if (s.type === 'L') this.nextPath = cString(text, 0, text.length);
      else this.applyPax(text);
    }
  }

  /** pax records: "<len> <key>=<value>\n"; path and size override the next header. */
  private applyPax(text: Buffer): void {
    let p = 0;
    while (p < text.length) {
      const space = text.indexOf(0x20, p);
      const len = Number(text.toString('latin1', p, space));
      if (space < 0 || !Number.isSafeInteger(len) || len <= 0 || p + len > text.length) throw new ArchiveError('a malformed pax header');
      const record = text.toString('utf8', space + 1, p + len - 1);
      const eq = record.indexOf('=');
      const key = record.slice(0, eq);
      const value = record.slice(eq + 1);
      if (key === 'path') this.nextPath = value;
      if (key === 'size') this.nextSize = Number(value);
      p += len;
    }
  }
}

function cString(buf: Buffer, start: number, length: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString('utf8', start, end < 0 || end > start + length ? start + length : end);
}

function octal(buf: Buffer, start: number, length: number): number {
  const s = buf.toString('latin1', start, start + length).replace(/[\0 ]+$/g, '').replace(/^[\0 ]+/, '');
  if (!/^[0-7]*$/.test(s)) throw new ArchiveError('it is not a tar archive (bad numeric field)');
  return s === '' ? 0 : parseInt(s, 8);
}

/** The size field: octal, or GNU base-256 (high bit set) for files of 8 GB and more. */
function tarSize(h: Buffer): number {
  if (h[124] & 0x80) {
    let v = h[124] & 0x7f;
    for (let i = 125; i < 136; i++) v = v * 256 + h[i];
    if (!Number.isSafeInteger(v)) throw new ArchiveError('a tar entry size is out of range');
    return v;
  }
  return octal(h, 124, 12);
}

/** Exposed for tests: where `downloadDataset` puts an archive and its images. */
export function datasetPaths(spec: DatasetSpec, dir: string): { archive: string; part: string; target: string; marker: string } {
  const archive = join(dir, spec.file);
  const target = join(dir, spec.name);
  return { archive, part: `${archive}.part`, target, marker: join(target, COMPLETE_MARKER) };
}

