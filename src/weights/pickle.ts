/**
 * A small unpickler for the subset of the pickle format that torch.save writes (protocol 2,
 * plus the protocol 3-5 opcodes newer writers use). It never runs code: globals are looked up
 * through a caller-supplied table, and anything unknown becomes an inert PyObject.
 */

/** A Python dict (also OrderedDict); Map keeps insertion order, as Python does. */
export class PyDict extends Map<PyValue, PyValue> {}

/** A global (`module.name`) the caller did not resolve, or one it resolved to a callable. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly call?: (args: PyValue[]) => PyValue,
  ) {}
}

/** An instance of an unresolved global: the reader keeps its arguments and state for inspection. */
export class PyObject {
  state: PyValue = null;
  constructor(
    readonly cls: PyGlobal,
    readonly args: PyValue[],
  ) {}
}

/** Anything the caller builds from globals or persistent ids (tensors, storages). */
export interface PyOpaque {
  readonly opaque: string;
}

export type PyValue = null | boolean | number | bigint | string | Uint8Array | PyValue[] | PyDict | PyGlobal | PyObject | PyOpaque;

export interface UnpickleOptions {
  /** Returns a callable for `module.name`, or undefined to get an inert PyGlobal. */
  resolveGlobal?: (module: string, name: string) => ((args: PyValue[]) => PyValue) | undefined;
  /** Turns a persistent id (torch: a storage reference tuple) into a value. */
  persistentLoad?: (pid: PyValue) => PyValue;
}

/** Malformed or truncated pickle data; callers turn it into a UserError naming the file. */
export class PickleError extends Error {
  constructor(
    message: string,
    readonly truncated = false,
  ) {
    super(message);
    this.name = 'PickleError';
  }
}

const MARK = Symbol('mark');
type StackItem = PyValue | typeof MARK;

/** Reads one pickle starting at `start`; returns its value and the offset just past STOP. */
export function unpickle(bytes: Uint8Array, start = 0, options: UnpickleOptions = {}): { value: PyValue; end: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = new TextDecoder('utf-8', { fatal: true });
  const stack: StackItem[] = [];
  const memo = new Map<number, PyValue>();
  let pos = start;

  const need = (n: number): number => {
    if (pos + n > bytes.length) throw new PickleError('unexpected end of data', true);
    const at = pos;
    pos += n;
    return at;
  };
  const u8 = () => bytes[need(1)];
  const u32 = () => view.getUint32(need(4), true);
  const u64 = () => Number(view.getBigUint64(need(8), true));
  const raw = (n: number) => bytes.subarray(need(n), pos);
  const utf8 = (n: number): string => {
    const b = raw(n);
    try {
      return text.decode(b);
    } catch {
      throw new PickleError('invalid UTF-8 string');
    }
  };
  const latin1 = (n: number) => Buffer.from(raw(n)).toString('latin1');
  const line = (): string => {
    const nl = bytes.indexOf(0x0a, pos);
    if (nl < 0) throw new PickleError('unexpected end of data', true);
    return latin1(nl - pos + 1).slice(0, -1);
  };
  const pop = (): PyValue => {
    if (stack.length === 0) throw new PickleError('stack underflow');
    const v = stack.pop()!;
    if (v === MARK) throw new PickleError('unexpected MARK');
    return v;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) throw new PickleError('stack underflow');
    return v;
  };
  const popMark = (): PyValue[] => {
    const at = stack.lastIndexOf(MARK);
    if (at < 0) throw new PickleError('MARK not found');
    const items = stack.splice(at) as PyValue[];
    return items.slice(1);
  };
  const get = (key: number): PyValue => {
    if (!memo.has(key)) throw new PickleError(`memo key ${key} not found`);
    return memo.get(key)!;
  };
  const setItems = (target: PyValue, items: PyValue[]): void => {
    if (!(target instanceof PyDict)) throw new PickleError('SETITEMS on a non-dict');
    for (let i = 0; i + 1 < items.length; i += 2) target.set(items[i], items[i + 1]);
  };
  const appendItems = (target: PyValue, items: PyValue[]): void => {
    if (!Array.isArray(target)) throw new PickleError('APPENDS on a non-list');
    target.push(...items);
  };
  const global = (module: string, name: string): PyGlobal => {
    if (module === 'collections' && name === 'OrderedDict') return new PyGlobal(module, name, () => new PyDict());
    if (module === 'builtins' && name === 'dict') return new PyGlobal(module, name, () => new PyDict());
    return new PyGlobal(module, name, options.resolveGlobal?.(module, name));
  };
  const instantiate = (cls: PyValue, args: PyValue): PyValue => {
    if (!(cls instanceof PyGlobal) || !Array.isArray(args)) throw new PickleError('REDUCE/NEWOBJ needs a global and an argument tuple');
    return cls.call ? cls.call(args) : new PyObject(cls, args);
  };
  const signed = (b: Uint8Array): number | bigint => {
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b.length > 0 && b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME: frames are only a read-ahead hint
      case 0x2e: return { value: pop(), end: pos }; // STOP
      case 0x28: stack.push(MARK); break;
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break;
      case 0x89: stack.push(false); break;
      case 0x4a: stack.push(view.getInt32(need(4), true)); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(view.getUint16(need(2), true)); break; // BININT2
      case 0x8a: stack.push(signed(raw(u8()))); break; // LONG1
      case 0x8b: stack.push(signed(raw(u32()))); break; // LONG4
      case 0x47: stack.push(view.getFloat64(need(8), false)); break; // BINFLOAT is big-endian
      case 0x58: stack.push(utf8(u32())); break; // BINUNICODE
      case 0x8c: stack.push(utf8(u8())); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(utf8(u64())); break; // BINUNICODE8
      case 0x54: stack.push(latin1(u32())); break; // BINSTRING (Python 2 str)
      case 0x55: stack.push(latin1(u8())); break; // SHORT_BINSTRING
      case 0x42: stack.push(raw(u32()).slice()); break; // BINBYTES
      case 0x43: stack.push(raw(u8()).slice()); break; // SHORT_BINBYTES
      case 0x8e: stack.push(raw(u64()).slice()); break; // BINBYTES8
      case 0x7d: stack.push(new PyDict()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); stack.push([pop(), b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); stack.push([pop(), b, c]); break; } // TUPLE3
      case 0x64: { const d = new PyDict(); setItems(d, popMark()); stack.push(d); break; } // DICT
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: stack.push(get(u8())); break; // BINGET
      case 0x6a: stack.push(get(u32())); break; // LONG_BINGET
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x61: { const v = pop(); appendItems(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); appendItems(top(), items); break; } // APPENDS
      case 0x63: { const module = line(); stack.push(global(module, line())); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw new PickleError('STACK_GLOBAL needs two strings');
        stack.push(global(module, name));
        break;
      }
      case 0x52: case 0x81: { const args = pop(); stack.push(instantiate(pop(), args)); break; } // REDUCE, NEWOBJ
      case 0x92: { pop(); const args = pop(); stack.push(instantiate(pop(), args)); break; } // NEWOBJ_EX (kwargs ignored)
      case 0x62: { // BUILD: dict subclasses (OrderedDict with `_metadata`) carry state we do not need
        const state = pop();
        const obj = top();
        if (obj instanceof PyObject) obj.state = state;
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!options.persistentLoad) throw new PickleError('persistent id without a loader');
        stack.push(options.persistentLoad(pid));
        break;
      }
      default:
        throw new PickleError(`unsupported opcode 0x${op.toString(16).padStart(2, '0')} at offset ${pos - 1}`);
    }
  }
}
