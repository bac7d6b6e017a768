/**
 * A wider copy of a trained decoder that computes the same function (Net2WiderNet): every conv
 * but the last gets `factor` times its output channels; a new channel copies an existing one's
 * filter, and the next conv splits that channel's input weights between the copies. The
 * split is uneven (random shares summing to 1) so that the copies receive different gradients
 * and grow apart when training goes on from here (`adain train --init OUT`). Used to ask
 * whether decoder capacity is what holds the style distance (issue 12).
 *
 *   node --import tsx scripts/widen-decoder.ts --decoder FILE --model cd16x-r41 --factor 2 --out FILE [--seed 0]
 *     [--check CONTENT,STYLE]   stylise one pair with both decoders and print the PSNR between them
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readImage, resizeImage } from '../src/image/io.js';
import { decoderLayers, convNames } from '../src/models/architectures.js';
import { decoderWeights, encoderWeights, type ConvWeights } from '../src/models/canonical-weights.js';
import { findModel } from '../src/models/registry.js';
import { resolveWeightFile } from '../src/models/resolve.js';
import { stylizeImage } from '../src/stylize/model.js';
import { Network } from '../src/stylize/network.js';
import { saveDecoder } from '../src/train/checkpoint.js';
import { readWeights, tensor } from '../src/weights/index.js';
import { pseudoRandom } from '../src/runtime/stats.js';

const { values: o } = parseArgs({
  options: {
    decoder: { type: 'string' }, model: { type: 'string', default: 'cd16x-r41' }, factor: { type: 'string', default: '2' },
    out: { type: 'string' }, seed: { type: 'string', default: '0' }, check: { type: 'string' }, 'models-dir': { type: 'string', default: '../shared/models' },
  },
});
if (!o.decoder || !o.out) throw new Error('usage: --decoder FILE --out FILE [--model cd16x-r41] [--factor 2]');
if (path.resolve(o.out) === path.resolve(o.decoder)) throw new Error(`--out ${o.out} is the input decoder: choose another file`);

const spec = findModel(o.model!);
const { kind, cut } = spec.encoder;
const dec = decoderWeights(cut, await readWeights(o.decoder), o.decoder);
const factor = Number(o.factor);
const names = convNames(decoderLayers(cut));
const shares = pseudoRandom(1 << 16, Number(o.seed) + 7);
let next = 0;
const uniform = () => shares[next++ % shares.length];
const draw = () => 0.3 + 0.4 * uniform(); // a share in [0.3, 0.7]

const wide: ConvWeights = new Map();
// inputMap[i]: which old input channel the current conv's i-th input copies, and its share of it
let inputMap: { src: number; share: number }[] | undefined;
for (const [li, name] of names.entries()) {
  const { weight, bias } = dec.get(name)!;
  const [outC, inC, kh, kw] = weight.shape;
  const last = li === names.length - 1;
  const newOut = last ? outC : Math.round(outC * factor);
  // output map: the first outC channels are the originals, the rest copies of random ones
  const outMap = Array.from({ length: newOut }, (_, j) => (j < outC ? j : Math.floor(uniform() * outC) % outC));
  const ins = inputMap ?? Array.from({ length: inC }, (_, i) => ({ src: i, share: 1 }));
  const k = kh * kw;
  const w = tensor([newOut, ins.length, kh, kw]);
  const b = tensor([newOut]);
  for (let j = 0; j < newOut; j++) {
    const s = outMap[j];
    b.data[j] = bias.data[s];
    for (let i = 0; i < ins.length; i++) {
      const from = (s * inC + ins[i].src) * k, to = (j * ins.length + i) * k;
      for (let t = 0; t < k; t++) w.data[to + t] = weight.data[from + t] * ins[i].share;
    }
  }
  wide.set(name, { weight: w, bias: b });
  // the next conv's shares: each old channel's copies split its weights unevenly, summing to 1
  const copies = new Map<number, number[]>();
  outMap.forEach((s, j) => copies.set(s, [...(copies.get(s) ?? []), j]));
  const share = new Array<number>(newOut).fill(1);
  for (const js of copies.values()) {
    if (js.length === 1) continue;
    const raw = js.map(draw), total = raw.reduce((a, x) => a + x, 0);
    js.forEach((j, n) => (share[j] = raw[n] / total));
  }
  inputMap = outMap.map((src, j) => ({ src, share: share[j] }));
  console.log(`${name}: [${outC}, ${inC}] -> [${newOut}, ${ins.length}]`);
}

await saveDecoder(o.out, wide, { step: 0, config: { widenedFrom: path.resolve(o.decoder), factor, encoder: spec.name, cut }, encoder: spec.name, cut });
console.log(`wrote ${o.out}`);

if (o.check) {
  const [c, s] = o.check.split(',');
  const encFile = await resolveWeightFile(spec.encoder.weights, { modelsDir: o['models-dir'], download: false });
  const enc = encoderWeights(kind, cut, await readWeights(encFile), encFile);
  const content = await resizeImage(await readImage(c), 256, 256), style = await resizeImage(await readImage(s), 256, 256);
  const a = await Network.fromWeights(kind, cut, enc, dec, { threads: 1 });
  const b = await Network.fromWeights(kind, cut, enc, wide, { threads: 1 });
  const x = await stylizeImage(a, content, [style]), y = await stylizeImage(b, content, [style]);
  let se = 0;
  for (let i = 0; i < x.data.length; i++) se += (x.data[i] - y.data[i]) ** 2;
  console.log(`PSNR wide vs original: ${(10 * Math.log10(x.data.length / Math.max(se, 1e-20))).toFixed(1)} dB`);
  await Promise.all([a.dispose(), b.dispose()]);
}
