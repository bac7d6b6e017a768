/**
 * Reads PyTorch checkpoints (torch.save output) without Python: the legacy stream format
 * (pre-1.6, what the published AdaIN/WCT/Collaborative Distillation weights use) and the zip
 * format of torch >= 1.6. Returns the float tensors of the state dict, in stored order.
 */
import { unzipSync } from 'fflate';
import { UserError } from '../errors.js';
import { readWeightsFile, WEIGHTS_HINT } from './file.js';
import { decodeFloats, type FloatDtype } from './float-decode.js';
import { PickleError, PyDict, PyGlobal, PyObject, unpickle, type PyOpaque, type PyValue } from './pickle.js';
import { numel, type Tensor, type TensorMap } from './tensor.js';

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

/** Bytes per element of each torch storage class; needed to skip non-float storages too. */
const STORAGE_BYTES: Record<string, number> = {
  DoubleStorage: 8, FloatStorage: 4, HalfStorage: 2, BFloat16Storage: 2,
  LongStorage: 8, IntStorage: 4, ShortStorage: 2, CharStorage: 1, ByteStorage: 1, BoolStorage: 1,
  ComplexFloatStorage: 8, ComplexDoubleStorage: 16, QInt8Storage: 1, QUInt8Storage: 1, QInt32Storage: 4,
};
const FLOAT_STORAGES: Record<string, FloatDtype> = { DoubleStorage: 'f64', FloatStorage: 'f32', HalfStorage: 'f16', BFloat16Storage: 'bf16' };

interface StorageRef extends PyOpaque {
  opaque: 'storage';
  key: string;
  type: string;
  /** Legacy storage views start this many elements into their root storage. */
  viewOffset: number;
}

interface TensorRef extends PyOpaque {
  opaque: 'tensor';
  storage: StorageRef;
  offset: number;
  size: number[];
  stride: number[];
}

/** Where each storage's raw bytes are, once the container has been parsed. */
type StorageBytes = (key: string) => Uint8Array | undefined;

export async function readTorchCheckpoint(path: string): Promise<TensorMap> {
  return parseTorchCheckpoint(await readWeightsFile(path), path);
}

/** Parses checkpoint bytes already in memory; `path` is only used in error messages. */
export function parseTorchCheckpoint(bytes: Uint8Array, path: string): TensorMap {
  if (isZip(bytes)) return parseZip(bytes, path);
  if (bytes[0] === 0x80) return parseLegacy(bytes, path);
  throw notACheckpoint(path);
}

export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

const notACheckpoint = (path: string) => new UserError(`${path} is not a PyTorch checkpoint (legacy or zip format); ${WEIGHTS_HINT}`);
const truncated = (path: string) => new UserError(`${path} is truncated (it ends in the middle of the checkpoint); ${WEIGHTS_HINT}`);
const damaged = (path: string, why: string) => new UserError(`${path} is a damaged PyTorch checkpoint (${why}); ${WEIGHTS_HINT}`);

function parseLegacy(bytes: Uint8Array, path: string): TensorMap {
  let pos = 0;
  try {
    const magic = unpickle(bytes, 0);
    if (magic.value !== LEGACY_MAGIC) throw notACheckpoint(path);
    pos = magic.end;
  } catch (err) {
    throw err instanceof PickleError ? notACheckpoint(path) : err;
  }
  const storages = new Map<string, { type: string; start: number; count: number }>();
  let root: PyValue;
  let littleEndian = true;
  try {
    pos = unpickle(bytes, pos).end; // protocol version
    const sysInfo = unpickle(bytes, pos);
    pos = sysInfo.end;
    if (sysInfo.value instanceof PyDict && sysInfo.value.get('little_endian') === false) littleEndian = false;
    const main = unpickle(bytes, pos, torchPickleOptions(path, (ref) => storages.set(ref.key, { type: ref.type, start: -1, count: 0 })));
    root = main.value;
    const keys = unpickle(bytes, main.end);
    pos = keys.end;
    if (!Array.isArray(keys.value)) throw damaged(path, 'no storage list');
    // The storages follow in the listed order, each as an int64 element count and its raw bytes.
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (const key of keys.value) {
      const storage = storages.get(String(key));
      if (!storage) throw damaged(path, `storage ${String(key)} is listed but never used`);
      if (pos + 8 > bytes.length) throw truncated(path);
      storage.count = Number(view.getBigUint64(pos, littleEndian));
      storage.start = pos + 8;
      pos = storage.start + storage.count * STORAGE_BYTES[storage.type];
      if (pos > bytes.length) throw truncated(path);
    }
  } catch (err) {
    if (err instanceof PickleError) throw err.truncated ? truncated(path) : damaged(path, err.message);
    throw err;
  }
  const storageBytes: StorageBytes = (key) => {
    const s = storages.get(key);
    return s && s.start >= 0 ? bytes.subarray(s.start, s.start + s.count * STORAGE_BYTES[s.type]) : undefined;
  };
  return collectTensors(root, storageBytes, littleEndian, path);
}

function parseZip(bytes: Uint8Array, path: string): TensorMap {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes);
  } catch {
    throw new UserError(`${path} is truncated or damaged (its zip archive cannot be read); ${WEIGHTS_HINT}`);
  }
  // Entries live under one folder named after the file at save time, e.g. `archive/data.pkl`.
  const pklName = Object.keys(files).find((name) => name === 'data.pkl' || name.endsWith('/data.pkl'));
  if (!pklName) throw notACheckpoint(path);
  const prefix = pklName.slice(0, -'data.pkl'.length);
  const byteorder = files[`${prefix}byteorder`];
  const littleEndian = !byteorder || new TextDecoder().decode(byteorder).trim() !== 'big';
  let root: PyValue;
  try {
    root = unpickle(files[pklName], 0, torchPickleOptions(path)).value;
  } catch (err) {
    if (err instanceof PickleError) throw damaged(path, err.message);
    throw err;
  }
  return collectTensors(root, (key) => files[`${prefix}data/${key}`], littleEndian, path);
}

/** Globals and persistent ids as torch.save writes them; nothing else is ever called. */
function torchPickleOptions(path: string, onStorage?: (ref: StorageRef) => void) {
  const rebuildTensor = (args: PyValue[]): PyValue => {
    const [storage, offset, size, stride] = args;
    if (!isOpaque<StorageRef>(storage, 'storage') || typeof offset !== 'number' || !isIntList(size) || !isIntList(stride) || size.length !== stride.length) {
      throw damaged(path, 'a tensor has malformed metadata');
    }
    const ref: TensorRef = { opaque: 'tensor', storage, offset, size, stride };
    return ref;
  };
  return {
    resolveGlobal(module: string, name: string) {
      if (module !== 'torch._utils') return undefined;
      if (name === '_rebuild_tensor_v2' || name === '_rebuild_tensor' || name === '_rebuild_tensor_v3') return rebuildTensor;
      if (name === '_rebuild_parameter' || name === '_rebuild_parameter_with_state') return (args: PyValue[]) => args[0];
      return undefined;
    },
    // ('storage', storage_type, key, location, numel[, view_metadata])
    persistentLoad(pid: PyValue): PyValue {
      if (!Array.isArray(pid) || pid[0] !== 'storage' || !(pid[1] instanceof PyGlobal)) throw damaged(path, 'unknown persistent id');
      const type = pid[1].name;
      if (!(type in STORAGE_BYTES)) throw damaged(path, `unsupported storage type ${pid[1].module}.${type}`);
      const view = pid[5];
      const viewOffset = Array.isArray(view) && typeof view[1] === 'number' ? view[1] : 0;
      const ref: StorageRef = { opaque: 'storage', key: String(pid[2]), type, viewOffset };
      onStorage?.(ref);
      return ref;
    },
  };
}

function isOpaque<T extends PyOpaque>(v: PyValue | undefined, kind: T['opaque']): v is PyValue & T {
  return typeof v === 'object' && v !== null && 'opaque' in v && v.opaque === kind;
}

function isIntList(v: PyValue | undefined): v is number[] {
  return Array.isArray(v) && v.every((x) => Number.isInteger(x) && (x as number) >= 0);
}

/** Finds the name -> tensor dict (possibly under `model` or `state_dict`) and materialises its float tensors. */
function collectTensors(root: PyValue, storageBytes: StorageBytes, littleEndian: boolean, path: string): TensorMap {
  let dict: PyValue | undefined = root;
  while (dict instanceof PyDict && ![...dict.values()].some((v) => isOpaque<TensorRef>(v, 'tensor'))) {
    const inner: PyValue | undefined = dict.get('state_dict') ?? dict.get('model');
    if (inner === undefined) break;
    dict = inner;
  }
  if (dict instanceof PyObject) {
    throw new UserError(`${path} holds a pickled ${dict.cls.module}.${dict.cls.name} object, not a state dict; re-save it with torch.save(model.state_dict(), path)`);
  }
  const decoded = new Map<string, Float32Array>();
  const out: TensorMap = new Map();
  if (dict instanceof PyDict) {
    for (const [name, value] of dict) {
      if (typeof name !== 'string' || !isOpaque<TensorRef>(value, 'tensor')) continue;
      const dtype = FLOAT_STORAGES[value.storage.type];
      if (!dtype) continue; // integer buffers such as BatchNorm's num_batches_tracked
      const { key } = value.storage;
      let storage = decoded.get(key);
      if (!storage) {
        const raw = storageBytes(key);
        if (!raw) throw damaged(path, `storage ${key} of "${name}" is missing`);
        storage = decodeFloats(raw, dtype, littleEndian);
        decoded.set(key, storage);
      }
      const data = gather(storage, value.storage.viewOffset + value.offset, value.size, value.stride);
      if (!data) throw damaged(path, `"${name}" reads past the end of its storage`);
      out.set(name, { shape: value.size, data } satisfies Tensor);
    }
  }
  if (out.size === 0) throw new UserError(`${path} contains no float tensors (expected a state dict of name -> tensor); ${WEIGHTS_HINT}`);
  return out;
}

/** Copies a strided view into a new contiguous array; undefined if it would read out of bounds. */
function gather(storage: Float32Array, offset: number, size: number[], stride: number[]): Float32Array | undefined {
  const n = numel(size);
  const out = new Float32Array(n);
  if (n === 0) return out;
  const last = size.reduce((acc, s, d) => acc + (s - 1) * stride[d], offset);
  if (offset < 0 || last >= storage.length) return undefined;
  const contiguous = size.every((_, d) => stride[d] === numel(size.slice(d + 1)) || size[d] === 1);
  if (contiguous) {
    out.set(storage.subarray(offset, offset + n));
    return out;
  }
  const index = new Array<number>(size.length).fill(0);
  let src = offset;
  for (let i = 0; i < n; i++) {
    out[i] = storage[src];
    // Odometer over the dimensions, innermost first.
    for (let d = size.length - 1; d >= 0; d--) {
      src += stride[d];
      if (++index[d] < size[d]) break;
      src -= stride[d] * size[d];
      index[d] = 0;
    }
  }
  return out;
}
