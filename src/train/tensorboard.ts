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
import { BufferedAppendFile, commonWriteProblem, errnoCode } from './append-file.js';
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

function logdirError(logdir: string, err: unknown): Error {
  const what = `cannot write TensorBoard logs to ${quoteName(logdir)}`;
  const problem = commonWriteProblem(err);
  if (problem) return new UserError(`${what}: ${problem}`);
  const code = errnoCode(err);
  if (code === 'ENOTDIR' || code === 'EEXIST') return new UserError(`${what}: it is a file, not a folder; choose another log folder`);
  const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
  return new UserError(`${what} (${message}); choose another log folder`);
}

/**
 * Writes scalars and images for TensorBoard. Events are buffered and written with synchronous
 * appends on flush(), when the buffer grows large, and every `flushSecs` (on a timer that does
 * not keep the process alive). Call close() at the end of the run.
 */
export class EventWriter {
  /** The event file's path. */
  readonly file: string;
  private readonly out: BufferedAppendFile;

  constructor(
    readonly logdir: string,
    opts: EventWriterOptions = {},
  ) {
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
    this.file = file;
    this.out = new BufferedAppendFile(fd, {
      flushSecs: opts.flushSecs ?? 10,
      maxBufferBytes: opts.maxBufferBytes ?? 1 << 20,
      writeError: (err) => logdirError(logdir, err),
    });
    try {
      this.write({ file_version: 'brain.Event:2' }, 0);
      this.flush();
    } catch (err) {
      this.out.close();
      throw err;
    }
  }

  /** Appends one event (wall_time and step are filled in). */
  private write(fields: Record<string, unknown>, step: number, wallTime = Date.now() / 1000): void {
    this.out.checkWritable(`the event writer for ${this.logdir} is closed`);
    if (!Number.isSafeInteger(step)) throw new RangeError(`step must be an integer, got ${step}`);
    const message = EventType.fromObject({ wall_time: wallTime, step, ...fields });
    this.out.append(encodeRecord(EventType.encode(message).finish()));
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

  /** Writes everything buffered to the file. */
  flush(): void {
    this.out.flush();
  }

  close(): void {
    this.out.close();
  }
}
