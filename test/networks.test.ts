// Encoder features, AdaIN and decoder outputs against PyTorch references
// (scripts/fixtures/networks.py) for the three encoder layouts.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { encoderLayers, decoderLayers, type CutLayer } from '../src/models/architectures.js';
import { decoderWeights, encoderWeights, type EncoderKind } from '../src/models/canonical-weights.js';
import { decoderModel, encoderModel } from '../src/models/graphs.js';
import { createSession, runFloat } from '../src/runtime/session.js';
import { adain, channelStats } from '../src/stylize/features.js';
import { readWeights } from '../src/weights/index.js';
import { fixtureDir, fixtureNames, loadFixtureTensor, maxAbs, maxAbsDiff } from './helpers/fixtures.js';

const CUTS: CutLayer[] = ['relu1_1', 'relu2_1', 'relu3_1', 'relu4_1'];

function close(name: string, actual: Float32Array, expected: Float32Array, rel = 1e-4): void {
  assert.equal(actual.length, expected.length, `${name}: size`);
  const err = maxAbsDiff(actual, expected);
  const scale = Math.max(maxAbs(expected), 1e-6);
  assert.ok(err <= rel * scale, `${name}: max abs error ${err} > ${rel} x ${scale}`);
}

for (const kind of ['vgg19-normalised', 'cd16x', 'vgg19bn'] as EncoderKind[]) {
  test(`${kind}: encoder features at every cut match PyTorch`, async () => {
    const file = path.join(fixtureDir(kind), 'encoder.pth');
    const w = encoderWeights(kind, 'relu4_1', await readWeights(file), file);
    const session = await createSession(encoderModel(encoderLayers('relu4_1', kind !== 'vgg19bn'), w, CUTS), { threads: 1 });
    for (const which of ['content', 'style']) {
      const x = loadFixtureTensor(kind, which);
      const out = await runFloat(session, 'image', x.data, x.shape);
      for (const cut of CUTS) {
        const ref = loadFixtureTensor(kind, `${which}_${cut}`);
        assert.deepEqual(out.get(cut)!.dims, ref.shape);
        close(`${which} ${cut}`, out.get(cut)!.data, ref.data);
      }
    }
  });

  const decoders = fixtureNames(kind).filter((n) => n.startsWith('decoded_')).map((n) => n.slice(8));
  for (const r of decoders) {
    const cut = `relu${r[1]}_${r[2]}` as CutLayer;
    test(`${kind}: AdaIN at ${cut} and the decoder match PyTorch`, async () => {
      const c = loadFixtureTensor(kind, `content_${cut}`);
      const s = loadFixtureTensor(kind, `style_${cut}`);
      const fc = { c: c.shape[1], h: c.shape[2], w: c.shape[3], data: c.data };
      const fs = { c: s.shape[1], h: s.shape[2], w: s.shape[3], data: s.data };
      const t = adain(fc, channelStats(fs));
      close(`adain ${cut}`, t.data, loadFixtureTensor(kind, `adain_${r}`).data);

      const file = path.join(fixtureDir(kind), `decoder_${r}.pth`);
      const w = decoderWeights(cut, await readWeights(file), file);
      const session = await createSession(decoderModel(decoderLayers(cut), w), { threads: 1 });
      const decoded = await runFloat(session, 'features', loadFixtureTensor(kind, `adain_${r}`).data, c.shape);
      close(`decoded ${cut}`, decoded.get('image')!.data, loadFixtureTensor(kind, `decoded_${r}`).data);
      if (fixtureNames(kind).includes(`reconstructed_${r}`)) {
        const rec = await runFloat(session, 'features', c.data, c.shape);
        close(`reconstructed ${cut}`, rec.get('image')!.data, loadFixtureTensor(kind, `reconstructed_${r}`).data);
      }
    });
  }
}
