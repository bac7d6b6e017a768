// The flicker table behind --temporal's default (npm run flicker):
//   node --import tsx scripts/flicker.ts [--temporal 0,0.5,0.9,1] [--blend 0.5,0.7] [--frames 48] [--size 256x144]
// Clips with a known motion (slow pan and zoom over test photos, one with a cut between two
// photos, one with an auto-exposure-like brightness jitter, one still shot with sensor noise)
// are stylised through the video pipeline, once per --temporal value (statistics smoothing)
// and once per --blend value (--temporal-blend); flicker = mean |out_t - out_t-1| over
// mean |in_t - in_t-1| (the cut's pair left out), and the judge's style distance
// (src/eval/judge.ts) is averaged over the frames.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import sharp from 'sharp';
import { clampImage, Judge, statsOf, styleDistance, type StyleTarget } from '../src/eval/judge.js';
import { toInterleavedU8 } from '../src/image/io.js';
import { loadModel } from '../src/stylize/style-model.js';
import { flickerRatio } from '../src/video/flicker.js';
import { renderMotion, writeClip, type Motion, type RgbBytes } from '../src/video/synthetic.js';

const DATA = path.resolve(import.meta.dirname, '../../shared/data/content/test');
const EXAMPLES = path.resolve(import.meta.dirname, '../examples');

const program = new Command('flicker')
  .option('--temporal <list>', 'values of --temporal to measure', '0,0.5,0.8,0.9,1')
  .option('--blend <list>', 'values of --temporal-blend to measure (with --temporal 0)', '0.3,0.5,0.7')
  .option('--frames <n>', 'frames per clip', '48')
  .option('--size <WxH>', 'clip size', '256x144')
  .option('--styles <list>', 'style images', `${EXAMPLES}/scream.jpg`)
  .option('--style-size <n>', 'style size', '256')
  .option('--model <name>', 'model', 'cd16x-r41')
  .option('--models-dir <dir>', 'weights folder', process.env.ADAIN_MODELS_DIR ?? path.resolve(import.meta.dirname, '../../shared/models'))
  .option('-t, --threads <n>', 'threads', '1')
  .parse();
const o = program.opts<{ blend: string; temporal: string; frames: string; size: string; styles: string; styleSize: string; model: string; modelsDir: string; threads: string }>();
const [W, H] = o.size.split('x').map(Number);
const N = Number(o.frames);
const threads = Number(o.threads);

async function photo(name: string): Promise<RgbBytes> {
  const { data, info } = await sharp(path.join(DATA, name)).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data };
}

// a fixed-seed generator, so that every run measures the same clips
let seed = 12345;
const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
const gauss = () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
/** Brightness x (1 +- 4%) per frame, as a camera's auto exposure hunting. */
const jitter = (frames: Buffer[]) => frames.map((f) => {
  const g = 1 + 0.08 * (random() - 0.5);
  return Buffer.from(f.map((v) => Math.min(255, Math.round(v * g))));
});
/** Gaussian sensor noise, 3 levels of 255, new in every frame. */
const noisy = (frames: Buffer[]) => frames.map((f) => Buffer.from(f.map((v) => Math.min(255, Math.max(0, Math.round(v + 3 * gauss()))))));

const tmp = mkdtempSync(path.join(os.tmpdir(), 'adain-flicker-'));
try {
  const pan: Omit<Motion, 'pan' | 'zoom'> = { frames: N, width: W, height: H };
  const [a, b, c] = await Promise.all(['ArtFlow__sea_01.jpg', 'FFDNet__106024.png', 'ArtFlow__maxresdefault.jpg'].map(photo));
  const half = Math.floor(N / 2);
  const clips: { name: string; frames: Buffer[]; cut?: number }[] = [
    { name: 'pan (sea)', frames: renderMotion(a, { ...pan, pan: 0.12, zoom: 1 }) },
    { name: 'pan+zoom (106024)', frames: renderMotion(b, { ...pan, pan: 0.08, zoom: 1.15 }) },
    { name: 'zoom (maxres)', frames: renderMotion(c, { ...pan, pan: 0, zoom: 1.2 }) },
    {
      name: 'cut (sea | 106024)', cut: half,
      frames: [...renderMotion(a, { ...pan, frames: half, pan: 0.06, zoom: 1 }), ...renderMotion(b, { ...pan, frames: N - half, pan: 0.06, zoom: 1.05 })],
    },
    { name: 'pan+exposure (106024)', frames: jitter(renderMotion(b, { ...pan, pan: 0.08, zoom: 1.05 })) },
    { name: 'still+noise (sea)', frames: noisy(renderMotion(a, { ...pan, pan: 0, zoom: 1 })) },
  ];
  const files = [];
  for (const [i, clip] of clips.entries()) {
    const file = path.join(tmp, `clip${i}.mp4`);
    await writeClip(clip.frames, W, H, 24, file);
    files.push(file);
  }

  const model = await loadModel(o.model, { modelsDir: o.modelsDir, threads });
  const judge = await Judge.load({ modelsDir: o.modelsDir, threads });
  const styles = o.styles.split(',');
  const targets: StyleTarget[] = [];
  const stats = [];
  for (const s of styles) {
    const img = await model.readStyle(s, { styleSize: Number(o.styleSize) });
    targets.push(await judge.styleTarget(img));
    stats.push(await model.styleStats(img));
  }

  const settings = [
    ...o.temporal.split(',').map((t) => ({ temporal: Number(t), blend: 0 })),
    ...(o.blend ? o.blend.split(',').map((b) => ({ temporal: 0, blend: Number(b) })) : []),
  ];
  // rows: a setting; columns: flicker per clip, mean flicker, mean style distance
  const rows: { label: string; temporal: number; flicker: number[]; style: number; cutsFound: string }[] = [];
  for (const { temporal, blend } of settings) {
    const flicker: number[] = [];
    let styleSum = 0, styleCount = 0;
    const cutsFound: string[] = [];
    for (const [i, clip] of clips.entries()) {
      for (const [k, st] of stats.entries()) {
        const ins: Uint8Array[] = [], outs: Uint8Array[] = [];
        const r = await model.stylizeVideo(files[i], [st], {
          output: path.join(tmp, `out.mkv`), temporal, temporalBlend: blend,
          onFrame: async ({ input, output }) => {
            ins.push(toInterleavedU8(input));
            outs.push(toInterleavedU8(output));
            styleSum += styleDistance(statsOf(await judge.features(clampImage(output))), targets[k]);
            styleCount++;
          },
        });
        flicker.push(flickerRatio(ins, outs, clip.cut !== undefined ? new Set([clip.cut]) : undefined));
        if (clip.cut !== undefined && (temporal > 0 || blend > 0)) cutsFound.push(r.cuts.join('/'));
      }
    }
    const label = blend > 0 ? `--temporal-blend ${blend}` : `--temporal ${temporal}`;
    rows.push({ label, temporal, flicker, style: styleSum / styleCount, cutsFound: cutsFound.join(' ') });
    process.stderr.write(`${label} done\n`);
  }

  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const base = rows.find((r) => r.label === '--temporal 0') ?? rows[0];
  const perClip = (r: (typeof rows)[number], i: number) => mean(r.flicker.slice(i * stats.length, (i + 1) * stats.length));
  const header = ['setting', ...clips.map((c) => c.name), 'mean flicker', 'vs 0', 'style dist', 'vs 0', 'cuts found (cut clip)'];
  const lines = rows.map((r) => [
    r.label, ...clips.map((_, i) => perClip(r, i).toFixed(3)),
    mean(r.flicker).toFixed(3), `${((mean(r.flicker) / mean(base.flicker) - 1) * 100).toFixed(1)}%`,
    r.style.toFixed(4), `${((r.style / base.style - 1) * 100).toFixed(1)}%`, r.cutsFound || '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (l: string[]) => `| ${l.map((x, i) => x.padEnd(widths[i])).join(' | ')} |`;
  console.log(`${clips.length} clips x ${styles.length} styles, ${N} frames at ${W}x${H}, model ${o.model}; the cut clip cuts at frame ${half}`);
  console.log(fmt(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const l of lines) console.log(fmt(l));
  await judge.dispose();
  await model.dispose();
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
