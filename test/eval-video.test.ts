// adain eval video (the flicker table) and --precision on the video path: the measure on frames
// whose answer is known, the settings and clips, the command on 2 tiny clips, its errors and
// help, and an int8 clip against the fp32 one.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { CommanderError } from 'commander';
import { evalCommand } from '../src/cli/eval-command.js';
import { main } from '../src/cli/main.js';
import { stylizeCommand } from '../src/cli/stylize-command.js';
import { UserError } from '../src/errors.js';
import { FLICKER_CLIPS, flickerSettings, formatFlickerTable, renderFlickerClip, settingLabel, type FlickerReport } from '../src/eval/flicker-table.js';
import { findModel } from '../src/models/registry.js';
import { loadModel } from '../src/stylize/style-model.js';
import { decodeFrames } from '../src/video/decode.js';
import { flickerRatio } from '../src/video/flicker.js';
import { probeVideo } from '../src/video/probe.js';
import { renderMotion, writeClip } from '../src/video/synthetic.js';
import { DEFAULT_TEMPORAL_BLEND } from '../src/video/temporal.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const SHARED = path.resolve(ROOT, '../shared');
const MODELS_DIR = path.join(SHARED, 'models');
const PHOTOS = path.join(SHARED, 'data/content/test');
const STYLE = path.join(ROOT, 'examples/scream.jpg');
const has = (tool: string) => spawnSync(tool, ['-version'], { stdio: 'ignore' }).status === 0;
const skip = !has('ffmpeg') || !has('ffprobe') ? 'ffmpeg/ffprobe not installed (apt-get install ffmpeg)'
  : !existsSync(path.join(MODELS_DIR, findModel('cd16x-r41').encoder.weights.file)) ? `the cd16x encoder not found in ${MODELS_DIR}`
  : !existsSync(path.join(MODELS_DIR, 'vgg19-normalised/vgg_normalised_conv3_1.pth')) ? `the judge's weights not found in ${MODELS_DIR}`
  : !existsSync(PHOTOS) ? `test photos not found at ${PHOTOS}` : false;

const tmp = mkdtempSync(path.join(os.tmpdir(), 'adain-eval-video-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A frame of n pixels, every byte v. */
const flat = (n: number, v: number) => new Uint8Array(3 * n).fill(v);
/** A frame of n pixels, a ramp shifted by `shift` (a pan, in bytes). */
const ramp = (n: number, shift: number) => Uint8Array.from({ length: 3 * n }, (_, i) => (7 * Math.floor(i / 3) + 11 * shift) % 256);

test('flickerRatio: an output equal to its input gives 1, a steady output 0, one that alternates far more; the cut pair is left out', () => {
  const inputs = Array.from({ length: 8 }, (_, t) => ramp(64, t));
  assert.equal(flickerRatio(inputs, inputs), 1);
  // an output that follows the motion at half the contrast changes half as much
  const half = inputs.map((f) => f.map((v) => v >> 1));
  assert.ok(Math.abs(flickerRatio(inputs, half) - 0.5) < 0.05, `${flickerRatio(inputs, half)}`);
  assert.equal(flickerRatio(inputs, inputs.map(() => flat(64, 128))), 0);
  // the painting pops between two looks on every frame, whatever the input does
  const alternating = inputs.map((_, t) => flat(64, t % 2 ? 40 : 215));
  assert.ok(flickerRatio(inputs, alternating) > 3 * flickerRatio(inputs, inputs), `${flickerRatio(inputs, alternating)}`);
  // a cut at frame 4 (pair 3 -> 4): the output follows the first shot's motion exactly and then
  // jumps by another amount than the input; only with the cut's pair left out is that 1
  const shots = [...Array(4).fill(ramp(64, 0)), ...Array(4).fill(ramp(64, 9))].map((f: Uint8Array, t) => (t === 2 ? ramp(64, 1) : f));
  const outs = shots.map((f, t) => (t < 4 ? f.map((v) => 255 - v) : flat(64, 0)));
  assert.equal(flickerRatio(shots, outs, new Set([4])), 1);
  assert.notEqual(flickerRatio(shots, outs), 1);
  assert.throws(() => flickerRatio([flat(4, 1), flat(4, 1)], [flat(4, 1), flat(4, 2)]), RangeError, 'no input change: undefined');
  assert.throws(() => flickerRatio(inputs, inputs.slice(1)), RangeError);
});

test('flickerSettings: frame by frame first, one knob at a time, each once; out-of-range values refused naming the flag', () => {
  const s = flickerSettings([0, 0.5], [0.3, DEFAULT_TEMPORAL_BLEND, 0.3]);
  assert.deepEqual(s, [
    { temporal: 0, temporalBlend: 0 }, { temporal: 0.5, temporalBlend: 0 }, { temporal: 0, temporalBlend: 0.3 }, { temporal: 0, temporalBlend: DEFAULT_TEMPORAL_BLEND },
  ]);
  assert.deepEqual(s.map(settingLabel), ['frame by frame', '--temporal 0.5', '--temporal-blend 0.3', `--temporal-blend ${DEFAULT_TEMPORAL_BLEND} (default)`]);
  assert.throws(() => flickerSettings([1.5], []), (e: Error) => e instanceof UserError && /--temporal /.test(e.message));
  assert.throws(() => flickerSettings([], [1]), (e: Error) => e instanceof UserError && /--temporal-blend/.test(e.message));
});

test('renderFlickerClip: the same frames whichever clips are chosen, the cut in the middle between two photos', () => {
  const photo = (seed: number) => ({ name: `p${seed}`, width: 120, height: 80, data: Uint8Array.from({ length: 120 * 80 * 3 }, (_, i) => (i * seed * 31) % 251) });
  const photos = [photo(1), photo(2), photo(3)];
  const size = { frames: 8, width: 32, height: 16 };
  for (const name of FLICKER_CLIPS) {
    const a = renderFlickerClip(name, photos, size), b = renderFlickerClip(name, photos, size);
    assert.equal(a.frames.length, 8, name);
    assert.ok(a.frames.every((f) => f.length === 32 * 16 * 3), name);
    assert.deepEqual(a.frames, b.frames, `${name} is deterministic`);
  }
  const cut = renderFlickerClip('cut', photos, size);
  assert.equal(cut.cut, 4);
  assert.deepEqual(cut.photos, ['p1', 'p2']);
  assert.deepEqual(cut.frames.slice(0, 4), renderMotion(photos[0], { ...size, frames: 4, pan: 0.06, zoom: 1 }));
  const still = renderFlickerClip('still+noise', photos, size);
  assert.notDeepEqual(still.frames[0], still.frames[1], 'the noise is new in every frame');
});

/** Runs `adain eval ...` in-process and returns what it printed on stdout. */
async function evalCli(args: string[]): Promise<string> {
  let out = '';
  const stdout = { write: (chunk: string | Uint8Array) => { out += String(chunk); return true; } };
  await evalCommand(stdout).exitOverride().configureOutput({ writeOut: (s) => { out += s; }, writeErr: () => undefined }).parseAsync(args, { from: 'user' });
  return out;
}

const TINY = ['--clips', 'pan,cut', '--frames', '8', '--size', '64x48', '--threads', '1', '--models-dir', MODELS_DIR, '--no-download', '-q'];

test('adain eval video on 2 clips of 8 frames at 64x48: the table and the JSON report', { skip }, async () => {
  const report = JSON.parse(await evalCli(['video', ...TINY, '--json'])) as FlickerReport;
  assert.equal(report.model, 'cd16x-r41');
  assert.equal(report.precision, 'fp32');
  assert.deepEqual([report.frames, report.width, report.height], [8, 64, 48]);
  assert.deepEqual(report.clips.map((c) => [c.name, c.cut]), [['pan', null], ['cut', 4]]);
  assert.deepEqual(report.rows.map((r) => r.setting), ['frame by frame', `--temporal-blend ${DEFAULT_TEMPORAL_BLEND} (default)`]);
  const [base, blend] = report.rows;
  assert.deepEqual([base.flicker_change, base.style_change, base.cuts_found], [0, 0, null]);
  for (const r of report.rows) {
    assert.deepEqual(Object.keys(r.flicker), ['pan', 'cut']);
    for (const v of Object.values(r.flicker)) assert.ok(v > 0 && v < 3, `${r.setting}: flicker ${v}`);
    assert.ok(Math.abs(r.mean_flicker - (r.flicker.pan + r.flicker.cut) / 2) < 1e-12);
    assert.ok(r.style_distance > 0 && Number.isFinite(r.style_distance));
  }
  assert.ok(blend.default && blend.mean_flicker < base.mean_flicker, `the default blend lowers flicker: ${blend.mean_flicker} vs ${base.mean_flicker}`);
  assert.ok(Math.abs(blend.flicker_change - (blend.mean_flicker / base.mean_flicker - 1)) < 1e-12);
  assert.deepEqual(blend.cuts_found, { pan: [], cut: [4] }, 'the cut found where it is, and no other');

  const lines = formatFlickerTable(report).split('\n');
  const table = lines.filter((l) => l.startsWith('|'));
  assert.equal(table.length, 4, lines.join('\n'));
  const cells = (l: string) => l.split('|').slice(1, -1).map((c) => c.trim());
  assert.deepEqual(cells(table[0]), ['setting', 'pan', 'cut', 'mean flicker', 'vs frame by frame', 'style distance', 'vs frame by frame']);
  assert.equal(cells(table[2])[4], '', 'no change for the baseline');
  assert.match(cells(table[3])[4], /^-\d+\.\d%$/);
  assert.match(lines.at(-1)!, /cut at 4/);
});

test('adain eval video: the text table from the command, --temporal rows, and the flags given before `video`', { skip }, async () => {
  // commander gives flags after `video` to eval first; eval video takes those it shares
  const text = await evalCli(['--threads', '1', 'video', ...TINY, '--clips', 'pan', '--temporal', '0,1', '--temporal-blend', '0']);
  const rows = text.split('\n').filter((l) => l.startsWith('| '));
  assert.deepEqual(rows.map((l) => l.split('|')[1].trim()), ['setting', 'frame by frame', '--temporal 1']);
  assert.match(text, /^1 clips x 1 style\(s\), 8 frames at 64x48, cd16x-r41 \(fp32\)/);
});

test('adain eval video: a missing data folder, an eval-only flag, a bad --size or --clips are refused before any work (exit 2)', async () => {
  await assert.rejects(evalCli(['video', '--content', path.join(tmp, 'nope'), '-q']), (e: Error) => {
    assert.ok(e instanceof UserError, String(e));
    assert.match(e.message, /^--content ".*nope": no such folder; pass --content DIR/);
    return true;
  });
  await assert.rejects(evalCli(['--contents', '3', 'video']), (e: Error) => e instanceof UserError && /--contents: not a flag of adain eval video/.test(e.message));
  await assert.rejects(evalCli(['video', '--size', '64']), (e: Error) => e instanceof CommanderError && /--size <WxH>.*WIDTHxHEIGHT/.test(e.message));
  await assert.rejects(evalCli(['video', '--size', '63x48', '--content', PHOTOS]), (e: Error) => e instanceof UserError && /even sides/.test(e.message));
  await assert.rejects(evalCli(['video', '--clips', 'pan,spin']), (e: Error) => e instanceof CommanderError && /unknown clip "spin"/.test(e.message));
  // through main: the one-line error and exit code 2
  const write = process.stderr.write;
  let err = '';
  process.stderr.write = ((s: string) => { err += s; return true; }) as typeof process.stderr.write;
  try {
    assert.equal(await main(['node', 'adain', 'eval', 'video', '--content', path.join(tmp, 'nope')]), 2);
  } finally {
    process.stderr.write = write;
  }
  assert.match(err, /^adain: error: --content .*no such folder/);
});

test('adain eval --help and adain eval video --help', async () => {
  let out = '';
  const helpOf = async (args: string[]) => {
    out = '';
    const cmd = evalCommand({ write: () => true }).exitOverride().configureOutput({ writeOut: (s) => { out += s; } });
    await assert.rejects(cmd.parseAsync(args, { from: 'user' }), (e: Error) => e instanceof CommanderError && e.code === 'commander.helpDisplayed');
    return out;
  };
  await helpOf(['--help']);
  assert.match(out, /Usage: eval \[options\] \[command\]/);
  assert.match(out, /--precision <list>/);
  assert.match(out, /video \[options\]/);
  assert.match(out, /cd16x-r41@int8/);
  await helpOf(['video', '--help']);
  assert.match(out, /Usage: eval video \[options\]/);
  for (const flag of ['--model', '--temporal <list>', '--temporal-blend <list>', '--frames', '--size <WxH>', '--styles <list>', '--precision <p>', '--threads', '--models-dir', '--json', '--clips']) {
    assert.ok(out.includes(flag), `${flag} in the help`);
  }
  assert.match(out, /flicker\s+= mean \|out_t - out_t-1\|/);
});

/** The frames of a video file as RGB bytes. */
async function frames(file: string): Promise<Buffer[]> {
  const info = await probeVideo(file);
  const out: Buffer[] = [];
  for await (const f of decodeFrames(file, info, { width: info.width, height: info.height })) out.push(f);
  return out;
}

function psnr(a: readonly Uint8Array[], b: readonly Uint8Array[]): number {
  let s = 0, n = 0;
  for (let t = 0; t < a.length; t++) for (let i = 0; i < a[t].length; i++, n++) s += (a[t][i] - b[t][i]) ** 2;
  return 10 * Math.log10((255 * 255 * n) / s);
}

test('adain stylize --precision int8 on a clip: the int8 network runs (API) and the clip is close to fp32 but not the same', { skip }, async () => {
  const photo = { width: 96, height: 64, data: Uint8Array.from({ length: 96 * 64 * 3 }, (_, i) => (Math.sin(i * 0.013) * 90 + 128 + (i % 3) * 20) | 0) };
  const clip = path.join(tmp, 'pan.mp4');
  await writeClip(renderMotion(photo, { frames: 6, width: 64, height: 48, pan: 0.1, zoom: 1.05 }), 64, 48, 24, clip);
  const run = (precision: string, output: string) => stylizeCommand().exitOverride().parseAsync([
    '-c', clip, '-s', STYLE, '-o', output, '--precision', precision, '--temporal-blend', '0', '--style-size', '128',
    '--threads', '1', '--models-dir', MODELS_DIR, '--no-download', '-q',
  ], { from: 'user' });
  const fp32 = path.join(tmp, 'fp32.mp4'), int8 = path.join(tmp, 'int8.mp4');
  await run('fp32', fp32);
  await run('int8', int8);
  const [a, b] = [await frames(fp32), await frames(int8)];
  assert.equal(a.length, 6);
  assert.equal(b.length, 6);
  assert.ok(b.every((f) => f.length === 64 * 48 * 3));
  const db = psnr(a, b);
  console.log(`int8 vs fp32, 6 frames at 64x48: PSNR ${db.toFixed(2)} dB`);
  // equal clips (PSNR infinite) would mean --precision never reached the video path
  assert.ok(db > 25 && db < 60, `int8 vs fp32 clip: PSNR ${db.toFixed(2)} dB`);

  const model = await loadModel('cd16x-r41', { modelsDir: MODELS_DIR, download: false, threads: 1, precision: 'int8' });
  try {
    assert.equal(model.network.precision, 'int8');
    let seen = 0;
    const r = await model.stylizeVideo(clip, STYLE, { output: path.join(tmp, 'api.mkv'), styleSize: 128, temporalBlend: 0, onFrame: () => { seen++; } });
    assert.deepEqual([r.frames, r.width, r.height, seen], [6, 64, 48, 6]);
  } finally {
    await model.dispose();
  }
});
