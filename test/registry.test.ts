import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../src/errors.js';
import { DEFAULT_MODEL, MODELS, findModel, type WeightFile } from '../src/models/registry.js';
import { BUNDLED_DIR, modelStatus, modelsCacheDir, resolveWeightFile } from '../src/models/resolve.js';
import { downloadVerified } from '../src/weights/download.js';
import { createProgress } from '../src/cli/progress.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sharedModels = path.resolve(repoRoot, '../shared/models');

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Every file under dir, relative to it, so a test can assert nothing was left behind. */
async function listFiles(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'adain-registry-'));
}

// Keep the user's environment (and real cache) out of the tests.
const savedEnv = { models: process.env.ADAIN_MODELS_DIR, cache: process.env.ADAIN_CACHE_DIR };
const scratch: string[] = [];
before(async () => {
  delete process.env.ADAIN_MODELS_DIR;
  const d = await tempDir();
  scratch.push(d);
  process.env.ADAIN_CACHE_DIR = d;
});
after(async () => {
  if (savedEnv.models === undefined) delete process.env.ADAIN_MODELS_DIR;
  else process.env.ADAIN_MODELS_DIR = savedEnv.models;
  if (savedEnv.cache === undefined) delete process.env.ADAIN_CACHE_DIR;
  else process.env.ADAIN_CACHE_DIR = savedEnv.cache;
  for (const d of scratch) await fs.rm(d, { recursive: true, force: true });
});

describe('registry', () => {
  test('default model exists and names are unique', () => {
    assert.equal(findModel(DEFAULT_MODEL).name, 'cd16x-r41');
    assert.equal(new Set(MODELS.map((m) => m.name)).size, MODELS.length);
    for (const name of ['cd16x-r41', 'vgg19-r31', 'vgg19-r41', 'vgg19bn-r41']) assert.equal(findModel(name).name, name);
  });

  test('unknown model is a one-line UserError listing the known names', () => {
    assert.throws(
      () => findModel('nope'),
      (e: unknown) => e instanceof UserError && /nope/.test(e.message) && /cd16x-r41/.test(e.message) && !e.message.includes('\n'),
    );
  });

  test('reconstruction-decoder models say they stylise weakly', () => {
    for (const m of MODELS.filter((m) => m.decoder.kind === 'reconstruction')) assert.match(m.description, /weakly/);
  });

  test('vgg19bn encoder is checked against the sha256 prefix in its torchvision file name', () => {
    const w = findModel('vgg19bn-r41').encoder.weights;
    assert.equal(w.shaPrefix, 'c79401a0');
    assert.ok(w.url?.endsWith('vgg19_bn-c79401a0.pth'));
  });
});

describe('resolving from the shared models dir', () => {
  const present = existsSync(path.join(sharedModels, 'PROVENANCE.md'));

  test('finds the cd16x and vgg19 files and they match PROVENANCE', { skip: !present && 'no ../shared/models' }, async () => {
    const provenance = await fs.readFile(path.join(sharedModels, 'PROVENANCE.md'), 'utf8');
    const cacheDir = await tempDir();
    scratch.push(cacheDir);
    for (const name of ['cd16x-r41-recon', 'vgg19-r31-recon']) {
      const spec = findModel(name);
      for (const w of [spec.encoder.weights, spec.decoder.weights]) {
        const local = await resolveWeightFile(w, { modelsDir: sharedModels, cacheDir, download: false });
        // the cd16x encoders ship in the package and are looked up first
        const bundled = existsSync(path.join(BUNDLED_DIR, w.file));
        assert.equal(local, path.join(bundled ? BUNDLED_DIR : sharedModels, w.file));
        const bytes = await fs.readFile(local);
        assert.equal(bytes.length, w.bytes);
        assert.equal(sha256(bytes), w.sha256);
        // The registry's hash and size are the ones PROVENANCE records for this file name.
        const row = provenance.split('\n').find((l) => l.includes(path.basename(w.file)));
        assert.ok(row, `${w.file} in PROVENANCE.md`);
        assert.ok(row.includes(w.sha256 as string) && row.includes(`| ${w.bytes} |`), row);
      }
      const status = await modelStatus(spec, { modelsDir: sharedModels, cacheDir });
      assert.ok(status.every((s) => (s.source === '--models-dir' || s.source === 'bundled') && s.localPath !== null && s.problem === null));
    }
    assert.deepEqual(await listFiles(cacheDir), [], 'a models dir lookup writes nothing to the cache');
  });

  test('the trained default decoders are bundled with the package', async () => {
    for (const name of ['cd16x-r41', 'cd16x-r31', 'vgg19-r31']) {
      const w = findModel(name).decoder.weights;
      const local = await resolveWeightFile(w, { download: false });
      assert.equal(local, path.join(BUNDLED_DIR, w.file));
      const status = await modelStatus(findModel(name), { modelsDir: sharedModels });
      assert.equal(status.find((s) => s.role === 'decoder')!.source, 'bundled');
    }
  });

  test('ADAIN_MODELS_DIR is searched when no --models-dir is given', { skip: !present && 'no ../shared/models' }, async () => {
    process.env.ADAIN_MODELS_DIR = sharedModels;
    try {
      const w = findModel('vgg19-r31').encoder.weights;
      assert.equal(await resolveWeightFile(w, { download: false }), path.join(sharedModels, w.file));
    } finally {
      delete process.env.ADAIN_MODELS_DIR;
    }
  });
});

describe('missing files', () => {
  test('a file with no URL is a UserError naming the file and where to put it', async () => {
    const modelsDir = await tempDir();
    scratch.push(modelsDir);
    const w = findModel('vgg19bn-r41').decoder.weights;
    await assert.rejects(resolveWeightFile(w, { modelsDir }), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.ok(e.message.includes(path.join(modelsDir, 'adain/vgg19bn_decoder.pth')), e.message);
      assert.match(e.message, /--models-dir/);
      assert.match(e.message, /ADAIN_MODELS_DIR/);
      assert.ok(!e.message.includes('\n'));
      return true;
    });
    const status = await modelStatus(findModel('vgg19bn-r41'), { modelsDir });
    assert.equal(status[1].localPath, null);
  });

  test('a wrong-size file in a models dir is a UserError, and the file is left alone', async () => {
    const modelsDir = await tempDir();
    scratch.push(modelsDir);
    const w: WeightFile = { file: 'x/w.pth', sha256: sha256(Buffer.from('abc')), bytes: 3 };
    await fs.mkdir(path.join(modelsDir, 'x'));
    await fs.writeFile(path.join(modelsDir, 'x/w.pth'), 'abcd');
    await assert.rejects(resolveWeightFile(w, { modelsDir }), UserError);
    assert.deepEqual(await listFiles(modelsDir), ['x/w.pth']);
  });
});

describe('verified downloads from a local server', () => {
  const payload = randomBytes(256 * 1024 + 17);
  let server: http.Server;
  let base = '';

  before(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/good.bin') {
        res.writeHead(200, { 'content-length': payload.length });
        res.end(payload);
      } else if (req.url === '/cut.bin') {
        res.writeHead(200, { 'content-length': payload.length });
        res.write(payload.subarray(0, payload.length >> 1), () => res.socket?.destroy());
      } else {
        res.writeHead(404);
        res.end('not here');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const weight = (name: string, over: Partial<WeightFile> = {}): WeightFile => ({
    file: `test/${name}`,
    url: `${base}/${name}`,
    sha256: sha256(payload),
    bytes: payload.length,
    ...over,
  });

  test('a download with the right hash lands in the cache and is reused', async () => {
    const cacheDir = await tempDir();
    scratch.push(cacheDir);
    const seen: number[] = [];
    const w = weight('good.bin');
    const local = await resolveWeightFile(w, { cacheDir, onProgress: (done) => seen.push(done) });
    assert.equal(local, path.join(modelsCacheDir({ cacheDir }), 'test/good.bin'));
    assert.deepEqual(await fs.readFile(local), payload);
    assert.equal(seen.at(-1), payload.length);
    assert.deepEqual((await listFiles(cacheDir)).sort(), ['models/test/good.bin', 'models/test/good.bin.sha256-ok']);

    // Second lookup finds the cached copy: no request is made.
    const noNetwork = (() => Promise.reject(new Error('network used'))) as typeof fetch;
    assert.equal(await resolveWeightFile(w, { cacheDir, fetchImpl: noNetwork }), local);
    const status = await modelStatus(
      { ...findModel('cd16x-r41'), encoder: { kind: 'cd16x', cut: 'relu4_1', weights: w } },
      { cacheDir },
    );
    assert.equal(status[0].source, 'cache');
    assert.equal(status[0].localPath, local);
  });

  test('a damaged cached copy is replaced by a fresh download', async () => {
    const cacheDir = await tempDir();
    scratch.push(cacheDir);
    const w = weight('good.bin');
    const cached = path.join(modelsCacheDir({ cacheDir }), w.file);
    await fs.mkdir(path.dirname(cached), { recursive: true });
    const bad = Buffer.from(payload);
    bad[7] ^= 0xff; // same size, wrong hash
    await fs.writeFile(cached, bad);
    assert.equal(await resolveWeightFile(w, { cacheDir }), cached);
    assert.deepEqual(await fs.readFile(cached), payload);
  });

  test('a wrong hash is a UserError and leaves nothing in the cache', async () => {
    const cacheDir = await tempDir();
    scratch.push(cacheDir);
    const wrong = 'f'.repeat(64);
    await assert.rejects(resolveWeightFile(weight('good.bin', { sha256: wrong }), { cacheDir }), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.ok(e.message.includes(`${base}/good.bin`) && e.message.includes(wrong) && e.message.includes(sha256(payload)), e.message);
      assert.match(e.message, /retry/);
      assert.ok(!e.message.includes('\n'));
      return true;
    });
    assert.deepEqual(await listFiles(cacheDir), []);
  });

  test('a wrong sha256 prefix is a UserError', async () => {
    const dir = await tempDir();
    scratch.push(dir);
    const dest = path.join(dir, 'f.bin');
    await assert.rejects(downloadVerified(`${base}/good.bin`, dest, { shaPrefix: 'zz' }), UserError);
    assert.deepEqual(await listFiles(dir), []);
    const ok = await downloadVerified(`${base}/good.bin`, dest, { shaPrefix: sha256(payload).slice(0, 8) });
    assert.equal(ok, sha256(payload));
  });

  test('a wrong size is a UserError and leaves nothing behind', async () => {
    const cacheDir = await tempDir();
    scratch.push(cacheDir);
    await assert.rejects(resolveWeightFile(weight('good.bin', { bytes: payload.length + 1 }), { cacheDir }), UserError);
    await assert.rejects(resolveWeightFile(weight('good.bin', { bytes: payload.length - 1 }), { cacheDir }), UserError);
    assert.deepEqual(await listFiles(cacheDir), []);
  });

  test('a connection cut half-way is a UserError and leaves no partial file', async () => {
    const cacheDir = await tempDir();
    scratch.push(cacheDir);
    await assert.rejects(resolveWeightFile(weight('cut.bin'), { cacheDir }), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.ok(e.message.includes(`${base}/cut.bin`), e.message);
      return true;
    });
    assert.deepEqual(await listFiles(cacheDir), []);
  });

  test('HTTP 404 is a UserError naming the URL and status', async () => {
    const cacheDir = await tempDir();
    scratch.push(cacheDir);
    await assert.rejects(resolveWeightFile(weight('missing.bin'), { cacheDir }), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.ok(e.message.includes(`${base}/missing.bin`) && e.message.includes('404'), e.message);
      return true;
    });
    assert.deepEqual(await listFiles(cacheDir), []);
  });

  test('download: false refuses to fetch', async () => {
    const cacheDir = await tempDir();
    scratch.push(cacheDir);
    await assert.rejects(resolveWeightFile(weight('good.bin'), { cacheDir, download: false }), /downloads are off/);
    assert.deepEqual(await listFiles(cacheDir), []);
  });
});

describe('progress', () => {
  test('prints a single final line when the stream is not a terminal', () => {
    const lines: string[] = [];
    const stream = { isTTY: false, write: (s: string) => (lines.push(s), true) } as unknown as NodeJS.WritableStream;
    const p = createProgress('Downloading w.pth', 2048, { unit: 'bytes', stream });
    p.update(1024);
    p.update(2048);
    assert.deepEqual(lines, []);
    p.stop();
    p.stop();
    assert.deepEqual(lines, ['Downloading w.pth: 2.0 KB\n']);
  });
});

test('the default model needs nothing but the package: its encoder is bundled byte for byte and found first', async () => {
  const empty = await fs.mkdtemp(path.join(os.tmpdir(), 'adain-nocache-'));
  const saved = process.env.ADAIN_MODELS_DIR;
  delete process.env.ADAIN_MODELS_DIR;
  try {
    for (const name of [DEFAULT_MODEL, 'cd16x-r31-recon']) {
      const w = findModel(name).encoder.weights;
      const file = await resolveWeightFile(w, { cacheDir: empty, download: false });
      assert.equal(file, path.join(BUNDLED_DIR, w.file), `${name}'s encoder`);
      assert.equal(createHash('sha256').update(await fs.readFile(file)).digest('hex'), w.sha256, `${w.file} differs from the upstream file`);
    }
    const decoder = await resolveWeightFile(findModel(DEFAULT_MODEL).decoder.weights, { cacheDir: empty, download: false });
    assert.ok(decoder.startsWith(BUNDLED_DIR));
  } finally {
    if (saved !== undefined) process.env.ADAIN_MODELS_DIR = saved;
    await fs.rm(empty, { recursive: true, force: true });
  }
});
