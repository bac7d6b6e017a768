/**
 * The multipart body of POST /api/stylize-video: the clip streamed to disk as it arrives (a clip
 * can be hundreds of MiB), the styles and fields into memory under the image API's limits.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import busboy from 'busboy';
import { HttpError } from './http-error.js';
import type { UploadedFile } from './multipart.js';
import { MAX_STYLES } from './stylize-api.js';

export interface ReceivedVideo {
  path: string;
  filename: string;
  bytes: number;
}

export interface VideoUpload {
  fields: Map<string, string>;
  /** Every file but the clip (styles, and misplaced ones that the field check refuses). */
  files: UploadedFile[];
  content?: ReceivedVideo;
  /** A second "content" file, refused by the field check. */
  extraContent: boolean;
}

export interface UploadLimits {
  maxVideoBytes: number;
  maxImageBytes: number;
}

export function mib(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(n % (1024 * 1024) ? 1 : 0)} MiB` : `${n} bytes`;
}

/** The clip keeps its extension (ffmpeg's probing weighs it), if it is a plain one. */
function contentFileName(filename: string | undefined): string {
  const ext = path.extname(filename ?? '').toLowerCase();
  return /^\.[a-z0-9]{1,5}$/.test(ext) ? `content${ext}` : 'content';
}

const MAX_FIELDS = 16;
const MAX_FIELD_BYTES = 1024;

/**
 * Reads the multipart body: the "content" file goes to `dir` as it arrives (with backpressure,
 * so a fast client cannot fill the memory), every other file into memory under the image limit.
 */
export function receiveUpload(req: IncomingMessage, dir: string, limits: UploadLimits, onBytes: (n: number) => void): Promise<VideoUpload> {
  const type = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data\b/i.test(type)) {
    return Promise.reject(new HttpError(415, `send the request as multipart/form-data (got ${type ? JSON.stringify(type.split(';')[0]) : 'no Content-Type'})`));
  }
  const declared = Number(req.headers['content-length']);
  const maxBody = limits.maxVideoBytes + MAX_STYLES * limits.maxImageBytes + MAX_FIELDS * (MAX_FIELD_BYTES + 1024) + 64 * 1024;
  if (Number.isFinite(declared) && declared > maxBody) {
    return Promise.reject(new HttpError(413, `the request is ${mib(declared)}, more than the ${mib(maxBody)} this server accepts (a video of at most ${mib(limits.maxVideoBytes)} and styles of at most ${mib(limits.maxImageBytes)} each)`));
  }
  return new Promise<VideoUpload>((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({
        headers: req.headers,
        limits: {
          fileSize: Math.max(limits.maxVideoBytes, limits.maxImageBytes) + 1,
          files: 1 + MAX_STYLES,
          fields: MAX_FIELDS,
          fieldSize: MAX_FIELD_BYTES,
          parts: 1 + MAX_STYLES + MAX_FIELDS,
          headerPairs: 200,
        },
      });
    } catch (err) {
      reject(new HttpError(400, `malformed multipart request: ${(err as Error).message}`));
      return;
    }
    const upload: VideoUpload = { fields: new Map(), files: [], extraContent: false };
    const writes: Promise<void>[] = [];
    const outputs: WriteStream[] = [];
    let failed = false;
    const fail = (err: Error) => {
      if (failed) return;
      failed = true;
      req.unpipe(bb);
      for (const o of outputs) o.destroy();
      // keep reading (and discarding) what the client still sends, so it gets to see our answer
      req.resume();
      reject(err);
    };
    const tooLarge = (name: string, limit: number, what: string) => fail(new HttpError(413, `file "${name}" is larger than the ${mib(limit)} upload limit for ${what}`));

    bb.on('field', (name, value, info) => {
      if (info.valueTruncated) return fail(new HttpError(413, `field "${name}" is longer than ${MAX_FIELD_BYTES} bytes`));
      if (upload.fields.has(name)) return fail(new HttpError(400, `field "${name}" is given more than once`));
      upload.fields.set(name, value);
    });
    bb.on('file', (name, stream, info) => {
      const label = info.filename || name;
      if (name === 'content' && !upload.content) {
        const file = path.join(dir, contentFileName(info.filename));
        const received: ReceivedVideo = { path: file, filename: info.filename || name, bytes: 0 };
        upload.content = received;
        const out = createWriteStream(file, { flags: 'wx' });
        outputs.push(out);
        writes.push(new Promise<void>((res, rej) => {
          out.on('finish', res);
          out.on('error', (err: NodeJS.ErrnoException) => rej(err.code === 'ENOSPC'
            ? new HttpError(507, 'the server has no disk space left for the upload; try a shorter clip or later')
            : new Error(`cannot store the uploaded video (${err.code ?? err.message})`)));
        }));
        stream.on('data', (c: Buffer) => {
          if (failed) return;
          received.bytes += c.length;
          onBytes(c.length);
          if (received.bytes > limits.maxVideoBytes) return tooLarge(label, limits.maxVideoBytes, 'videos');
          if (!out.write(c)) {
            stream.pause();
            out.once('drain', () => stream.resume());
          }
        });
        stream.on('end', () => out.end());
      } else {
        if (name === 'content') upload.extraContent = true;
        const chunks: Buffer[] = [];
        let size = 0;
        stream.on('data', (c: Buffer) => {
          if (failed) return;
          size += c.length;
          onBytes(c.length);
          if (size > limits.maxImageBytes) return tooLarge(label, limits.maxImageBytes, 'images');
          chunks.push(c);
        });
        stream.on('end', () => {
          if (!failed) upload.files.push({ field: name, filename: info.filename ?? name, mimeType: info.mimeType, data: Buffer.concat(chunks, size) });
        });
      }
      stream.on('limit', () => tooLarge(label, name === 'content' ? limits.maxVideoBytes : limits.maxImageBytes, name === 'content' ? 'videos' : 'images'));
      stream.on('error', (err: Error) => fail(new HttpError(400, `upload of "${name}" failed: ${err.message}`)));
    });
    bb.on('filesLimit', () => fail(new HttpError(413, `too many files: at most ${1 + MAX_STYLES} per request (one video, ${MAX_STYLES} styles)`)));
    bb.on('fieldsLimit', () => fail(new HttpError(413, `too many fields: at most ${MAX_FIELDS} per request`)));
    bb.on('partsLimit', () => fail(new HttpError(413, 'too many parts in the multipart body')));
    bb.on('error', (err: Error) => fail(new HttpError(400, `malformed multipart request: ${err.message}`)));
    bb.on('close', () => {
      if (failed) return;
      Promise.all(writes).then(() => { if (!failed) resolve(upload); }, (err: Error) => fail(err));
    });
    req.on('aborted', () => fail(new HttpError(400, 'the upload was aborted')));
    req.on('error', (err) => fail(new HttpError(400, `the upload failed: ${err.message}`)));
    req.pipe(bb);
  });
}
