// Before/after crops at 2x zoom (nearest neighbour, so a pixel grid stays visible) for the
// model cards: one row per content x style pair, columns content | style | each decoder.
// Usage:
//   node --import tsx scripts/zoom-crops.ts --pair photo.jpg:painting.jpg [--pair ...] \
//     --decoder old=cd16x-r41:models/cd16x-r41.decoder.safetensors --decoder new=cd16x-r41:runs/x/decoder.best.safetensors \
//     [--size 512] [--crop 128] [--at 0.5,0.5] --out docs/models/crops.png
// A decoder NAME ending in +wct is shown with --transform wct.
import { Command } from 'commander';
import sharp from 'sharp';
import { loadSquare } from '../src/eval/pairs.js';
import { parseDecoderEntry } from '../src/eval/run.js';
import { toInterleavedU8, type RgbImage } from '../src/image/io.js';
import { loadModel } from '../src/stylize/style-model.js';

const collect = (v: string, prev: string[]) => [...prev, v];
const o = new Command('zoom-crops')
  .requiredOption('--pair <content:style>', 'a content and a style image (repeatable)', collect, [])
  .requiredOption('--decoder <NAME=MODEL:FILE>', 'a decoder to show (repeatable)', collect, [])
  .option('--size <n>', 'images are scaled and centre-cropped to n x n first', Number, 512)
  .option('--crop <n>', 'side of the crop before zooming', Number, 128)
  .option('--at <fx,fy>', 'centre of the crop as fractions of the image', '0.5,0.5')
  .requiredOption('--out <file>', 'PNG to write')
  .parse()
  .opts<{ pair: string[]; decoder: string[]; size: number; crop: number; at: string; out: string }>();

const [fx, fy] = o.at.split(',').map(Number);
const x0 = Math.round(Math.min(Math.max(fx * o.size - o.crop / 2, 0), o.size - o.crop));
const y0 = Math.round(Math.min(Math.max(fy * o.size - o.crop / 2, 0), o.size - o.crop));
const zoomed = async (img: RgbImage) => sharp(Buffer.from(toInterleavedU8(img)), { raw: { width: img.width, height: img.height, channels: 3 } })
  .extract({ left: x0, top: y0, width: o.crop, height: o.crop }).resize(2 * o.crop, 2 * o.crop, { kernel: 'nearest' }).png().toBuffer();

const entries = o.decoder.map(parseDecoderEntry);
const pairs = await Promise.all(o.pair.map(async (p) => {
  const [c, s] = p.split(':');
  return { content: await loadSquare(c, o.size), style: await loadSquare(s, o.size) };
}));
const tiles: Buffer[][] = await Promise.all(pairs.map(async (p) => [await zoomed(p.content), await zoomed(p.style)]));
for (const e of entries) {
  const model = await loadModel(e.model, { decoder: e.decoder, modelsDir: process.env.ADAIN_MODELS_DIR });
  try {
    const transform = e.name.endsWith('+wct') ? 'wct' : 'adain';
    for (const [i, p] of pairs.entries()) tiles[i].push(await zoomed(await model.stylizeToImage(p.content, p.style, { styleSize: o.size, transform })));
  } finally {
    await model.dispose();
  }
}
const side = 2 * o.crop, gap = 4;
const cols = 2 + entries.length;
await sharp({ create: { width: cols * side + (cols - 1) * gap, height: pairs.length * side + (pairs.length - 1) * gap, channels: 3, background: '#ffffff' } })
  .composite(tiles.flatMap((row, r) => row.map((input, c) => ({ input, left: c * (side + gap), top: r * (side + gap) }))))
  .png().toFile(o.out);
console.log(`Wrote ${o.out}: rows = pairs, columns = content | style | ${entries.map((e) => e.name).join(' | ')}; crop ${o.crop}px at (${x0},${y0}) of ${o.size}x${o.size}, zoomed 2x`);
