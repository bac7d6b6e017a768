import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { UserError } from '../src/errors.js';
import { readSafetensors, readTorchCheckpoint, readWeights, writeSafetensors, type TensorMap } from '../src/weights/index.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURES = join(ROOT, 'test/fixtures/weights');
const MODELS = join(ROOT, '../shared/models');
const VGG3 = join(MODELS, 'vgg19-normalised/vgg_normalised_conv3_1.pth');
const CD4 = join(MODELS, 'cd16x/encoders/4SE_20191110-132643_E20.pth');
const noShared = existsSync(MODELS) ? false : `${MODELS} is absent; real-checkpoint tests need the shared models`;

type Expected = Record<string, { shape: number[]; values: number[] }>;
let expected: Expected;
let tmp: string;

before(async () => {
  expected = JSON.parse(await readFile(join(FIXTURES, 'expected.json'), 'utf8')) as Expected;
  tmp = await mkdtemp(join(tmpdir(), 'adain-weights-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function assertMatchesExpected(tensors: TensorMap): void {
  assert.deepEqual([...tensors.keys()], Object.keys(expected), 'names, in stored order, without integer buffers');
  for (const [name, { shape, values }] of Object.entries(expected)) {
    const t = tensors.get(name)!;
    assert.deepEqual(t.shape, shape, name);
    assert.ok(t.data instanceof Float32Array, name);
    assert.deepEqual(Array.from(t.data), values, name); // exact: expected holds the float32 values
  }
}

async function assertUserError(promise: Promise<unknown>, path: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof UserError, `expected a UserError, got ${String(err)}`);
    assert.ok(err.message.includes(path), `message names the file: ${err.message}`);
    assert.ok(!err.message.includes('\n'), 'message is one line');
    assert.match(err.message, pattern);
    return true;
  });
}

describe('PyTorch checkpoints', () => {
  for (const file of ['legacy.pth', 'zip.pth', 'legacy-p4.pth', 'zip-p4.pth']) {
    test(`${file}: offsets, strides, shared storages, half and double`, async () => {
      assertMatchesExpected(await readTorchCheckpoint(join(FIXTURES, file)));
    });
  }

  test('nested {epoch, model} and {state_dict} checkpoints', async () => {
    assertMatchesExpected(await readTorchCheckpoint(join(FIXTURES, 'nested-legacy.pth')));
    assertMatchesExpected(await readTorchCheckpoint(join(FIXTURES, 'nested-zip.pth')));
  });

  test('readWeights sniffs both torch formats', async () => {
    assertMatchesExpected(await readWeights(join(FIXTURES, 'legacy.pth')));
    assertMatchesExpected(await readWeights(join(FIXTURES, 'zip.pth')));
  });

  test('real normalised VGG-19 (legacy format)', { skip: noShared }, async () => {
    const sd = await readWeights(VGG3);
    const shapes = Object.fromEntries([...sd].map(([k, t]) => [k, t.shape]));
    assert.deepEqual(shapes, {
      '0.weight': [3, 3, 1, 1], '0.bias': [3],
      '2.weight': [64, 3, 3, 3], '2.bias': [64],
      '5.weight': [64, 64, 3, 3], '5.bias': [64],
      '9.weight': [128, 64, 3, 3], '9.bias': [128],
      '12.weight': [128, 128, 3, 3], '12.bias': [128],
      '16.weight': [256, 128, 3, 3], '16.bias': [256],
    });
    assert.deepEqual(Array.from(sd.get('0.weight')!.data), [0, 0, 255, 0, 255, 0, 255, 0, 0]); // RGB -> BGR x255
    const w = sd.get('16.weight')!.data;
    assert.equal(w[12345], Math.fround(0.0037637962959706783)); // values from torch.load
    assert.ok(Math.abs(w.reduce((a, b) => a + b, 0) - -118.41515333914833) < 1e-3);
  });

  test('real Collaborative Distillation encoder ({epoch, model}, CUDA storages)', { skip: noShared }, async () => {
    const sd = await readWeights(CD4);
    assert.equal(sd.size, 28);
    const w = sd.get('conv41.weight')!;
    assert.deepEqual(w.shape, [128, 64, 3, 3]);
    assert.deepEqual(Array.from(w.data.subarray(0, 3)), [0.017580339685082436, 0.00827037263661623, 0.009192710742354393]);
  });
});

describe('safetensors', () => {
  test('round trip keeps values, order and metadata; readWeights sniffs it', async () => {
    const sd = await readTorchCheckpoint(join(FIXTURES, 'legacy.pth'));
    // An integer-like name must not jump ahead of the others.
    const tensors: TensorMap = new Map([...sd, ['7', { shape: [2], data: new Float32Array([1, -2]) }]]);
    const path = join(tmp, 'roundtrip.safetensors');
    const metadata = { format: 'pt', source: 'legacy.pth', note: 'ünïcode "quoted"' };
    await writeSafetensors(path, tensors, metadata);
    assert.deepEqual(await readdir(tmp), ['roundtrip.safetensors'], 'no temp file left behind');

    const bytes = await readFile(path);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    assert.equal((8 + headerLength) % 8, 0, 'data starts 8-byte aligned');
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, { dtype: string }>;
    assert.equal(header['0.weight'].dtype, 'F32');

    const back = await readSafetensors(path);
    assert.deepEqual(back.metadata, metadata);
    assert.deepEqual([...back.tensors.keys()], [...tensors.keys()]);
    for (const [name, t] of tensors) {
      assert.deepEqual(back.tensors.get(name)!.shape, t.shape, name);
      assert.deepEqual(Array.from(back.tensors.get(name)!.data), Array.from(t.data), name);
    }
    const again = await readWeights(path);
    assert.deepEqual([...again.keys()], [...tensors.keys()]);
    await rm(path);
  });

  test('empty metadata reads back as {}', async () => {
    const path = join(tmp, 'plain.safetensors');
    await writeSafetensors(path, new Map([['w', { shape: [1], data: new Float32Array([3]) }]]), {});
    assert.deepEqual(await readSafetensors(path), { tensors: new Map([['w', { shape: [1], data: new Float32Array([3]) }]]), metadata: {} });
    await rm(path);
  });

  test('truncated or inconsistent files are UserErrors naming the file', async () => {
    const good = join(tmp, 'good.safetensors');
    await writeSafetensors(good, new Map([['a', { shape: [2, 2], data: new Float32Array(4) }]]), {});
    const bytes = await readFile(good);

    const cut = join(tmp, 'cut.safetensors');
    await writeFile(cut, bytes.subarray(0, bytes.length - 4));
    await assertUserError(readSafetensors(cut), cut, /truncated/);
    await assertUserError(readWeights(cut), cut, /truncated/);

    const badShape = join(tmp, 'bad-shape.safetensors');
    await writeFile(badShape, Buffer.from(bytes.toString('latin1').replace('[2,2]', '[2,3]'), 'latin1'));
    await assertUserError(readSafetensors(badShape), badShape, /not a valid safetensors file/);
  });
});

describe('unusable files', () => {
  test('0-byte file', async () => {
    const path = join(tmp, 'empty.pth');
    await writeFile(path, new Uint8Array(0));
    await assertUserError(readWeights(path), path, /empty \(0 bytes\)/);
    await assertUserError(readTorchCheckpoint(path), path, /empty/);
  });

  test('missing file and a folder', async () => {
    const path = join(tmp, 'does-not-exist.pth');
    await assertUserError(readWeights(path), path, /does not exist/);
    await assertUserError(readSafetensors(path), path, /does not exist/);
    await assertUserError(readWeights(tmp), tmp, /is a folder/);
  });

  test('random bytes', async () => {
    let seed = 12345; // a fixed LCG keeps the bytes the same on every run
    const bytes = Uint8Array.from({ length: 4096 }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 24));
    const path = join(tmp, 'random.pth');
    await writeFile(path, bytes);
    await assertUserError(readWeights(path), path, /neither a safetensors file nor a PyTorch checkpoint/);
    await assertUserError(readTorchCheckpoint(path), path, /not a PyTorch checkpoint/);
    // Random bytes behind a pickle PROTO opcode must not pass for a legacy checkpoint either.
    bytes[0] = 0x80;
    bytes[1] = 0x02;
    await writeFile(path, bytes);
    await assertUserError(readWeights(path), path, /not a PyTorch checkpoint/);
  });

  test('a safetensors file is not a PyTorch checkpoint', async () => {
    const path = join(tmp, 'weights.pth');
    await writeSafetensors(path, new Map([['a', { shape: [1], data: new Float32Array(1) }]]), {});
    await assertUserError(readTorchCheckpoint(path), path, /not a PyTorch checkpoint/);
  });

  const truncate = async (source: string, name: string): Promise<string> => {
    const bytes = await readFile(source);
    const path = join(tmp, name);
    await writeFile(path, bytes.subarray(0, Math.floor(bytes.length / 2)));
    return path;
  };

  test('truncated fixtures (legacy and zip)', async () => {
    for (const file of ['legacy.pth', 'zip.pth', 'nested-legacy.pth']) {
      const path = await truncate(join(FIXTURES, file), `half-${file}`);
      await assertUserError(readWeights(path), path, /truncated/);
    }
  });

  test('truncated real checkpoint', { skip: noShared }, async () => {
    const path = await truncate(VGG3, 'half-vgg.pth');
    await assertUserError(readWeights(path), path, /truncated/);
    await assertUserError(readTorchCheckpoint(path), path, /truncated/);
  });
});
