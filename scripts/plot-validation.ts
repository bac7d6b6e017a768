// Validation curves of training runs as one PNG, for the model cards: one panel per measure
// (the judge's style and content distance on the validation pairs, the validation loss), one
// line per run, against the step. Rendered as SVG by hand and rasterised by sharp.
// Usage:
//   node --import tsx scripts/plot-validation.ts --run NAME=training/cd16x-r41-l256 [--run NAME=DIR+STEPS ...] \
//     [--measure val_judge_style,val_judge_content,val_loss] [--line NAME=value,...] --out docs/models/curves.png
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import sharp from 'sharp';

const collect = (v: string, prev: string[]) => [...prev, v];
const o = new Command('plot-validation')
  .requiredOption('--run <NAME=DIR[+N]>', 'a run folder holding log.jsonl (repeatable); +N shifts its steps (a run branched from another at step N)', collect, [])
  .option('--measure <list>', 'logged validation fields, one panel each', 'val_judge_style,val_judge_content,val_loss')
  .option('--line <NAME=m:v>', 'a horizontal reference line in panel m at value v (repeatable), e.g. shipped=val_judge_style:1.645', collect, [])
  .requiredOption('--out <file>', 'PNG to write')
  .parse()
  .opts<{ run: string[]; measure: string; line: string[]; out: string }>();

type Point = { step: number; value: number };
const measures = o.measure.split(',');
const runs = o.run.map((r) => {
  const [name, spec] = r.includes('=') ? r.split('=') : [path.basename(r), r];
  const [, dir, shift] = /^(.*?)(?:\+(\d+))?$/.exec(spec)!;
  const rows = readFileSync(path.join(dir, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  return { name, series: new Map(measures.map((m) => [m, rows.filter((x) => typeof x[m] === 'number').map((x): Point => ({ step: x.step + Number(shift ?? 0), value: x[m] }))])) };
});
const refs = o.line.map((l) => {
  const [name, rest] = l.split('='), [m, v] = rest.split(':');
  return { name, measure: m, value: Number(v) };
});

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];
const PW = 420, PH = 260, M = { l: 58, r: 12, t: 28, b: 36 };
const width = measures.length * (PW + M.l + M.r), height = PH + M.t + M.b + 22 * Math.ceil(runs.length / 3);
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>`;
measures.forEach((m, i) => {
  const x0 = i * (PW + M.l + M.r) + M.l, y0 = M.t;
  const pts = runs.flatMap((r) => r.series.get(m)!);
  const values = [...pts.map((p) => p.value), ...refs.filter((r) => r.measure === m).map((r) => r.value)];
  if (values.length === 0) return;
  const steps = pts.map((p) => p.step);
  const [smin, smax] = [Math.min(0, ...steps), Math.max(1, ...steps)];
  let [vmin, vmax] = [Math.min(...values), Math.max(...values)];
  const pad = (vmax - vmin) * 0.08 || Math.abs(vmax) * 0.05 || 1;
  vmin -= pad; vmax += pad;
  const X = (s: number) => x0 + ((s - smin) / (smax - smin)) * PW, Y = (v: number) => y0 + PH - ((v - vmin) / (vmax - vmin)) * PH;
  svg += `<text x="${x0 + PW / 2}" y="${y0 - 10}" text-anchor="middle" font-weight="bold">${esc(m)}</text>`;
  svg += `<rect x="${x0}" y="${y0}" width="${PW}" height="${PH}" fill="none" stroke="#888"/>`;
  for (let k = 0; k <= 4; k++) {
    const v = vmin + ((vmax - vmin) * k) / 4, s = smin + ((smax - smin) * k) / 4;
    svg += `<text x="${x0 - 6}" y="${Y(v) + 4}" text-anchor="end">${v.toPrecision(4)}</text><line x1="${x0}" x2="${x0 + PW}" y1="${Y(v)}" y2="${Y(v)}" stroke="#eee"/>`;
    svg += `<text x="${X(s)}" y="${y0 + PH + 16}" text-anchor="middle">${Math.round(s)}</text>`;
  }
  svg += `<text x="${x0 + PW / 2}" y="${y0 + PH + 32}" text-anchor="middle">step</text>`;
  for (const r of refs.filter((x) => x.measure === m)) {
    svg += `<line x1="${x0}" x2="${x0 + PW}" y1="${Y(r.value)}" y2="${Y(r.value)}" stroke="#000" stroke-dasharray="5,4"/><text x="${x0 + PW - 4}" y="${Y(r.value) - 4}" text-anchor="end">${esc(r.name)}</text>`;
  }
  runs.forEach((r, j) => {
    const s = r.series.get(m)!;
    if (s.length === 0) return;
    const c = COLOURS[j % COLOURS.length];
    svg += `<polyline fill="none" stroke="${c}" stroke-width="2" points="${s.map((p) => `${X(p.step).toFixed(1)},${Y(p.value).toFixed(1)}`).join(' ')}"/>`;
    for (const p of s) svg += `<circle cx="${X(p.step).toFixed(1)}" cy="${Y(p.value).toFixed(1)}" r="2.5" fill="${c}"/>`;
  });
});
runs.forEach((r, j) => {
  const x = 20 + (j % 3) * 360, y = PH + M.t + M.b + 16 + 22 * Math.floor(j / 3);
  svg += `<rect x="${x}" y="${y - 9}" width="18" height="4" fill="${COLOURS[j % COLOURS.length]}"/><text x="${x + 24}" y="${y - 3}">${esc(r.name)}</text>`;
});
svg += '</svg>';
await sharp(Buffer.from(svg)).png().toFile(o.out);
process.stderr.write(`wrote ${o.out} (${width}x${height})\n`);
