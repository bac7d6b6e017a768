import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { UserError } from '../src/errors.js';
import { preserveColor, symmetricEigen3, type Mat3 } from '../src/image/color.js';
import {
  encodeImage,
  fromInterleavedU8,
  readImage,
  resizeImage,
  toInterleavedU8,
  writeImage,
  type RgbImage,
} from '../src/image/io.js';
import { downsampleMask, readMask } from '../src/image/mask.js';

let dir: string;
before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'adain-image-test-'));
});
after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** A smooth, deterministic test picture (lossy codecs handle it well). */
function gradient(width: number, height: number): RgbImage {
  const n = width * height;
  const data = new Float32Array(3 * n);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      data[i] = x / Math.max(1, width - 1);
      data[n + i] = y / Math.max(1, height - 1);
      data[2 * n + i] = 0.5 + 0.4 * Math.sin((x + y) / 5);
    }
  }
  return { width, height, data };
}

/** Deterministic pseudo-random numbers in [0,1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

async function writeRaw(file: string, pixels: Uint8Array, width: number, height: number, channels: 1 | 2 | 3 | 4): Promise<void> {
  await sharp(pixels, { raw: { width, height, channels } }).toFile(file);
}

function meanAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

/** Asserts that `run` rejects with a one-line UserError whose message contains every needle. */
async function assertUserError(run: () => Promise<unknown>, ...needles: string[]): Promise<void> {
  await assert.rejects(run, (err: unknown) => {
    assert.ok(err instanceof UserError, `expected UserError, got ${String(err)}`);
    assert.ok(!err.message.includes('\n'), `message is not one line: ${err.message}`);
    for (const needle of needles) assert.ok(err.message.includes(needle), `"${err.message}" lacks "${needle}"`);
    return true;
  });
}

async function listDir(folder: string): Promise<string[]> {
  return (await fs.readdir(folder)).sort();
}

async function freshDir(name: string): Promise<string> {
  const d = path.join(dir, name);
  await fs.mkdir(d);
  return d;
}

describe('readImage / writeImage', () => {
  for (const [ext, tolerance] of [['png', 0.5 / 255], ['jpg', 0.02], ['jpeg', 0.02], ['webp', 0.02]] as const) {
    test(`round trip .${ext} keeps size and pixels, leaves only the output file`, async () => {
      const d = await freshDir(`rt-${ext}`);
      const img = gradient(37, 23);
      const file = path.join(d, `out.${ext}`);
      await writeImage(file, img);
      assert.deepEqual(await listDir(d), [`out.${ext}`]);
      const back = await readImage(file);
      assert.equal(back.width, 37);
      assert.equal(back.height, 23);
      assert.equal(back.data.length, 3 * 37 * 23);
      assert.ok(meanAbsDiff(back.data, img.data) <= tolerance, `mean error ${meanAbsDiff(back.data, img.data)}`);
    });
  }

  test('odd sizes survive a round trip', async () => {
    const d = await freshDir('odd');
    for (const [w, h] of [[1, 1], [1, 7], [13, 3], [3, 13]]) {
      const file = path.join(d, `${w}x${h}.png`);
      await writeImage(file, gradient(w, h));
      const back = await readImage(file);
      assert.deepEqual([back.width, back.height], [w, h]);
    }
  });

  test('writeImage replaces an existing file', async () => {
    const d = await freshDir('replace');
    const file = path.join(d, 'out.png');
    await writeImage(file, gradient(5, 5));
    await writeImage(file, gradient(9, 4));
    const back = await readImage(file);
    assert.deepEqual([back.width, back.height], [9, 4]);
    assert.deepEqual(await listDir(d), ['out.png']);
  });

  test('EXIF orientation 6 is honoured: width and height swap, left goes to the top', async () => {
    // Stored 8 wide x 4 high: left half red, right half blue. Orientation 6 = rotate 90° clockwise.
    const w = 8, h = 4;
    const px = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px.set(x < w / 2 ? [255, 0, 0] : [0, 0, 255], 3 * (y * w + x));
    const file = path.join(dir, 'oriented.jpg');
    await sharp(px, { raw: { width: w, height: h, channels: 3 } }).withMetadata({ orientation: 6 }).jpeg({ quality: 100 }).toFile(file);
    assert.equal((await sharp(file).metadata()).orientation, 6);
    const img = await readImage(file);
    assert.deepEqual([img.width, img.height], [4, 8]);
    const n = img.width * img.height;
    const top = 1 * img.width + 1; // well inside the top half
    const bottom = 6 * img.width + 1;
    assert.ok(img.data[top] > 0.8 && img.data[2 * n + top] < 0.2, 'top should be red');
    assert.ok(img.data[bottom] < 0.2 && img.data[2 * n + bottom] > 0.8, 'bottom should be blue');
  });

  test('transparency is flattened onto white; grey and 16-bit inputs become 8-bit sRGB', async () => {
    const rgba = path.join(dir, 'alpha.png');
    await writeRaw(rgba, new Uint8Array([255, 0, 0, 255, 0, 0, 0, 0]), 2, 1, 4);
    const a = await readImage(rgba);
    assert.deepEqual(Array.from(a.data), [1, 1, 0, 1, 0, 1]); // red, then white: R plane, G plane, B plane

    const grey = path.join(dir, 'grey.png');
    await writeRaw(grey, new Uint8Array([0, 128, 255]), 3, 1, 1);
    const g = await readImage(grey);
    assert.equal(g.data.length, 9);
    for (let i = 0; i < 3; i++) {
      assert.equal(g.data[i], g.data[3 + i]);
      assert.equal(g.data[i], g.data[6 + i]);
    }
    assert.ok(Math.abs(g.data[1] - 128 / 255) < 2 / 255);

    const deep = path.join(dir, 'deep.png');
    await sharp(new Uint8Array([0, 0, 0, 255, 255, 255]), { raw: { width: 2, height: 1, channels: 3 } })
      .toColourspace('rgb16')
      .png()
      .toFile(deep);
    assert.equal((await sharp(deep).metadata()).depth, 'ushort');
    const d16 = await readImage(deep);
    assert.deepEqual(Array.from(d16.data), [0, 1, 0, 1, 0, 1]);

    const cmyk = path.join(dir, 'cmyk.jpg');
    await sharp(toInterleavedU8(gradient(16, 16)), { raw: { width: 16, height: 16, channels: 3 } })
      .toColourspace('cmyk')
      .jpeg({ quality: 95 })
      .toFile(cmyk);
    assert.equal((await sharp(cmyk).metadata()).space, 'cmyk');
    const c = await readImage(cmyk);
    assert.deepEqual([c.width, c.height, c.data.length], [16, 16, 3 * 256]);
  });

  test('maxSize scales the longer side down, never up', async () => {
    const file = path.join(dir, 'wide.png');
    await writeImage(file, gradient(40, 20));
    const small = await readImage(file, { maxSize: 10 });
    assert.deepEqual([small.width, small.height], [10, 5]);
    const same = await readImage(file, { maxSize: 100 });
    assert.deepEqual([same.width, same.height], [40, 20]);
  });

  test('reads from a buffer', async () => {
    const buf = await encodeImage(gradient(6, 4), 'png');
    const img = await readImage(buf);
    assert.deepEqual([img.width, img.height], [6, 4]);
  });
});

describe('bad inputs give a UserError naming the file', () => {
  test('missing file', async () => {
    const file = path.join(dir, 'nope.jpg');
    await assertUserError(() => readImage(file), file, 'does not exist');
  });

  test('0-byte file', async () => {
    const file = path.join(dir, 'empty.png');
    await fs.writeFile(file, '');
    await assertUserError(() => readImage(file), file, '0 bytes');
  });

  test('a folder', async () => {
    await assertUserError(() => readImage(dir), dir, 'folder');
  });

  test('not an image', async () => {
    const file = path.join(dir, 'notes.png');
    await fs.writeFile(file, 'these are not pixels\n'.repeat(20));
    await assertUserError(() => readImage(file), file, 'not an image');
  });

  for (const format of ['jpeg', 'png', 'webp'] as const) {
    test(`half-written ${format}`, async () => {
      const whole = await encodeImage(gradient(64, 48), format);
      const file = path.join(dir, `half.${format}`);
      await fs.writeFile(file, whole.subarray(0, whole.length >> 1));
      await assertUserError(() => readImage(file), file, 're-download');
    });
  }

  test('a buffer is named by its label', async () => {
    await assertUserError(() => readImage(Buffer.from('junk junk junk junk'), { label: 'style.jpg' }), 'style.jpg');
    await assertUserError(() => readImage(Buffer.alloc(0), { label: 'upload' }), 'upload', '0 bytes');
  });

  test('more pixels than maxPixels, refused from the header without decoding', async () => {
    const file = path.join(dir, 'big.png');
    await writeImage(file, gradient(100, 100));
    await assertUserError(() => readImage(file, { maxPixels: 5000 }), file, '--max-pixels');

    // A PNG whose header claims 40000x40000 but holds 100x100 pixels: decoding would fail (or
    // take gigabytes), so the limit message proves that only the header was read.
    const png = Buffer.from(await fs.readFile(file));
    assert.equal(png.toString('latin1', 12, 16), 'IHDR');
    png.writeUInt32BE(40000, 16);
    png.writeUInt32BE(40000, 20);
    png.writeUInt32BE(zlib.crc32(png.subarray(12, 29)), 29);
    const huge = path.join(dir, 'huge.png');
    await fs.writeFile(huge, png);
    await assertUserError(() => readImage(huge), huge, '1600.0 megapixels', '--max-pixels');
  });
});

describe('writeImage refuses bad output paths and leaves nothing behind', () => {
  test('unsupported extension lists the supported ones', async () => {
    const d = await freshDir('bad-ext');
    for (const name of ['out.gif', 'out']) {
      const file = path.join(d, name);
      await assertUserError(() => writeImage(file, gradient(4, 4)), file, '.png', '.jpg', '.jpeg', '.webp');
    }
    assert.deepEqual(await listDir(d), []);
  });

  test('missing folder', async () => {
    const file = path.join(dir, 'no-such-folder', 'out.png');
    await assertUserError(() => writeImage(file, gradient(4, 4)), file, 'does not exist');
  });

  test('output path is a folder', async () => {
    const d = await freshDir('target-is-dir');
    const target = path.join(d, 'out.png');
    await fs.mkdir(target);
    await assertUserError(() => writeImage(target, gradient(4, 4)), target);
    assert.deepEqual(await listDir(d), ['out.png']);
    assert.deepEqual(await listDir(target), []);
  });
});

describe('pixel conversions and resizing', () => {
  test('toInterleavedU8 clamps, rounds and maps NaN to 0; fromInterleavedU8 inverts it', () => {
    const img: RgbImage = { width: 2, height: 1, data: new Float32Array([-0.5, 0.5, 2, NaN, 1 / 255, 254.6 / 255]) };
    assert.deepEqual(Array.from(toInterleavedU8(img)), [0, 255, 1, 128, 0, 255]);
    const back = fromInterleavedU8(toInterleavedU8(img), 2, 1);
    assert.deepEqual(Array.from(back.data), [0, 128 / 255, 1, 0, 1 / 255, 1].map((v) => Math.fround(v)));
    const rgba = fromInterleavedU8(new Uint8Array([10, 20, 30, 40]), 1, 1, 4);
    assert.deepEqual(Array.from(rgba.data), [10 / 255, 20 / 255, 30 / 255].map((v) => Math.fround(v)));
  });

  test('encodeImage produces the asked-for format', async () => {
    for (const format of ['png', 'jpeg', 'webp'] as const) {
      const meta = await sharp(await encodeImage(gradient(7, 5), format)).metadata();
      assert.equal(meta.format, format);
      assert.deepEqual([meta.width, meta.height], [7, 5]);
    }
  });

  test('resizeImage: sizes, constant stays constant, shrinking averages', async () => {
    const flat: RgbImage = { width: 9, height: 5, data: new Float32Array(3 * 45).fill(0.25) };
    for (const [w, h] of [[3, 2], [20, 11], [9, 5], [1, 1]]) {
      const r = await resizeImage(flat, w, h);
      assert.deepEqual([r.width, r.height, r.data.length], [w, h, 3 * w * h]);
      for (const v of r.data) assert.ok(Math.abs(v - 0.25) < 1e-6);
    }
    // A 1-pixel checkerboard shrunk by 2 becomes uniform grey, not a sampled black or white.
    const w = 16, h = 16, n = w * h;
    const checker = new Float32Array(3 * n);
    for (let c = 0; c < 3; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) checker[c * n + y * w + x] = (x + y) % 2;
    const half = await resizeImage({ width: w, height: h, data: checker }, 8, 8);
    for (const v of half.data) assert.ok(Math.abs(v - 0.5) < 0.1, `value ${v}`);
    // Enlarging a two-pixel ramp stays inside the range and monotonic.
    const ramp = await resizeImage({ width: 2, height: 1, data: new Float32Array([0, 1, 0, 1, 0, 1]) }, 6, 1);
    const reds = Array.from(ramp.data.subarray(0, 6));
    for (let i = 1; i < 6; i++) assert.ok(reds[i] >= reds[i - 1]);
    assert.ok(reds[0] >= 0 && reds[5] <= 1);
  });
});

/** Reference statistics computed independently of color.ts: plain sums over interleaved pixels. */
function referenceStats(img: RgbImage): { mean: number[]; cov: number[][] } {
  const n = img.width * img.height;
  const px: number[][] = [];
  for (let i = 0; i < n; i++) px.push([img.data[i], img.data[n + i], img.data[2 * n + i]]);
  const mean = [0, 1, 2].map((c) => px.reduce((s, p) => s + p[c], 0) / n);
  const cov = [0, 1, 2].map((a) => [0, 1, 2].map((b) => px.reduce((s, p) => s + (p[a] - mean[a]) * (p[b] - mean[b]), 0) / n));
  return { mean, cov };
}

/** An image with correlated channels: colour = base + mixing of random values. */
function randomImage(width: number, height: number, seed: number, base: number[], mix: number[][]): RgbImage {
  const rand = rng(seed);
  const n = width * height;
  const data = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    const z = [rand() - 0.5, rand() - 0.5, rand() - 0.5];
    for (let c = 0; c < 3; c++) data[c * n + i] = base[c] + mix[c][0] * z[0] + mix[c][1] * z[1] + mix[c][2] * z[2];
  }
  return { width, height, data };
}

describe('preserveColor', () => {
  test('symmetricEigen3 reconstructs the matrix with orthonormal eigenvectors', () => {
    const m: Mat3 = [4, 1, 0.5, 1, 3, 0.2, 0.5, 0.2, 1];
    const { values, vectors: v } = symmetricEigen3(m);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        let rec = 0, dot = 0;
        for (let k = 0; k < 3; k++) {
          rec += v[3 * i + k] * values[k] * v[3 * j + k];
          dot += v[3 * k + i] * v[3 * k + j];
        }
        assert.ok(Math.abs(rec - m[3 * i + j]) < 1e-12, `reconstruction (${i},${j})`);
        assert.ok(Math.abs(dot - (i === j ? 1 : 0)) < 1e-12, `orthonormality (${i},${j})`);
      }
    }
  });

  test("the style takes the content's mean and covariance, keeping its own size", () => {
    const style = randomImage(31, 17, 1, [0.7, 0.3, 0.2], [[0.5, 0.1, 0], [0.3, 0.2, 0.05], [0, 0.1, 0.3]]);
    const content = randomImage(20, 25, 2, [0.2, 0.5, 0.6], [[0.2, 0, 0.1], [0.1, 0.4, 0], [0.2, 0.2, 0.2]]);
    const out = preserveColor(style, content);
    assert.deepEqual([out.width, out.height, out.data.length], [31, 17, 3 * 31 * 17]);
    const got = referenceStats(out);
    const want = referenceStats(content);
    for (let a = 0; a < 3; a++) {
      assert.ok(Math.abs(got.mean[a] - want.mean[a]) < 1e-5, `mean[${a}] ${got.mean[a]} vs ${want.mean[a]}`);
      for (let b = 0; b < 3; b++) {
        assert.ok(Math.abs(got.cov[a][b] - want.cov[a][b]) < 1e-3, `cov[${a}][${b}] ${got.cov[a][b]} vs ${want.cov[a][b]}`);
      }
    }
    // The style's structure is kept: output and style pixels stay strongly correlated.
    const s = referenceStats(style);
    let corr = 0, vs = 0, vo = 0;
    const n = 31 * 17;
    for (let i = 0; i < n; i++) {
      const ds = style.data[i] - s.mean[0];
      const dout = out.data[i] - got.mean[0];
      corr += ds * dout; vs += ds * ds; vo += dout * dout;
    }
    assert.ok(Math.abs(corr / Math.sqrt(vs * vo)) > 0.5);
  });

  test('a flat style becomes the content mean, without NaN', () => {
    const style: RgbImage = { width: 4, height: 4, data: new Float32Array(48).fill(0.5) };
    const content = gradient(5, 5);
    const want = referenceStats(content).mean;
    const out = preserveColor(style, content);
    for (let c = 0; c < 3; c++) for (let i = 0; i < 16; i++) assert.ok(Math.abs(out.data[c * 16 + i] - want[c]) < 1e-6);
  });
});

describe('masks', () => {
  /** A grey PNG mask from a function of (x, y) giving 0..255. */
  async function writeMask(name: string, width: number, height: number, value: (x: number, y: number) => number): Promise<string> {
    const px = new Uint8Array(width * height);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) px[y * width + x] = value(x, y);
    const file = path.join(dir, name);
    await writeRaw(file, px, width, height, 1);
    return file;
  }

  test('reads 0/1 values at the same size', async () => {
    const file = await writeMask('half.png', 20, 10, (x) => (x < 10 ? 255 : 0));
    const m = await readMask(file, 20, 10);
    assert.equal(m.length, 200);
    for (let y = 0; y < 10; y++) for (let x = 0; x < 20; x++) assert.equal(m[y * 20 + x], x < 10 ? 1 : 0);
  });

  test('thresholds near-black and near-white at 0.5 and tolerates a few grey pixels', async () => {
    // Values 20 and 235 are near-black/near-white; 3 of 400 pixels (0.75%) are mid-grey.
    const file = await writeMask('soft.png', 20, 20, (x, y) => (y === 0 && x < 3 ? 128 : x < 10 ? 235 : 20));
    const m = await readMask(file, 20, 20);
    assert.equal(m[5 * 20 + 2], 1);
    assert.equal(m[5 * 20 + 15], 0);
    assert.equal(m[0], 1); // 128/255 >= 0.5
    for (const v of m) assert.ok(v === 0 || v === 1);
  });

  test('resizes to the requested size', async () => {
    const file = await writeMask('small.png', 8, 4, (x) => (x < 4 ? 255 : 0));
    const big = await readMask(file, 32, 16);
    assert.equal(big.length, 512);
    for (let y = 0; y < 16; y++) {
      for (let x = 0; x < 32; x++) if (x < 15 || x > 16) assert.equal(big[y * 32 + x], x < 16 ? 1 : 0, `(${x},${y})`);
    }
    const tiny = await readMask(file, 2, 1);
    assert.deepEqual(Array.from(tiny), [1, 0]);
  });

  test('refuses a grey (non-binary) mask, naming the file', async () => {
    const file = await writeMask('ramp.png', 64, 8, (x) => Math.round((255 * x) / 63));
    await assertUserError(() => readMask(file, 64, 8), file, 'is not a black-and-white mask', '% of its pixels are grey', 'pure white');
  });

  test('bad mask files give the image errors', async () => {
    const file = path.join(dir, 'missing-mask.png');
    await assertUserError(() => readMask(file, 4, 4), file);
  });

  test('downsampleMask averages blocks and thresholds at 0.5', () => {
    const w = 16, h = 16;
    const m = new Float32Array(w * h);
    // Top-left block: 40 of 64 ones (>= half). Top-right: 20 of 64. Bottom row: all ones / zeros.
    for (let i = 0; i < 40; i++) m[Math.floor(i / 8) * w + (i % 8)] = 1;
    for (let i = 0; i < 20; i++) m[Math.floor(i / 8) * w + 8 + (i % 8)] = 1;
    for (let y = 8; y < 16; y++) for (let x = 0; x < 8; x++) m[y * w + x] = 1;
    assert.deepEqual(Array.from(downsampleMask(m, w, h, 8)), [1, 0, 1, 0]);

    // Odd sizes: floor by default, and a ceil-sized output averages the partial edge blocks.
    const odd = new Float32Array(17 * 9).fill(1);
    assert.equal(downsampleMask(odd, 17, 9, 8).length, 2 * 1);
    const ceil = downsampleMask(odd, 17, 9, 8, 3, 2);
    assert.deepEqual(Array.from(ceil), [1, 1, 1, 1, 1, 1]);
  });
});
