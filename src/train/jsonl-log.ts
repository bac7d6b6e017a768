/**
 * A training log with one JSON object per line: `{"step":100,"time":1718000000.123,"loss":…}`.
 * The file is opened in append mode, so a resumed run adds to it and a crash never loses lines
 * already written; lines are buffered and written every `flushSecs` (and on flush()/close()).
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import { quoteName } from '../image/io.js';
import { BufferedAppendFile, commonWriteProblem, errnoCode } from './append-file.js';

export type LogValue = number | string | boolean | null;

export interface JsonlLogOptions {
  /** Write buffered lines at least this often, in seconds. Default 5. */
  flushSecs?: number;
}

function logError(file: string, err: unknown): Error {
  const what = `cannot write the training log ${quoteName(file)}`;
  const problem = commonWriteProblem(err);
  if (problem) return new UserError(`${what}: ${problem}`);
  if (errnoCode(err) === 'EISDIR') return new UserError(`${what}: it is a folder; give a file name such as train.jsonl`);
  const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
  return new UserError(`${what} (${message}); choose another file`);
}

/**
 * JSON has no NaN or Infinity (JSON.stringify would write null, hiding a diverged loss), so
 * those are written as the strings "NaN", "Infinity" and "-Infinity".
 */
function jsonValue(v: LogValue): LogValue {
  return typeof v === 'number' && !Number.isFinite(v) ? String(v) : v;
}

export class JsonlLog {
  private readonly out: BufferedAppendFile;

  /** Opens (creating it and its folder if needed) `file` for appending. */
  constructor(
    readonly file: string,
    opts: JsonlLogOptions = {},
  ) {
    let fd: number;
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fd = fs.openSync(file, 'a');
      // A previous run killed in the middle of a write may have left a partial last line:
      // start on a fresh line so that the next record stays parseable.
      const size = fs.fstatSync(fd).size;
      if (size > 0) {
        const last = Buffer.alloc(1);
        const rfd = fs.openSync(file, 'r');
        try {
          fs.readSync(rfd, last, 0, 1, size - 1);
        } finally {
          fs.closeSync(rfd);
        }
        if (last[0] !== 0x0a) fs.writeSync(fd, '\n');
      }
    } catch (err) {
      throw logError(file, err);
    }
    this.out = new BufferedAppendFile(fd, {
      flushSecs: opts.flushSecs ?? 5,
      flushOnExit: true,
      writeError: (err) => logError(file, err),
    });
  }

  /** Appends `{step, time, ...values}`; time is the wall clock in Unix seconds (ms resolution). */
  log(step: number, values: Record<string, LogValue>): void {
    this.out.checkWritable(`the training log ${this.file} is closed`);
    const record: Record<string, LogValue> = { step, time: Date.now() / 1000 };
    for (const [key, value] of Object.entries(values)) {
      if (key !== 'step' && key !== 'time') record[key] = jsonValue(value);
    }
    this.out.append(JSON.stringify(record) + '\n');
  }

  /** Writes the buffered lines to the file. */
  flush(): void {
    this.out.flush();
  }

  close(): void {
    this.out.close();
  }
}
