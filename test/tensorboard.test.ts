import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import protobuf from 'protobufjs';
import sharp from 'sharp';
import { crc32c, maskCrc32c, unmaskCrc32c } from '../src/train/crc32c.js';
import { JsonlLog } from '../src/train/jsonl-log.js';
import { EventWriter } from '../src/train/tensorboard.js';

let dir: string;
before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'adain-tensorboard-test-'));
});
after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/**
 * An independent TFRecord reader: checks every record's length and both masked CRCs (with a
 * bit-by-bit CRC-32C, not the table-driven one under test) and returns the payloads.
 */
function bitwiseCrc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function mask(crc: number): number {
  const rotated = ((crc >>> 15) | (crc << 17)) >>> 0;
  return (rotated + 0xa282ead8) % 0x100000000;
}

function readRecords(buf: Buffer): Buffer[] {
  const records: Buffer[] = [];
  let off = 0;
  while (off < buf.length) {
    assert.ok(off + 12 <= buf.length, `record header at ${off} is cut short`);
    const length = Number(buf.readBigUInt64LE(off));
    assert.equal(buf.readUInt32LE(off + 8), mask(bitwiseCrc32c(buf.subarray(off, off + 8))), `length CRC of the record at ${off}`);
    const start = off + 12;
    assert.ok(start + length + 4 <= buf.length, `record at ${off} is cut short`);
    const data = buf.subarray(start, start + length);
    assert.equal(buf.readUInt32LE(start + length), mask(bitwiseCrc32c(data)), `data CRC of the record at ${off}`);
    records.push(data);
    off = start + length + 4;
  }
  return records;
}

/** The Event message, declared independently of the writer's definition. */
const testRoot = protobuf.parse(`
syntax = "proto3";
package t;
message Image { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
message Value { string tag = 1; oneof value { float simple_value = 2; Image image = 4; } }
message Summary { repeated Value value = 1; }
message SessionLog { int32 status = 1; }
message Event { double wall_time = 1; int64 step = 2; oneof what { string file_version = 3; Summary summary = 5; SessionLog session_log = 6; } }
`, { keepCase: true }).root;
const Event = testRoot.lookupType('t.Event');

interface DecodedEvent {
  wall_time?: number;
  step?: number;
  file_version?: string;
  summary?: { value: { tag: string; simple_value?: number; image?: { height: number; width: number; colorspace: number; encoded_image_string: Buffer } }[] };
  session_log?: { status: number };
}

function decodeEvents(file: string): DecodedEvent[] {
  return readRecords(readFileSync(file)).map((r) => Event.toObject(Event.decode(r), { longs: Number }) as DecodedEvent);
}

describe('crc32c', () => {
  test('matches the standard check value and known vectors', () => {
    assert.equal(crc32c('123456789'), 0xe3069283);
    assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
    assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43); // 32 bytes of 0xff
    assert.equal(crc32c(''), 0);
  });

  test('agrees with a bit-by-bit CRC at every length and alignment, and continues', () => {
    const bytes = new Uint8Array(67).map((_, i) => (i * 73 + 11) & 0xff);
    for (let start = 0; start < 4; start++) {
      for (let end = start; end <= bytes.length; end += 5) {
        assert.equal(crc32c(bytes.subarray(start, end)), bitwiseCrc32c(bytes.subarray(start, end)));
      }
    }
    assert.equal(crc32c(bytes.subarray(30), crc32c(bytes.subarray(0, 30))), crc32c(bytes));
  });

  test('masking follows the TFRecord definition and inverts', () => {
    for (const crc of [0, 1, 0xe3069283, 0xffffffff]) {
      assert.equal(maskCrc32c(crc), mask(crc));
      assert.equal(unmaskCrc32c(maskCrc32c(crc)), crc);
    }
  });
});

describe('EventWriter', () => {
  test('writes scalars and an image that read back with valid framing', async () => {
    const logdir = path.join(dir, 'run1');
    const png = await sharp({ create: { width: 5, height: 3, channels: 3, background: '#336699' } }).png().toBuffer();
    const writer = new EventWriter(logdir);
    assert.match(path.basename(writer.file), /^events\.out\.tfevents\.\d{10}\..+$/);
    assert.equal(path.dirname(writer.file), logdir);
    writer.scalar('loss/total', 1.5, 0);
    writer.scalar('loss/total', 0.25, 10);
    writer.scalars({ 'loss/content': 3, 'loss/style': 0.125 }, 10);
    writer.image('samples/stylised', png, 5, 3, 10);
    writer.sessionStart(20);
    writer.scalar('lr', Number.NaN, 20);
    writer.close();
    writer.close(); // idempotent

    const events = decodeEvents(writer.file);
    assert.equal(events.length, 7);
    assert.equal(events[0].file_version, 'brain.Event:2');
    const now = Date.now() / 1000;
    for (const e of events) assert.ok(e.wall_time! > now - 60 && e.wall_time! <= now + 1);

    const values = events.slice(1).map((e) => ({ step: e.step ?? 0, values: e.summary?.value ?? [] }));
    assert.deepEqual(values[0], { step: 0, values: [{ tag: 'loss/total', simple_value: 1.5 }] });
    assert.deepEqual(values[1], { step: 10, values: [{ tag: 'loss/total', simple_value: 0.25 }] });
    assert.deepEqual(values[2], {
      step: 10,
      values: [
        { tag: 'loss/content', simple_value: 3 },
        { tag: 'loss/style', simple_value: 0.125 },
      ],
    });
    const image = events[4].summary!.value[0];
    assert.equal(events[4].step, 10);
    assert.equal(image.tag, 'samples/stylised');
    assert.equal(image.image!.width, 5);
    assert.equal(image.image!.height, 3);
    assert.equal(image.image!.colorspace, 3);
    assert.ok(Buffer.from(image.image!.encoded_image_string).equals(png));
    assert.equal(events[5].step, 20);
    assert.equal(events[5].session_log!.status, 1);
    assert.ok(Number.isNaN(events[6].summary!.value[0].simple_value));
  });

  test('a zero scalar is stored explicitly and big steps survive', () => {
    const writer = new EventWriter(path.join(dir, 'run2'));
    writer.scalar('zero', 0, 2 ** 40 + 3);
    writer.flush();
    const events = decodeEvents(writer.file); // readable before close
    writer.close();
    assert.equal(events.length, 2);
    assert.equal(events[1].step, 2 ** 40 + 3);
    assert.ok('simple_value' in events[1].summary!.value[0], 'simple_value must be present even when 0');
    assert.equal(events[1].summary!.value[0].simple_value, 0);
  });

  test('two writers in the same folder and second get different files', () => {
    const logdir = path.join(dir, 'run3');
    const a = new EventWriter(logdir);
    const b = new EventWriter(logdir);
    a.close();
    b.close();
    assert.notEqual(a.file, b.file);
  });

  test('a log folder that is a file is a one-line UserError', async () => {
    const file = path.join(dir, 'not-a-folder');
    await fs.writeFile(file, 'x');
    assert.throws(() => new EventWriter(file), (err: Error) => err.name === 'UserError' && /not-a-folder/.test(err.message) && !err.message.includes('\n'));
  });

  const python = '/usr/bin/python3';
  const hasTensorboard = spawnSync(python, ['-c', 'import tensorboard'], { stdio: 'ignore' }).status === 0;
  test('TensorBoard reads the file', { skip: hasTensorboard ? false : 'tensorboard is not installed for /usr/bin/python3' }, async () => {
    const logdir = path.join(dir, 'run4');
    const png = await sharp({ create: { width: 4, height: 2, channels: 3, background: '#ff0000' } }).png().toBuffer();
    const writer = new EventWriter(logdir);
    writer.scalar('loss', 0.5, 1);
    writer.scalar('loss', 0.25, 2);
    writer.image('sample', png, 4, 2, 2);
    writer.close();
    const script = `
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={'images': 0, 'scalars': 0})
acc.Reload()
print(json.dumps({'loss': [[s.step, s.value] for s in acc.Scalars('loss')],
                  'images': [[i.step, i.width, i.height, len(i.encoded_image_string)] for i in acc.Images('sample')]}))
`;
    const out = JSON.parse(execFileSync(python, ['-c', script, logdir], { encoding: 'utf8' }));
    assert.deepEqual(out.loss, [
      [1, 0.5],
      [2, 0.25],
    ]);
    assert.deepEqual(out.images, [[2, 4, 2, png.length]]);
  });
});

describe('JsonlLog', () => {
  test('appends one object per line and keeps earlier runs', async () => {
    const file = path.join(dir, 'logs', 'train.jsonl');
    const first = new JsonlLog(file);
    first.log(1, { loss: 0.5, lr: 1e-4 });
    first.log(2, { loss: Number.NaN, note: 'x' });
    first.close();
    // A crash in the middle of a write leaves a partial line; the next run starts a new one.
    await fs.appendFile(file, '{"step":3,"lo');
    const second = new JsonlLog(file);
    second.log(3, { loss: 0.25, step: 99 });
    second.flush();
    const text = await fs.readFile(file, 'utf8');
    second.close();
    const lines = text.split('\n');
    assert.equal(lines.at(-1), '');
    assert.equal(lines.length, 5);
    const rows = [lines[0], lines[1], lines[3]].map((l) => JSON.parse(l));
    assert.deepEqual(
      rows.map(({ time, ...rest }) => (assert.equal(typeof time, 'number'), rest)),
      [
        { step: 1, loss: 0.5, lr: 1e-4 },
        { step: 2, loss: 'NaN', note: 'x' },
        { step: 3, loss: 0.25 },
      ],
    );
    assert.equal(lines[2], '{"step":3,"lo');
  });
});
