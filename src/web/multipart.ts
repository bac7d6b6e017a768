/**
 * Reads a multipart/form-data request body into memory with hard limits, so that a client
 * cannot make the server buffer more than `files * maxFileBytes` plus a few small fields.
 */
import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import { HttpError } from './http-error.js';

export interface UploadedFile {
  field: string;
  filename: string;
  mimeType: string;
  data: Buffer;
}

export interface MultipartBody {
  fields: Map<string, string>;
  files: UploadedFile[];
}

export interface MultipartLimits {
  /** Largest accepted file, in bytes. */
  maxFileBytes: number;
  /** Most files in one request. */
  maxFiles: number;
  /** Most non-file fields in one request. */
  maxFields: number;
  /** Longest accepted field value, in bytes. */
  maxFieldBytes: number;
}

function mib(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(n % (1024 * 1024) ? 1 : 0)} MiB` : `${n} bytes`;
}

export function parseMultipart(req: IncomingMessage, limits: MultipartLimits): Promise<MultipartBody> {
  const type = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data\b/i.test(type)) {
    return Promise.reject(new HttpError(415, `send the request as multipart/form-data (got ${type ? JSON.stringify(type.split(';')[0]) : 'no Content-Type'})`));
  }
  const declared = Number(req.headers['content-length']);
  const maxBody = limits.maxFiles * limits.maxFileBytes + limits.maxFields * (limits.maxFieldBytes + 1024) + 64 * 1024;
  if (Number.isFinite(declared) && declared > maxBody) {
    return Promise.reject(new HttpError(413, `the request is ${mib(declared)}, more than the ${mib(maxBody)} this server accepts`));
  }

  return new Promise<MultipartBody>((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({
        headers: req.headers,
        limits: {
          fileSize: limits.maxFileBytes,
          files: limits.maxFiles,
          fields: limits.maxFields,
          fieldSize: limits.maxFieldBytes,
          parts: limits.maxFiles + limits.maxFields,
          headerPairs: 200,
        },
      });
    } catch (err) {
      reject(new HttpError(400, `malformed multipart request: ${(err as Error).message}`));
      return;
    }
    const fields = new Map<string, string>();
    const files: UploadedFile[] = [];
    let failed = false;
    const fail = (err: HttpError) => {
      if (failed) return;
      failed = true;
      req.unpipe(bb);
      // keep reading (and discarding) what the client still sends, so it gets to see our answer
      req.resume();
      reject(err);
    };

    bb.on('field', (name, value, info) => {
      if (info.valueTruncated) return fail(new HttpError(413, `field "${name}" is longer than ${limits.maxFieldBytes} bytes`));
      if (fields.has(name)) return fail(new HttpError(400, `field "${name}" is given more than once`));
      fields.set(name, value);
    });
    bb.on('file', (name, stream, info) => {
      const chunks: Buffer[] = [];
      let size = 0;
      stream.on('data', (c: Buffer) => { chunks.push(c); size += c.length; });
      stream.on('limit', () => fail(new HttpError(413, `file "${info.filename ?? name}" is larger than the ${mib(limits.maxFileBytes)} upload limit`)));
      stream.on('error', (err: Error) => fail(new HttpError(400, `upload of "${name}" failed: ${err.message}`)));
      stream.on('end', () => {
        if (failed) return;
        files.push({ field: name, filename: info.filename ?? name, mimeType: info.mimeType, data: Buffer.concat(chunks, size) });
      });
    });
    bb.on('filesLimit', () => fail(new HttpError(413, `too many files: at most ${limits.maxFiles} per request`)));
    bb.on('fieldsLimit', () => fail(new HttpError(413, `too many fields: at most ${limits.maxFields} per request`)));
    bb.on('partsLimit', () => fail(new HttpError(413, 'too many parts in the multipart body')));
    bb.on('error', (err: Error) => fail(new HttpError(400, `malformed multipart request: ${err.message}`)));
    bb.on('close', () => { if (!failed) resolve({ fields, files }); });
    req.on('aborted', () => fail(new HttpError(400, 'the upload was aborted')));
    req.on('error', (err) => fail(new HttpError(400, `the upload failed: ${err.message}`)));
    req.pipe(bb);
  });
}
