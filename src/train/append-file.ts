/**
 * An append-only file written in batches, shared by the training log (jsonl-log.ts) and the
 * TensorBoard event writer (tensorboard.ts): chunks are buffered and written with synchronous
 * writes on flush(), when `maxBufferBytes` are buffered, every `flushSecs` (on a timer that
 * does not keep the process alive) and on close(). A failure on the timer (disk full) is kept
 * and thrown by the next call instead of being left uncaught.
 */
import fs from 'node:fs';

/** The `code` of a Node system error (ENOENT, EACCES, ...), if any. */
export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

/** Why a write failed, in the user's terms, for the errors every log file shares (no permission, disk full); null for others. */
export function commonWriteProblem(err: unknown): string | null {
  switch (errnoCode(err)) {
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return 'permission denied; choose a folder you can write to';
    case 'ENOSPC':
    case 'EDQUOT':
      return 'the disk is full; free some space or log elsewhere';
    default:
      return null;
  }
}

export interface BufferedFileOptions {
  /** Write buffered chunks at least this often, in seconds. */
  flushSecs: number;
  /** Also write when this many bytes are buffered. Default: no limit. */
  maxBufferBytes?: number;
  /** Also write what is buffered when the process exits. Default false. */
  flushOnExit?: boolean;
  /** The error to throw for a failed write (one that names the file for the user). */
  writeError: (err: unknown) => Error;
}

export class BufferedAppendFile {
  private fd: number | null;
  private chunks: Buffer[] = [];
  private bytes = 0;
  private readonly maxBufferBytes: number;
  private readonly writeError: (err: unknown) => Error;
  private readonly timer: NodeJS.Timeout;
  private failure: unknown = null;
  private readonly onExit: (() => void) | null;

  /** Takes over `fd`, an open file descriptor, and closes it on close(). */
  constructor(fd: number, opts: BufferedFileOptions) {
    this.fd = fd;
    this.maxBufferBytes = opts.maxBufferBytes ?? Infinity;
    this.writeError = opts.writeError;
    this.timer = setInterval(() => {
      try {
        this.flush();
      } catch (err) {
        this.failure ??= err;
      }
    }, Math.max(0.01, opts.flushSecs) * 1000);
    this.timer.unref();
    this.onExit = opts.flushOnExit
      ? () => {
          try {
            this.flush();
          } catch {
            // Nothing can be reported while the process exits.
          }
        }
      : null;
    if (this.onExit) process.on('exit', this.onExit);
  }

  /**
   * Throws `Error(closedMessage)` once closed, else a failure kept from the timer: call before
   * preparing a chunk.
   */
  checkWritable(closedMessage: string): void {
    if (this.fd === null) throw new Error(closedMessage);
    this.throwFailure();
  }

  /** Buffers `chunk`, writing everything when the buffer is full. */
  append(chunk: Buffer | string): void {
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.chunks.push(data);
    this.bytes += data.length;
    if (this.bytes >= this.maxBufferBytes) this.flush();
  }

  private throwFailure(): void {
    if (this.failure !== null) {
      const err = this.failure;
      this.failure = null;
      throw err;
    }
  }

  /** Writes everything buffered to the file. */
  flush(): void {
    this.throwFailure();
    if (this.fd === null || this.chunks.length === 0) return;
    const data = Buffer.concat(this.chunks);
    this.chunks = [];
    this.bytes = 0;
    try {
      for (let off = 0; off < data.length; ) off += fs.writeSync(this.fd, data, off);
    } catch (err) {
      throw this.writeError(err);
    }
  }

  /** Flushes and closes the file; a second call does nothing. */
  close(): void {
    if (this.fd === null) return;
    clearInterval(this.timer);
    if (this.onExit) process.off('exit', this.onExit);
    try {
      this.flush();
    } finally {
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }
}
