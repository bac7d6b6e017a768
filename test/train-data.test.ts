import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { UserError } from '../src/errors.js';
import { UnreadableImageError, PairSampler, listImages, loadTrainingImage, makeBatch, type PairSamplerState } from '../src/train/data.js';
import { PrefetchQueue, TrainingBatches, type TrainingBatch } from '../src/train/prefetch.js';
import { Rng } from '../src/train/rng.js';
import { sourceOf } from '../src/train/epoch-stream.js';

const EXAMPLES = path.join(import.meta.dirname, '..', 'examples');
const NAMES = ['astronaut.jpg', 'chelsea.jpg', 'coffee.jpg', 'rocket.jpg', 'scream.jpg'];

let dir: string;
/** content/: the five examples plus a truncated JPEG and a text file named .jpg; style/: two examples. */
let contentDir: string;
let styleDir: string;
let badDir: string;
before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'adain-train-data-test-'));
  contentDir = path.join(dir, 'content');
  styleDir = path.join(dir, 'style');
  badDir = path.join(dir, 'bad');
  await fs.mkdir(path.join(contentDir, 'sub'), { recursive: true });
  await fs.mkdir(styleDir);
  await fs.mkdir(badDir);
  for (const [i, name] of NAMES.entries()) {
    await fs.copyFile(path.join(EXAMPLES, name), path.join(contentDir, i % 2 ? 'sub' : '', name));
  }
  const rocket = await fs.readFile(path.join(EXAMPLES, 'rocket.jpg'));
  await fs.writeFile(path.join(contentDir, 'truncated.jpg'), rocket.subarray(0, Math.floor(rocket.length * 0.4)));
  await fs.writeFile(path.join(contentDir, 'sub', 'notes.jpg'), 'these are not pixels\n');
  await fs.copyFile(path.join(EXAMPLES, 'scream.jpg'), path.join(styleDir, 'scream.jpg'));
  await fs.copyFile(path.join(EXAMPLES, 'chelsea.jpg'), path.join(styleDir, 'chelsea.jpg'));
  await fs.writeFile(path.join(badDir, 'a.jpg'), 'not an image');
  await fs.writeFile(path.join(badDir, 'b.png'), rocket.subarray(0, 100));
});
after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function isUserError(pattern: RegExp): (err: unknown) => boolean {
  return (err: unknown) => err instanceof UserError && pattern.test(err.message) && !err.message.includes('\n');
}

describe('Rng', () => {
  test('is deterministic per seed and stream and resumes from its state', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const first = Array.from({ length: 5 }, () => a.uint32());
    assert.deepEqual(first, Array.from({ length: 5 }, () => b.uint32()));
    assert.notDeepEqual(first, Array.from({ length: 5 }, () => new Rng(43).uint32()));
    assert.notDeepEqual(new Rng(42, 'x').uint32(), new Rng(42, 'y').uint32());
    const state = JSON.parse(JSON.stringify(a.getState()));
    const next = Array.from({ length: 5 }, () => a.next());
    const c = new Rng(0);
    c.setState(state);
    assert.deepEqual(Array.from({ length: 5 }, () => c.next()), next);
    assert.deepEqual(Array.from({ length: 5 }, () => Rng.fromState(state).next())[0], next[0]);
  });

  test('int, next and shuffle stay in range', () => {
    const rng = new Rng(7);
    const counts = new Array(3).fill(0);
    for (let i = 0; i < 3000; i++) counts[rng.int(3)]++;
    for (const c of counts) assert.ok(c > 850 && c < 1150, `roughly uniform: ${counts}`);
    for (let i = 0; i < 100; i++) {
      const x = rng.next();
      assert.ok(x >= 0 && x < 1);
    }
    assert.equal(rng.int(1), 0);
    assert.throws(() => rng.int(0), RangeError);
    const items = Array.from({ length: 20 }, (_, i) => i);
    const shuffled = rng.shuffle([...items]);
    assert.notDeepEqual(shuffled, items);
    assert.deepEqual([...shuffled].sort((x, y) => x - y), items);
    const parent = new Rng(9);
    const f1 = parent.fork();
    const f2 = parent.fork();
    assert.notEqual(f1.uint32(), f2.uint32());
  });
});

describe('listImages', () => {
  test('lists images recursively, by extension in any case, sorted', async () => {
    const root = path.join(dir, 'listing');
    await fs.mkdir(path.join(root, 'b', 'deep'), { recursive: true });
    await fs.mkdir(path.join(root, '.cache'));
    for (const f of ['z.JPG', 'a.jpeg', 'b/deep/c.webp', 'b/x.Png', 'readme.txt', 'b/noext', '.hidden.jpg', '.cache/d.jpg', 'b/e.gif']) {
      await fs.writeFile(path.join(root, f), '');
    }
    const files = await listImages(root);
    assert.deepEqual(
      files.map((f) => path.relative(root, f)),
      ['a.jpeg', path.join('b', 'deep', 'c.webp'), path.join('b', 'x.Png'), 'z.JPG'],
    );
    assert.deepEqual(await listImages(root), files);
  });

  test('a missing folder, a file or a folder without images is a UserError naming it', async () => {
    const missing = path.join(dir, 'no-such-folder');
    await assert.rejects(listImages(missing), isUserError(/no-such-folder.*does not exist/));
    const empty = path.join(dir, 'empty-folder');
    await fs.mkdir(path.join(empty, 'sub'), { recursive: true });
    await fs.writeFile(path.join(empty, 'sub', 'notes.txt'), 'x');
    await assert.rejects(listImages(empty, { label: 'style' }), isUserError(/^style folder "[^"]*empty-folder" holds no JPEG/));
    await assert.rejects(listImages(path.join(contentDir, 'coffee.jpg')), isUserError(/coffee\.jpg.*not a folder/));
  });
});

describe('PairSampler', () => {
  const contents = ['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6'].map((n) => `/data/coco/${n}.jpg`);
  const styles = ['s0', 's1', 's2'].map((n) => `/data/wikiart/${n}.jpg`);

  test('is deterministic and resumes exactly', () => {
    const a = new PairSampler(contents, styles, { seed: 1 });
    const b = new PairSampler(contents, styles, { seed: 1 });
    const first = Array.from({ length: 10 }, () => a.next());
    assert.deepEqual(Array.from({ length: 10 }, () => b.next()), first);
    const other = new PairSampler(contents, styles, { seed: 2 });
    assert.notDeepEqual(Array.from({ length: 10 }, () => other.next()), first);

    const state: PairSamplerState = JSON.parse(JSON.stringify(a.state()));
    const five = Array.from({ length: 5 }, () => a.next());
    const resumed = new PairSampler(contents, styles, { seed: 1 });
    resumed.restore(state);
    assert.equal(resumed.count, 10);
    assert.deepEqual(Array.from({ length: 5 }, () => resumed.next()), five);
  });

  test('uses every image once per pass over its folder', () => {
    const sampler = new PairSampler(contents, styles, { seed: 3 });
    const pairs = Array.from({ length: 14 }, () => sampler.next());
    for (const pass of [pairs.slice(0, 7), pairs.slice(7, 14)]) {
      assert.deepEqual(pass.map((p) => p.content).sort(), [...contents].sort());
    }
    assert.deepEqual(pairs.slice(0, 3).map((p) => p.style).sort(), [...styles].sort());
  });

  test('style balance by source: sources drawn by the square root of their size, each source\'s images once per pass, resumed exactly', () => {
    // 100 clip-art files and 4 paintings: by file the paintings get 4/104 = 3.8% of the draws
    const big = Array.from({ length: 100 }, (_, i) => `/data/style/clipart__c${i}.png`);
    const small = ['p0', 'p1', 'p2', 'p3'].map((n) => `/data/style/AesUST__${n}.jpg`);
    const mixed = [...big, ...small];
    const sampler = new PairSampler(contents, mixed, { seed: 7, styleBalance: 'source' });
    assert.deepEqual([...(sampler.styleShares()?.keys() ?? [])], ['AesUST', 'clipart']);
    const draws = Array.from({ length: 6000 }, () => sampler.next().style);
    const paintings = draws.filter((f) => f.includes('AesUST__'));
    const expected = Math.sqrt(4) / (Math.sqrt(4) + Math.sqrt(100)); // 1/6
    assert.ok(Math.abs(paintings.length / draws.length - expected) < 0.02, `painting share ${paintings.length / draws.length}`);
    // within a source, every image once per pass over that source
    for (let k = 0; k + 4 <= 40; k += 4) assert.deepEqual(paintings.slice(k, k + 4).sort(), [...small].sort());
    const clipart = draws.filter((f) => f.includes('clipart__'));
    assert.equal(new Set(clipart.slice(0, 100)).size, 100);

    const state: PairSamplerState = JSON.parse(JSON.stringify(sampler.state()));
    const next = Array.from({ length: 50 }, () => sampler.next());
    const resumed = new PairSampler(contents, mixed, { seed: 7, styleBalance: 'source' });
    resumed.restore(state);
    assert.deepEqual(Array.from({ length: 50 }, () => resumed.next()), next);
    // a run drawn by file is not continued as a balanced one, nor the reverse
    const byFile = new PairSampler(contents, mixed, { seed: 7 });
    assert.throws(() => byFile.restore(state), (e: Error) => e instanceof UserError && /balanced by source/.test(e.message));
    assert.throws(() => resumed.restore(JSON.parse(JSON.stringify(byFile.state()))), (e: Error) => e instanceof UserError && /by file/.test(e.message));
  });

  test('the source of a style image: its first subfolder, else the prefix before __, else one source', () => {
    assert.equal(sourceOf('/s/monet/water/1.jpg', '/s'), 'monet');
    assert.equal(sourceOf('/s/openclipart-png__cat.png', '/s'), 'openclipart');
    assert.equal(sourceOf('/s/wesnoth-1-16-trow__a.png', '/s'), sourceOf('/s/wesnoth-1.16-data__b.png', '/s'));
    assert.equal(sourceOf('/s/cat.png', '/s'), '');
    assert.equal(sourceOf('/s/__cat.png', '/s'), '');
  });

  test('subset mode cycles through a fixed, seeded set of pairs', () => {
    const sampler = new PairSampler(contents, styles, { seed: 5, subset: 3 });
    const pairs = Array.from({ length: 9 }, () => sampler.next());
    assert.deepEqual(pairs.slice(3, 6), pairs.slice(0, 3));
    assert.deepEqual(pairs.slice(6, 9), pairs.slice(0, 3));
    const again = new PairSampler(contents, styles, { seed: 5, subset: 3 });
    assert.deepEqual(again.next(), pairs[0]);
    // The subset is the start of the seed's normal sequence.
    const normal = new PairSampler(contents, styles, { seed: 5 });
    assert.deepEqual(Array.from({ length: 3 }, () => normal.next()), pairs.slice(0, 3));
    const state = sampler.state(); // 9 drawn: next is pair 0
    sampler.next();
    const resumed = new PairSampler(contents, styles, { seed: 5, subset: 3 });
    resumed.restore(state);
    assert.deepEqual(resumed.next(), pairs[0]);
  });

  test('restoring into different settings or files is a UserError', () => {
    const state = new PairSampler(contents, styles, { seed: 1 }).state();
    assert.throws(() => new PairSampler(contents, styles, { seed: 2 }).restore(state), isUserError(/seed 1/));
    assert.throws(() => new PairSampler(contents, styles, { seed: 1, subset: 4 }).restore(state), isUserError(/subset/));
    assert.throws(() => new PairSampler(contents.slice(1), styles, { seed: 1 }).restore(state), isUserError(/content images differ/));
    const renamed = [...styles.slice(0, 2), '/data/wikiart/other.jpg'];
    assert.throws(() => new PairSampler(contents, renamed, { seed: 1 }).restore(state), isUserError(/style images differ/));
    // Moving the whole folder is fine: names are compared relative to it.
    const moved = contents.map((f) => f.replace('/data/', '/mnt/big/'));
    assert.doesNotThrow(() => new PairSampler(moved, styles, { seed: 1 }).restore(state));
  });
});

describe('loadTrainingImage', () => {
  test('crops of the right size that depend on the seed', async () => {
    const file = path.join(contentDir, 'coffee.jpg'); // 600x400
    const load = (seed: number) => loadTrainingImage(file, { loadSize: 96, crop: 64, rng: new Rng(seed) });
    const [a, b, c] = await Promise.all([load(1), load(1), load(2)]);
    for (const img of [a, b, c]) {
      assert.equal(img.width, 64);
      assert.equal(img.height, 64);
      assert.equal(img.data.length, 3 * 64 * 64);
      assert.ok(img.data.every((v) => v >= 0 && v <= 1));
    }
    assert.deepEqual(a.data, b.data);
    assert.notDeepEqual(a.data, c.data);
  });

  test('a small load size is raised to the crop; EXIF orientation is applied', async () => {
    const rotated = path.join(dir, 'rotated.jpg');
    // Stored 120 wide x 40 high, displayed 40 wide x 120 high (orientation 6).
    await sharp({ create: { width: 120, height: 40, channels: 3, background: '#808080' } })
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toFile(rotated);
    const img = await loadTrainingImage(rotated, { loadSize: 16, crop: 32, rng: new Rng(0) });
    assert.equal(img.width, 32);
    assert.equal(img.height, 32);
  });

  test('truncated files and text files named .jpg throw UnreadableImageError', async () => {
    const opts = { loadSize: 64, crop: 32, rng: new Rng(0) };
    await assert.rejects(loadTrainingImage(path.join(contentDir, 'truncated.jpg'), opts), (err: unknown) => {
      assert.ok(err instanceof UnreadableImageError);
      assert.match(err.message, /truncated\.jpg/);
      return true;
    });
    await assert.rejects(loadTrainingImage(path.join(contentDir, 'sub', 'notes.jpg'), opts), UnreadableImageError);
    await assert.rejects(loadTrainingImage(path.join(dir, 'gone.jpg'), opts), UnreadableImageError);
  });

  test('makeBatch stacks images as [B,3,H,W]', () => {
    const img = (v: number) => ({ width: 2, height: 1, data: new Float32Array(6).fill(v) });
    const batch = makeBatch([img(0.25), img(0.75)]);
    assert.equal(batch.length, 12);
    assert.deepEqual([...batch.subarray(0, 6)], new Array(6).fill(0.25));
    assert.deepEqual([...batch.subarray(6)], new Array(6).fill(0.75));
    assert.throws(() => makeBatch([img(0), { width: 1, height: 2, data: new Float32Array(6) }]), RangeError);
  });
});

describe('PrefetchQueue', () => {
  test('hands items out in start order whatever their timing, and counts waits', async () => {
    let n = 0;
    const queue = new PrefetchQueue<number, number>({
      depth: 3,
      snapshot: () => n,
      start: () => {
        const i = n++;
        return new Promise((resolve) => setTimeout(() => resolve(i), (i * 7) % 5));
      },
    });
    assert.equal(queue.state(), 0);
    const got: number[] = [];
    for (let i = 0; i < 8; i++) got.push(await queue.next());
    assert.deepEqual(got, [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.equal(queue.state(), 8);
    const stats = queue.stats();
    assert.equal(stats.items, 8);
    assert.ok(stats.waitMs >= stats.firstWaitMs && stats.maxWaitMs <= stats.waitMs);
    await queue.close();
    await assert.rejects(queue.next(), /closed/);
  });

  test('a failing item rejects only when it is reached', async () => {
    let n = 0;
    const queue = new PrefetchQueue<number, undefined>({
      depth: 2,
      start: () => {
        const i = n++;
        return i === 1 ? Promise.reject(new Error('boom')) : Promise.resolve(i);
      },
    });
    assert.equal(await queue.next(), 0);
    await assert.rejects(queue.next(), /boom/);
    assert.equal(await queue.next(), 2);
    await queue.close();
  });
});

describe('TrainingBatches', () => {
  const common = { batchSize: 2, loadSize: 48, crop: 32, seed: 11 };

  async function take(stream: TrainingBatches, count: number): Promise<TrainingBatch[]> {
    const out: TrainingBatch[] = [];
    for (let i = 0; i < count; i++) out.push(await stream.next());
    return out;
  }

  test('skips unreadable files with one warning each; order and resume are deterministic', async () => {
    const contents = await listImages(contentDir);
    const styles = await listImages(styleDir);
    assert.equal(contents.length, 7);

    const warnings: string[] = [];
    const deep = new TrainingBatches(new PairSampler(contents, styles, { seed: 4 }), { ...common, depth: 4, warn: (m) => warnings.push(m) });
    // 8 batches of 2 = 16 content draws: every file at least twice (one pass is 7 draws).
    const a = await take(deep, 8);
    const state = JSON.parse(JSON.stringify(deep.state()));
    const aNext = await deep.next();
    await deep.close();

    assert.equal(warnings.length, 2, warnings.join('\n'));
    assert.ok(warnings.some((w) => w.includes('truncated.jpg')));
    assert.ok(warnings.some((w) => w.includes('notes.jpg')));
    assert.ok(warnings.every((w) => !w.includes('\n')));
    assert.deepEqual(deep.unreadable().map((u) => path.basename(u.file)).sort(), ['notes.jpg', 'truncated.jpg']);
    for (const batch of a) {
      assert.equal(batch.content.length, 2 * 3 * 32 * 32);
      assert.equal(batch.style.length, 2 * 3 * 32 * 32);
      assert.ok(batch.contentFiles.every((f) => !/truncated|notes/.test(f)));
    }
    assert.deepEqual(
      a.map((b) => b.index),
      [0, 1, 2, 3, 4, 5, 6, 7],
    );

    // Same seeds, no prefetching: the same batches, byte for byte.
    const shallowWarnings: string[] = [];
    const shallow = new TrainingBatches(new PairSampler(contents, styles, { seed: 4 }), { ...common, depth: 1, warn: (m) => shallowWarnings.push(m) });
    const b = await take(shallow, 8);
    await shallow.close();
    assert.equal(shallowWarnings.length, 2);
    for (let i = 0; i < 8; i++) {
      assert.deepEqual(b[i].contentFiles, a[i].contentFiles);
      assert.deepEqual(b[i].styleFiles, a[i].styleFiles);
      assert.ok(Buffer.from(b[i].content.buffer).equals(Buffer.from(a[i].content.buffer)), `content of batch ${i}`);
      assert.ok(Buffer.from(b[i].style.buffer).equals(Buffer.from(a[i].style.buffer)), `style of batch ${i}`);
    }

    // Resuming from the state taken after 8 batches gives batch 8 again.
    const resumed = new TrainingBatches(new PairSampler(contents, styles, { seed: 4 }), { ...common, depth: 2, resume: state });
    const r = await resumed.next();
    await resumed.close();
    assert.equal(r.index, 8);
    assert.deepEqual(r.contentFiles, aNext.contentFiles);
    assert.ok(Buffer.from(r.content.buffer).equals(Buffer.from(aNext.content.buffer)));
    assert.ok(Buffer.from(r.style.buffer).equals(Buffer.from(aNext.style.buffer)));
  });

  test('a folder where every file fails is a UserError', async () => {
    const styles = await listImages(styleDir);
    const bad = await listImages(badDir);
    const warnings: string[] = [];
    const stream = new TrainingBatches(new PairSampler(bad, styles, { seed: 1 }), { ...common, depth: 1, warn: (m) => warnings.push(m) });
    await assert.rejects(stream.next(), isUserError(/none of the 2 content images under "[^"]*bad" can be read/));
    await stream.close();
    assert.equal(warnings.length, 2);
  });
});
