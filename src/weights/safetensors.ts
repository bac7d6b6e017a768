/**
 * The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
 * header length, a JSON header (padded with spaces to 8 bytes), then the raw tensor bytes.
 * We write float32 only; we read F32, F16, BF16 and F64 (converted to float32).
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { readWeightsFile, WEIGHTS_HINT } from './file.js';
import { decodeFloats, FLOAT_BYTES, type FloatDtype } from './float-decode.js';
import { numel, type TensorMap } from './tensor.js';

const DTYPES: Record<string, FloatDtype> = { F32: 'f32', F16: 'f16', BF16: 'bf16', F64: 'f64' };

export interface Safetensors {
  tensors: TensorMap;
  metadata: Record<string, string>;
}

/** Writes float32 tensors in map order; a temp file plus rename, so readers never see half a file. */
export async function writeSafetensors(path: string, tensors: TensorMap, metadata: Record<string, string> = {}): Promise<void> {
  // The header is built by hand so that entries keep map order (JSON.stringify of an object
  // would move integer-like names such as "0" to the front).
  const entries: string[] = [];
  if (Object.keys(metadata).length > 0) entries.push(`"__metadata__":${JSON.stringify(metadata)}`);
  let offset = 0;
  for (const [name, t] of tensors) {
    if (t.data.length !== numel(t.shape)) throw new Error(`tensor ${name} has ${t.data.length} values for shape [${t.shape}]`);
    const end = offset + t.data.byteLength;
    entries.push(`${JSON.stringify(name)}:${JSON.stringify({ dtype: 'F32', shape: t.shape, data_offsets: [offset, end] })}`);
    offset = end;
  }
  let header = Buffer.from(`{${entries.join(',')}}`, 'utf8');
  const padded = Math.ceil(header.length / 8) * 8;
  header = Buffer.concat([header, Buffer.alloc(padded - header.length, 0x20)]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));

  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const file = await open(tmp, 'wx');
  try {
    await file.write(length);
    await file.write(header);
    for (const t of tensors.values()) await file.write(littleEndianBytes(t.data));
    await file.sync();
    await file.close();
    await rename(tmp, path);
  } catch (err) {
    await file.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
}

function littleEndianBytes(data: Float32Array): Uint8Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] === 1) return bytes;
  const out = new Uint8Array(data.byteLength);
  const view = new DataView(out.buffer);
  data.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return out;
}

export async function readSafetensors(path: string): Promise<Safetensors> {
  return parseSafetensors(await readWeightsFile(path), path);
}

/** True when the bytes start like a safetensors file (a plausible header length, then `{`). */
export function looksLikeSafetensors(bytes: Uint8Array): boolean {
  return bytes.length >= 9 && bytes[6] === 0 && bytes[7] === 0 && bytes[8] === 0x7b;
}

/** Parses and validates safetensors bytes already in memory; `path` is only used in error messages. */
export function parseSafetensors(bytes: Uint8Array, path: string): Safetensors {
  const bad = (why: string) => new UserError(`${path} is not a valid safetensors file (${why}); ${WEIGHTS_HINT}`);
  const truncated = () => new UserError(`${path} is truncated (it ends before the data its header describes); ${WEIGHTS_HINT}`);
  if (bytes.length < 8) throw truncated();
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + headerLength > bytes.length) throw truncated();
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch {
    throw bad('its header is not JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw bad('its header is not a JSON object');

  const metadata: Record<string, string> = {};
  const found: { name: string; dtype: FloatDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof info !== 'object' || info === null) throw bad('__metadata__ is not an object');
      for (const [k, v] of Object.entries(info)) {
        if (typeof v !== 'string') throw bad(`metadata "${k}" is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = (info ?? {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== 'string' || !(dtype in DTYPES)) throw bad(`tensor "${name}" has unsupported dtype ${String(dtype)}`);
    if (!isNaturalList(shape)) throw bad(`tensor "${name}" has a malformed shape`);
    if (!isNaturalList(offsets) || offsets.length !== 2 || offsets[0] > offsets[1]) throw bad(`tensor "${name}" has malformed data_offsets`);
    const bytesNeeded = numel(shape) * FLOAT_BYTES[DTYPES[dtype]];
    if (offsets[1] - offsets[0] !== bytesNeeded) throw bad(`tensor "${name}" has ${offsets[1] - offsets[0]} bytes, its shape needs ${bytesNeeded}`);
    found.push({ name, dtype: DTYPES[dtype], shape, begin: offsets[0], end: offsets[1] });
  }

  // Tensors must tile the data area exactly; sorting by offset also restores the written order.
  found.sort((a, b) => a.begin - b.begin);
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  let expected = 0;
  for (const t of found) {
    if (t.begin !== expected) throw bad(`tensor "${t.name}" overlaps another or leaves a gap`);
    expected = t.end;
  }
  if (expected > dataLength) throw truncated();
  if (expected < dataLength) throw bad(`${dataLength - expected} unused bytes after the last tensor`);

  const tensors: TensorMap = new Map();
  for (const t of found) {
    tensors.set(t.name, { shape: t.shape, data: decodeFloats(bytes.subarray(dataStart + t.begin, dataStart + t.end), t.dtype) });
  }
  return { tensors, metadata };
}

function isNaturalList(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => Number.isSafeInteger(x) && x >= 0);
}
