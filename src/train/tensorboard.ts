/**
 * A TensorBoard event-file writer, with no TensorFlow: `tensorflow.Event` protos (defined here by
 * reflection with protobufjs) framed as TFRecords in `events.out.tfevents.<time>.<host>`.
 *
 * TFRecord framing of each record: uint64 little-endian length, masked CRC-32C of those 8
 * bytes (uint32 LE), the data, masked CRC-32C of the data (uint32 LE).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import protobuf from 'protobufjs';
import { UserError } from '../errors.js';
import { quoteName } from '../image/io.js';
import { crc32c, maskCrc32c } from './crc32c.js';

/** The subset of tensorflow/core/util/event.proto and framework/summary.proto written here. */
export const EVENT_PROTO_JSON = {
  nested: {
    tensorflow: {
      nested: {
        Event: {
          oneofs: { what: { oneof: ['file_version', 'summary', 'session_log'] } },
          fields: {
            wall_time: { type: 'double', id: 1 },
            step: { type: 'int64', id: 2 },
            file_version: { type: 'string', id: 3 },
            summary: { type: 'Summary', id: 5 },
            session_log: { type: 'SessionLog', id: 6 },
          },
        },
        SessionLog: {
          fields: {
            status: { type: 'SessionStatus', id: 1 },
            checkpoint_path: { type: 'string', id: 2 },
            msg: { type: 'string', id: 3 },
          },
          nested: {
            SessionStatus: { values: { STATUS_UNSPECIFIED: 0, START: 1, STOP: 2, CHECKPOINT: 3 } },
          },
        },
        Summary: {
          fields: {
            value: { rule: 'repeated', type: 'Value', id: 1 },
          },
          nested: {
            Image: {
              fields: {
                height: { type: 'int32', id: 1 },
                width: { type: 'int32', id: 2 },
                colorspace: { type: 'int32', id: 3 },
                encoded_image_string: { type: 'bytes', id: 4 },
              },
            },
            Value: {
              oneofs: { value: { oneof: ['simple_value', 'image'] } },
              fields: {
                tag: { type: 'string', id: 1 },
                simple_value: { type: 'float', id: 2 },
                image: { type: 'Image', id: 4 },
              },
            },
          },
        },
      },
    },
  },
};

const root = protobuf.Root.fromJSON(EVENT_PROTO_JSON);
/** The reflected `tensorflow.Event` message type (also handy for reading event files back). */
export const EventType = root.lookupType('tensorflow.Event');

/** Frames one record as a TFRecord. */
export function encodeRecord(data: Uint8Array): Buffer {
  const out = Buffer.alloc(8 + 4 + data.length + 4);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskCrc32c(crc32c(out.subarray(0, 8))), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskCrc32c(crc32c(data)), 12 + data.length);
  return out;
}

export interface EventWriterOptions {
  /** Write buffered events to disk at least this often, in seconds. Default 10. */
  flushSecs?: number;
  /** Also write when this many bytes are buffered. Default 1 MiB. */
  maxBufferBytes?: number;
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

function logdirError(logdir: string, err: unknown): Error {
  const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
  switch (errnoCode(err)) {
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new UserError(`cannot write TensorBoard logs to ${quoteName(logdir)}: permission denied; choose a folder you can write to`);
    case 'ENOTDIR':
    case 'EEXIST':
      return new UserError(`cannot write TensorBoard logs to ${quoteName(logdir)}: it is a file, not a folder; choose another log folder`);
    case 'ENOSPC':
    case 'EDQUOT':
      return new UserError(`cannot write TensorBoard logs to ${quoteName(logdir)}: the disk is full; free some space or log elsewhere`);
    default:
      return new UserError(`cannot write TensorBoard logs to ${quoteName(logdir)} (${message}); choose another log folder`);
  }
}

/**
 * Writes scalars and images for TensorBoard. Events are buffered and written with synchronous
 * appends on flush(), when the buffer grows large, and every `flushSecs` (on a timer that does
 * not keep the process alive). Call close() at the end of the run.
 */
export class EventWriter {
  /** The event file's path. */
  readonly file: string;
  private fd: number | null;
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private readonly maxBufferBytes: number;
  private readonly timer: NodeJS.Timeout;
  private failure: unknown = null;

  constructor(
    readonly logdir: string,
    opts: EventWriterOptions = {},
  ) {
    this.maxBufferBytes = opts.maxBufferBytes ?? 1 << 20;
    const host = os.hostname().replace(/[\\/\s]/g, '_') || 'localhost';
    const base = `events.out.tfevents.${String(Math.floor(Date.now() / 1000)).padStart(10, '0')}.${host}`;
    try {
      fs.mkdirSync(logdir, { recursive: true });
    } catch (err) {
      throw logdirError(logdir, err);
    }
    // Two writers started in the same second (a quick restart) get distinct files.
    let fd: number | null = null;
    let file = path.join(logdir, base);
    for (let n = 0; fd === null; n++) {
      file = path.join(logdir, n === 0 ? base : `${base}.${process.pid}.${n}`);
      try {
        fd = fs.openSync(file, 'wx');
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST' || n > 100) throw logdirError(logdir, err);
      }
    }
    this.fd = fd;
    this.file = file;
    this.write({ file_version: 'brain.Event:2' }, 0);
    this.flush();
    const flushSecs = opts.flushSecs ?? 10;
    // A failure on the timer (disk full) is kept and thrown by the next call, not left uncaught.
    this.timer = setInterval(() => {
      try {
        this.flush();
      } catch (err) {
        this.failure ??= err;
      }
    }, Math.max(0.01, flushSecs) * 1000);
    this.timer.unref();
  }

  /** Appends one event (wall_time and step are filled in). */
  private write(fields: Record<string, unknown>, step: number, wallTime = Date.now() / 1000): void {
    if (this.fd === null) throw new Error(`the event writer for ${this.logdir} is closed`);
    this.throwFailure();
    if (!Number.isSafeInteger(step)) throw new RangeError(`step must be an integer, got ${step}`);
    const message = EventType.fromObject({ wall_time: wallTime, step, ...fields });
    const record = encodeRecord(EventType.encode(message).finish());
    this.buffered.push(record);
    this.bufferedBytes += record.length;
    if (this.bufferedBytes >= this.maxBufferBytes) this.flush();
  }

  /** Logs a scalar (stored as float32, as TensorBoard does). */
  scalar(tag: string, value: number, step: number): void {
    this.write({ summary: { value: [{ tag, simple_value: value }] } }, step);
  }

  /** Logs several scalars of one step in one event. */
  scalars(values: Record<string, number>, step: number): void {
    const value = Object.entries(values).map(([tag, v]) => ({ tag, simple_value: v }));
    if (value.length > 0) this.write({ summary: { value } }, step);
  }

  /** Logs an encoded image (PNG or JPEG bytes) of the given size, shown in the Images tab. */
  image(tag: string, png: Uint8Array, width: number, height: number, step: number): void {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
      throw new RangeError(`image size must be positive integers, got ${width}x${height}`);
    }
    const image = { height, width, colorspace: 3, encoded_image_string: png };
    this.write({ summary: { value: [{ tag, image }] } }, step);
  }

  /**
   * Marks a (re)start at `step`. TensorBoard's event loader uses it to drop events at this step
   * and later from an earlier, interrupted run whose steps are being redone after a resume.
   */
  sessionStart(step: number): void {
    this.write({ session_log: { status: 1 } }, step);
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
    if (this.fd === null || this.buffered.length === 0) return;
    const data = Buffer.concat(this.buffered);
    this.buffered = [];
    this.bufferedBytes = 0;
    try {
      for (let off = 0; off < data.length; ) off += fs.writeSync(this.fd, data, off);
    } catch (err) {
      throw logdirError(this.logdir, err);
    }
  }

  close(): void {
    if (this.fd === null) return;
    clearInterval(this.timer);
    try {
      this.flush();
    } finally {
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }
}
