/** Decoding of stored floating-point arrays into float32, shared by the checkpoint readers. */

export type FloatDtype = 'f16' | 'bf16' | 'f32' | 'f64';

export const FLOAT_BYTES: Record<FloatDtype, number> = { f16: 2, bf16: 2, f32: 4, f64: 8 };

/** Converts `bytes` (a whole number of elements) to a fresh Float32Array; never aliases the input. */
export function decodeFloats(bytes: Uint8Array, dtype: FloatDtype, littleEndian = true): Float32Array {
  const n = Math.floor(bytes.length / FLOAT_BYTES[dtype]);
  if (dtype === 'f32' && littleEndian && isLittleEndianHost) {
    // slice() copies into a new, aligned buffer: the fast path for the common case.
    return new Float32Array(bytes.slice(0, n * 4).buffer);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    switch (dtype) {
      case 'f32': out[i] = view.getFloat32(i * 4, littleEndian); break;
      case 'f64': out[i] = view.getFloat64(i * 8, littleEndian); break;
      case 'f16': out[i] = halfToFloat(view.getUint16(i * 2, littleEndian)); break;
      case 'bf16': out[i] = bfloat16ToFloat(view.getUint16(i * 2, littleEndian)); break;
    }
  }
  return out;
}

const isLittleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // subnormal (and zero)
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const bf16Scratch = new DataView(new ArrayBuffer(4));
function bfloat16ToFloat(b: number): number {
  // bfloat16 is the top half of a float32.
  bf16Scratch.setUint32(0, b << 16);
  return bf16Scratch.getFloat32(0);
}
