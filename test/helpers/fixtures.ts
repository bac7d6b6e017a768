// Reads the PyTorch reference fixtures written by scripts/fixtures/networks.py
// (test/fixtures/networks/<layout>/manifest.json + raw little-endian float32 .bin files).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = new URL('../fixtures/networks/', import.meta.url);

export interface FixtureTensorEntry {
  file: string;
  shape: number[];
  min?: number;
  max?: number;
  mean?: number;
  std?: number;
}

export interface FixtureManifest {
  tensors: Record<string, FixtureTensorEntry>;
  notes?: string;
  /** Checkpoint files in the layout directory, e.g. { encoder: 'encoder.pth', decoder_r41: ... }. */
  weights?: Record<string, string>;
  format?: string;
  channels?: number[];
  eps?: number;
  [key: string]: unknown;
}

const manifests = new Map<string, FixtureManifest>();

/** Absolute directory of one layout's fixtures ('vgg19-normalised', 'cd16x', 'vgg19bn'). */
export function fixtureDir(layout: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(layout) || layout.startsWith('.')) {
    throw new Error(`bad fixture layout name: ${JSON.stringify(layout)}`);
  }
  return fileURLToPath(new URL(`${layout}/`, ROOT));
}

export function fixtureManifest(layout: string): FixtureManifest {
  let m = manifests.get(layout);
  if (!m) {
    const path = join(fixtureDir(layout), 'manifest.json');
    m = JSON.parse(readFileSync(path, 'utf8')) as FixtureManifest;
    if (!m || typeof m.tensors !== 'object') throw new Error(`${path}: no "tensors" object`);
    manifests.set(layout, m);
  }
  return m;
}

/** Tensor names in manifest order. */
export function fixtureNames(layout: string): string[] {
  return Object.keys(fixtureManifest(layout).tensors);
}

export function loadFixtureTensor(layout: string, name: string): { shape: number[]; data: Float32Array } {
  const entry = fixtureManifest(layout).tensors[name];
  if (!entry) {
    throw new Error(`fixture ${layout}/${name} not found; have: ${fixtureNames(layout).join(', ')}`);
  }
  const shape = [...entry.shape];
  const count = shape.reduce((a, b) => a * b, 1);
  const path = join(fixtureDir(layout), entry.file);
  const bytes = readFileSync(path);
  if (bytes.byteLength !== count * 4) {
    throw new Error(`${path}: ${bytes.byteLength} bytes, expected ${count * 4} for shape [${shape.join(', ')}]`);
  }
  // Copy through a DataView: aligned, independent of the Buffer pool, and little-endian on any host.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = view.getFloat32(i * 4, true);
  return { shape, data };
}

/** Largest |a[i] - b[i]|; NaN if either side has a NaN (so `<= tol` checks fail). */
export { maxAbsDiff } from '../../src/export/validate.js';

/** Largest |a[i]|; NaN if a has a NaN. */
export function maxAbs(a: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const v = Math.abs(a[i]);
    if (Number.isNaN(v)) return NaN;
    if (v > m) m = v;
  }
  return m;
}
