/**
 * A training log with one JSON object per line: `{"step":100,"time":1718000000.123,"loss":…}`.
 * The file is opened in append mode, so a resumed run adds to it and a crash never loses lines
 * already written; lines are buffered and written every `flushSecs` (and on flush()/close()).
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import { quoteName } from '../image/io.js';

export type LogValue = number | string | boolean | null;

export interface JsonlLogOptions {
  /** Write buffered lines at least this often, in seconds. Default 5. */
  flushSecs?: number;
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

function logError(file: string, err: unknown): Error {
  switch (errnoCode(err)) {
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new UserError(`cannot write the training log ${quoteName(file)}: permission denied; choose a folder you can write to`);
    case 'EISDIR':
      return new UserError(`cannot write the training log ${quoteName(file)}: it is a folder; give a file name such as train.jsonl`);
    case 'ENOSPC':
    case 'EDQUOT':
      return new UserError(`cannot write the training log ${quoteName(file)}: the disk is full; free some space or log elsewhere`);
    default: {
      const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
      return new UserError(`cannot write the training log ${quoteName(file)} (${message}); choose another file`);
    }
  }
}

/**
 * JSON has no NaN or Infinity (JSON.stringify would write null, hiding a diverged loss), so
 * those are written as the strings "NaN", "Infinity" and "-Infinity".
 */
function jsonValue(v: LogValue): LogValue {
  return typeof v === 'number' && !Number.isFinite(v) ? String(v) : v;
}

export class JsonlLog {
  private fd: number | null;
  private lines: string[] = [];
  private readonly timer: NodeJS.Timeout;
  private failure: unknown = null;
  private readonly onExit = (): void => {
    try {
      this.flush();
    } catch {
      // Nothing can be reported while the process exits.
    }
  };

  /** Opens (creating it and its folder if needed) `file` for appending. */
  constructor(
    readonly file: string,
    opts: JsonlLogOptions = {},
  ) {
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      this.fd = fs.openSync(file, 'a');
      // A previous run killed in the middle of a write may have left a partial last line:
      // start on a fresh line so that the next record stays parseable.
      const size = fs.fstatSync(this.fd).size;
      if (size > 0) {
        const last = Buffer.alloc(1);
        const rfd = fs.openSync(file, 'r');
        try {
          fs.readSync(rfd, last, 0, 1, size - 1);
        } finally {
          fs.closeSync(rfd);
        }
        if (last[0] !== 0x0a) fs.writeSync(this.fd, '\n');
      }
    } catch (err) {
      throw logError(file, err);
    }
    const flushSecs = opts.flushSecs ?? 5;
    this.timer = setInterval(() => {
      try {
        this.flush();
      } catch (err) {
        this.failure ??= err;
      }
    }, Math.max(0.01, flushSecs) * 1000);
    this.timer.unref();
    process.on('exit', this.onExit);
  }

  /** Appends `{step, time, ...values}`; time is the wall clock in Unix seconds (ms resolution). */
  log(step: number, values: Record<string, LogValue>): void {
    if (this.fd === null) throw new Error(`the training log ${this.file} is closed`);
    this.throwFailure();
    const record: Record<string, LogValue> = { step, time: Date.now() / 1000 };
    for (const [key, value] of Object.entries(values)) {
      if (key !== 'step' && key !== 'time') record[key] = jsonValue(value);
    }
    this.lines.push(JSON.stringify(record) + '\n');
  }

  private throwFailure(): void {
    if (this.failure !== null) {
      const err = this.failure;
      this.failure = null;
      throw err;
    }
  }

  /** Writes the buffered lines to the file. */
  flush(): void {
    this.throwFailure();
    if (this.fd === null || this.lines.length === 0) return;
    const data = Buffer.from(this.lines.join(''));
    this.lines = [];
    try {
      for (let off = 0; off < data.length; ) off += fs.writeSync(this.fd, data, off);
    } catch (err) {
      throw logError(this.file, err);
    }
  }

  close(): void {
    if (this.fd === null) return;
    clearInterval(this.timer);
    process.off('exit', this.onExit);
    try {
      this.flush();
    } finally {
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }
}
