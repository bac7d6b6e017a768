import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { UserError } from '../src/errors.js';
import { decoderLayers } from '../src/models/architectures.js';
import { decoderWeights } from '../src/models/canonical-weights.js';
import { Adam } from '../src/train/adam.js';
import { flattenConvWeights, loadCheckpoint, saveCheckpoint, unflattenConvWeights } from '../src/train/checkpoint.js';
import { heInit } from '../src/train/init.js';
import { readWeights } from '../src/weights/index.js';

let tmp: string;
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'adain-ckpt-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

// A small relu2_1 decoder (dec2_1, dec1_2, dec1_1) with 1/8 of VGG's channels.
const SHAPES: [string, number[]][] = [['dec2_1', [8, 16, 3, 3]], ['dec1_2', [8, 8, 3, 3]], ['dec1_1', [3, 8, 3, 3]]];
const config = { encoder: 'vgg19-normalised', cut: 'relu2_1', lr: 1e-4, schedule: 'inverse:5e-5' };

/** A decoder and optimiser after `steps` Adam steps with deterministic gradients. */
function trained(steps: number, seed = 1) {
  const conv = heInit(SHAPES, seed);
  const weights = flattenConvWeights(conv);
  const params = new Map([...weights].map(([k, t]) => [k, t.data]));
  const adam = new Adam(params);
  for (let s = 0; s < steps; s++) {
    const grads = new Map([...params].map(([k, p]) => [k, p.map((x, i) => Math.sin(x * 3 + i + s))]));
    adam.step(grads, 1e-3);
  }
  return { conv, weights, adam };
}

function warnings(): { warn: (m: string) => void; seen: string[] } {
  const seen: string[] = [];
  return { warn: (m) => seen.push(m), seen };
}

async function assertUserError(p: Promise<unknown>, path: string, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof UserError, `expected a UserError, got ${String(err)}`);
    assert.ok(err.message.includes(path), `names ${path}: ${err.message}`);
    assert.ok(!err.message.includes('\n'), 'one line');
    assert.match(err.message, pattern);
    return true;
  });
}

describe('training checkpoints', () => {
  test('round trip: weights, Adam state, step, config, rng, sampler, metrics; resume is exact', async () => {
    const dir = join(tmp, 'round-trip');
    const { conv, weights, adam } = trained(3);
    const rng = { state: [1, 2, 3, 4] };
    const sampler = { epoch: 2, position: 17, order: 'seeded' };
    await saveCheckpoint(dir, { weights: conv, optimizer: adam.state(), step: 3, config, rng, sampler, metrics: { loss: 1.25 } });
    const w = warnings();
    const ck = await loadCheckpoint(dir, w);
    assert.deepEqual(w.seen, []);
    assert.equal(ck.path, join(dir, 'checkpoint.safetensors'));
    assert.equal(ck.step, 3);
    assert.deepEqual(ck.config, config);
    assert.deepEqual(ck.rng, rng);
    assert.deepEqual(ck.sampler, sampler);
    assert.deepEqual(ck.metrics, { loss: 1.25 });
    assert.deepEqual([...ck.weights.keys()], [...weights.keys()]);
    for (const [k, t] of weights) assert.deepEqual(ck.weights.get(k), t, k);
    assert.equal(ck.optimizer.step, 3);
    assert.deepEqual(ck.optimizer.options, adam.options);

    // Resuming from the checkpoint continues bit-identically.
    const resumedParams = new Map([...ck.weights].map(([k, t]) => [k, t.data]));
    const resumed = new Adam(resumedParams);
    resumed.load(ck.optimizer);
    const cont = trained(5);
    for (let s = 3; s < 5; s++) {
      const grads = new Map([...resumedParams].map(([k, p]) => [k, p.map((x, i) => Math.sin(x * 3 + i + s))]));
      resumed.step(grads, 1e-3);
    }
    for (const [k, t] of cont.weights) assert.deepEqual(resumedParams.get(k), t.data, k);
    assert.deepEqual(unflattenConvWeights(ck.weights).get('dec1_1')!.bias.shape, [3]);
  });

  test('decoder.safetensors holds the weights alone and loads as a decoder', async () => {
    const dir = join(tmp, 'decoder');
    const { conv, adam } = trained(1);
    await saveCheckpoint(dir, { weights: conv, optimizer: adam.state(), step: 1, config });
    const file = join(dir, 'decoder.safetensors');
    const tensors = await readWeights(file);
    assert.deepEqual([...tensors.keys()], ['dec2_1.weight', 'dec2_1.bias', 'dec1_2.weight', 'dec1_2.bias', 'dec1_1.weight', 'dec1_1.bias']);
    const dec = decoderWeights('relu2_1', tensors, file); // what `adain stylize --decoder` does
    assert.deepEqual([...dec.keys()], decoderLayers('relu2_1').flatMap((l) => (l.kind === 'conv' ? [l.name] : [])));
    const bytes = await readFile(file);
    const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8'));
    assert.deepEqual(header.__metadata__, { format: 'adain-decoder-1', step: '1', config: JSON.stringify(config), encoder: 'vgg19-normalised', cut: 'relu2_1' });
    // ...and is not mistaken for a training checkpoint
    await assertUserError(loadCheckpoint(file), file, /trained decoder.*not a training checkpoint/);
  });

  test('the previous checkpoint is kept; a truncated latest falls back to it with a warning', async () => {
    const dir = join(tmp, 'crash');
    const first = trained(1);
    await saveCheckpoint(dir, { weights: first.conv, optimizer: first.adam.state(), step: 100, config });
    const second = trained(2);
    await saveCheckpoint(dir, { weights: second.conv, optimizer: second.adam.state(), step: 200, config });
    assert.equal((await loadCheckpoint(dir)).step, 200);
    assert.equal((await loadCheckpoint(join(dir, 'checkpoint.prev.safetensors'))).step, 100);

    // A crash that left the latest file half-written.
    const latest = join(dir, 'checkpoint.safetensors');
    const bytes = await readFile(latest);
    await writeFile(latest, bytes.subarray(0, bytes.length >> 1));
    const w = warnings();
    const ck = await loadCheckpoint(dir, w);
    assert.equal(ck.step, 100);
    assert.equal(ck.path, join(dir, 'checkpoint.prev.safetensors'));
    assert.equal(w.seen.length, 1);
    assert.match(w.seen[0], /checkpoint\.safetensors is truncated.*resuming from the previous checkpoint .*checkpoint\.prev\.safetensors \(step 100\)/);
    assert.ok(!w.seen[0].includes('--encoder'), 'no weights-file hint in a checkpoint warning');
  });

  test('a crash between rename and write (leftover temp, no latest) falls back; the next save cleans up', async () => {
    const dir = join(tmp, 'crash-temp');
    const first = trained(1);
    await saveCheckpoint(dir, { weights: first.conv, optimizer: first.adam.state(), step: 10, config });
    const second = trained(2);
    await saveCheckpoint(dir, { weights: second.conv, optimizer: second.adam.state(), step: 20, config });
    // Simulate: rename(latest -> prev) done, writeSafetensors' temp file half-written, then the crash.
    await rm(join(dir, 'checkpoint.prev.safetensors'));
    const { rename } = await import('node:fs/promises');
    await rename(join(dir, 'checkpoint.safetensors'), join(dir, 'checkpoint.prev.safetensors'));
    await writeFile(join(dir, '.checkpoint.safetensors.0123456789ab.tmp'), Buffer.alloc(100, 7));
    const w = warnings();
    const ck = await loadCheckpoint(dir, w);
    assert.equal(ck.step, 20);
    assert.match(w.seen[0], /does not exist.*resuming from the previous checkpoint/);

    const third = trained(3);
    await saveCheckpoint(dir, { weights: third.conv, optimizer: third.adam.state(), step: 30, config });
    assert.deepEqual((await readdir(dir)).sort(), ['checkpoint.prev.safetensors', 'checkpoint.safetensors', 'decoder.safetensors']);
    assert.equal((await loadCheckpoint(dir)).step, 30);
    assert.equal((await loadCheckpoint(join(dir, 'checkpoint.prev.safetensors'))).step, 20);
  });

  test('missing, corrupt without a fallback, and wrong-format files are one-line UserErrors naming the file', async () => {
    const missing = join(tmp, 'nowhere');
    await assertUserError(loadCheckpoint(missing), missing, /does not exist.*without --resume/);

    const empty = join(tmp, 'empty');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(empty);
    await assertUserError(loadCheckpoint(empty), empty, /holds no checkpoint\.safetensors/);

    const corrupt = join(tmp, 'corrupt');
    await mkdir(corrupt);
    await writeFile(join(corrupt, 'checkpoint.safetensors'), Buffer.from('garbage, not a checkpoint at all'));
    await assertUserError(loadCheckpoint(corrupt), join(corrupt, 'checkpoint.safetensors'), /no intact checkpoint\.prev\.safetensors to fall back on.*start a new run/);
    await assert.rejects(loadCheckpoint(corrupt), (err: Error) => !/resume from the previous checkpoint/.test(err.message));

    // A plain safetensors weights file is not a checkpoint (and no fallback is tried).
    const wrong = join(tmp, 'wrong');
    const { weights } = trained(0);
    const { writeSafetensors } = await import('../src/weights/safetensors.js');
    await mkdir(wrong);
    await writeSafetensors(join(wrong, 'checkpoint.safetensors'), weights, { format: 'something-else' });
    await assertUserError(loadCheckpoint(wrong), join(wrong, 'checkpoint.safetensors'), /not an adain training checkpoint \(format "something-else", expected adain-checkpoint-1\)/);
    assert.ok(!existsSync(join(wrong, 'checkpoint.prev.safetensors')));
  });
});
