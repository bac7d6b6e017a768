// Video stylisation: ffmpeg/ffprobe I/O, the CLI on small clips, temporal smoothing, bad input.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { fromInterleavedU8, toInterleavedU8, type RgbImage } from '../src/image/io.js';
import type { ChannelStats } from '../src/stylize/features.js';
import { loadModel, type StyleModel } from '../src/stylize/style-model.js';
import { decodeFrames } from '../src/video/decode.js';
import { FrameEncoder } from '../src/video/encode.js';
import { videoFormatFromPath } from '../src/video/formats.js';
import { flickerRatio } from '../src/video/flicker.js';
import { probeVideo } from '../src/video/probe.js';
import { readAhead } from '../src/video/read-ahead.js';
import { renderMotion, writeClip, type RgbBytes } from '../src/video/synthetic.js';
import { DEFAULT_TEMPORAL_BLEND, OutputBlend, TemporalStats, frameChange, meanAbsDiff, planarWithChange } from '../src/video/temporal.js';
import { WriteBehind } from '../src/video/write-behind.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'bin/adain.js');
const MODELS_DIR = path.resolve(ROOT, '../shared/models');
const PHOTOS = path.resolve(ROOT, '../shared/data/content/test');
const STYLE = path.join(ROOT, 'examples/scream.jpg');
const has = (tool: string) => spawnSync(tool, ['-version'], { stdio: 'ignore' }).status === 0;
const skip = !has('ffmpeg') || !has('ffprobe') ? 'ffmpeg/ffprobe not installed (apt-get install ffmpeg)'
  : !existsSync(path.join(ROOT, 'dist/cli/main.js')) ? 'dist/ not built: run npm run build'
  : !existsSync(PHOTOS) ? `test photos not found at ${PHOTOS}` : false;

const tmp = mkdtempSync(path.join(os.tmpdir(), 'adain-video-'));
const W = 160, H = 90;
let model: StyleModel;
let scream: ChannelStats;
const clip = (name: string) => path.join(tmp, name);

function ffmpeg(...args: string[]): void {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-y', ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

interface Probed { width: number; height: number; frames: number; fps: string; duration: number; audio?: string; video: string }
function probe(file: string): Probed {
  const r = spawnSync('ffprobe', ['-v', 'error', '-count_frames', '-print_format', 'json', '-show_streams', '-show_format', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { streams: Record<string, string | number>[]; format: { duration: string } };
  const v = j.streams.find((s) => s.codec_type === 'video')!;
  const a = j.streams.find((s) => s.codec_type === 'audio');
  return {
    width: Number(v.width), height: Number(v.height), frames: Number(v.nb_read_frames), fps: String(v.avg_frame_rate),
    duration: Number(j.format.duration), audio: a ? String(a.codec_name) : undefined, video: String(v.codec_name),
  };
}

function adain(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8', env: { ...process.env, ADAIN_MODELS_DIR: MODELS_DIR, ...env }, timeout: 120_000,
  });
  return { code: r.status, stderr: r.stderr };
}

async function photo(name: string, width = 480): Promise<RgbBytes> {
  const { data, info } = await sharp(path.join(PHOTOS, name)).resize({ width }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data };
}

async function frames(file: string): Promise<Buffer[]> {
  const info = await probeVideo(file);
  const out: Buffer[] = [];
  for await (const f of decodeFrames(file, info, { width: info.width, height: info.height })) out.push(f);
  return out;
}

before(async () => {
  if (skip) return;
  const sea = await photo('ArtFlow__sea_01.jpg'), other = await photo('FFDNet__106024.png');
  // a slow pan: the only change between frames is the motion
  const pan = renderMotion(sea, { frames: 24, width: W, height: H, pan: 0.1, zoom: 1.05 });
  await writeClip(pan, W, H, 24, clip('pan.mp4'));
  ffmpeg('-i', clip('pan.mp4'), '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100:duration=1', '-map', '0:v', '-map', '1:a', '-c:v', 'copy', '-c:a', 'aac', '-shortest', clip('pan-audio.mp4'));
  const cut = [...renderMotion(sea, { frames: 12, width: W, height: H, pan: 0.05, zoom: 1 }), ...renderMotion(other, { frames: 12, width: W, height: H, pan: 0.05, zoom: 1 })];
  await writeClip(cut, W, H, 24, clip('cut.mp4'));
  ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=161x91:rate=12', '-t', '1', '-c:v', 'libvpx-vp9', '-deadline', 'realtime', clip('odd.webm'));
  ffmpeg('-i', clip('pan.mp4'), '-frames:v', '10', clip('anim.gif'));
  // bad inputs
  ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=24', '-t', '2', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-movflags', '+faststart', clip('fast.mp4'));
  const fast = readFileSync(clip('fast.mp4'));
  writeFileSync(clip('truncated.mp4'), fast.subarray(0, Math.floor(fast.length * 0.6)));
  const corrupt = Buffer.from(fast);
  for (let i = 4000; i < corrupt.length - 4000; i += 40) corrupt[i] ^= 0x5a;
  writeFileSync(clip('corrupt.mp4'), corrupt);
  ffmpeg('-f', 'lavfi', '-i', 'sine=duration=1', clip('audio-only.mp4'));
  copyFileSync(path.join(ROOT, 'examples/chelsea.jpg'), clip('photo.mp4'));
  ffmpeg('-f', 'lavfi', '-i', 'testsrc=size=160x90:rate=24', '-frames:v', '0', '-c:v', 'mpeg4', clip('zero.avi'));
  ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=30', '-t', '20', '-c:v', 'libx264', '-preset', 'ultrafast', clip('long.mp4'));
  model = await loadModel('cd16x-r41', { modelsDir: MODELS_DIR, threads: 1 });
  scream = await model.styleStats(STYLE, { styleSize: 128 });
});

after(async () => {
  await model?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

test('CLI: an mp4 keeps its frame count, frame rate, size, duration and audio', { skip }, () => {
  const out = clip('out.mp4');
  const r = adain(['stylize', '-c', clip('pan-audio.mp4'), '-s', STYLE, '-o', out, '--style-size', '128', '-t', '1']);
  assert.equal(r.code, 0, r.stderr);
  const a = probe(clip('pan-audio.mp4')), b = probe(out);
  assert.deepEqual([b.width, b.height, b.frames, b.fps, b.video, b.audio], [a.width, a.height, a.frames, a.fps, 'h264', 'aac']);
  assert.ok(Math.abs(a.duration - b.duration) < 0.05, `duration ${a.duration} vs ${b.duration}`);
  assert.match(r.stderr, /Wrote .*24 frames, 160x90 at 24 fps, audio copied/);
  // x264 writes its settings into the stream: veryfast looks 10 frames ahead at sub-pixel level 2, ultrafast 0
  const x264Options = (file: string) => /x264 - core .*?options: ([^\0]*)/.exec(readFileSync(file, 'latin1'))?.[1] ?? '';
  assert.match(x264Options(out), /subme=2 .*rc_lookahead=10 /);
  const ultra = clip('out-ultrafast.mp4');
  assert.equal(adain(['stylize', '-c', clip('pan.mp4'), '-s', STYLE, '-o', ultra, '--style-size', '128', '-t', '1', '--x264-preset', 'ultrafast', '-q']).code, 0);
  assert.match(x264Options(ultra), /subme=0 /);
});

test('API: webm and gif in and out; odd sizes lose a row and column for H.264 only; --max-size scales', { skip }, async () => {
  const mp4 = await model.stylizeVideo(clip('odd.webm'), [scream], { output: clip('odd.mp4') });
  assert.deepEqual([mp4.width, mp4.height, mp4.frames], [160, 90, 12]);
  const p = probe(clip('odd.mp4'));
  assert.deepEqual([p.width, p.height, p.frames, p.fps], [160, 90, 12, '12/1']);
  const webm = await model.stylizeVideo(clip('odd.webm'), [scream], { output: clip('small.webm'), maxSize: 81 });
  const q = probe(clip('small.webm'));
  assert.deepEqual([q.video, q.width, q.height, q.frames, webm.frames], ['vp9', 81, 46, 12, 12]);
  let calls = 0;
  await model.stylizeVideo(clip('anim.gif'), [scream], { output: clip('anim-out.gif'), onProgress: (pr) => { calls++; assert.equal(pr.total, 10); } });
  const g = probe(clip('anim-out.gif'));
  assert.deepEqual([g.video, g.width, g.height, g.frames, calls], ['gif', W, H, 10, 10]);
});

test('the first output frame is the image path\'s output of the first decoded frame', { skip }, async () => {
  await model.stylizeVideo(clip('pan.mp4'), [scream], { output: clip('first.mkv'), temporal: 0.9 });
  const first = fromInterleavedU8((await frames(clip('pan.mp4')))[0], W, H);
  const expected = toInterleavedU8(await model.stylizeToImage(first, [scream]));
  const got = (await frames(clip('first.mkv')))[0];
  // H.264 4:2:0 at crf 18 changes the pixels a little; the unstylised frame is far off
  assert.ok(meanAbsDiff(got, expected) < 0.02, `first frame differs by ${meanAbsDiff(got, expected)}`);
  assert.ok(meanAbsDiff(got, toInterleavedU8(first)) > 0.08, 'output should be stylised');
});

/** Inputs and outputs of every frame, before encoding. */
async function run(file: string, temporal: number, style: ChannelStats | RgbImage = scream, extra = {}) {
  const ins: Uint8Array[] = [], outs: Uint8Array[] = [];
  const r = await model.stylizeVideo(file, [style], {
    output: clip('measure.mkv'), temporal, temporalBlend: 0, ...extra,
    onFrame: ({ input, output }) => { ins.push(toInterleavedU8(input)); outs.push(toInterleavedU8(output)); },
  });
  return { ins, outs, r };
}

test('temporal blending (the default) lowers the flicker of a pan; smoothing the statistics alone hardly changes it', { skip }, async () => {
  const plain = await run(clip('pan.mp4'), 0);
  const stats = await run(clip('pan.mp4'), 1);
  const blend = await run(clip('pan.mp4'), 0, scream, { temporalBlend: DEFAULT_TEMPORAL_BLEND });
  const f0 = flickerRatio(plain.ins, plain.outs), fs = flickerRatio(stats.ins, stats.outs), fb = flickerRatio(blend.ins, blend.outs);
  assert.ok(fb < 0.9 * f0, `flicker ${fb} with blending vs ${f0} without`);
  // what scripts/flicker.ts found: a pan barely moves the feature statistics
  assert.ok(Math.abs(fs / f0 - 1) < 0.1, `flicker ${fs} with smoothed statistics vs ${f0}`);
  assert.ok(meanAbsDiff(stats.outs[23], plain.outs[23]) > 0, 'the statistics should be smoothed');
  assert.deepEqual(stats.r.cuts, [0]);
  assert.deepEqual(blend.r.cuts, [0]);
});

test('a scene cut restarts the smoothing', { skip }, async () => {
  const plain = await run(clip('cut.mp4'), 0), smooth = await run(clip('cut.mp4'), 0.9, scream, { temporalBlend: 0.5 });
  assert.deepEqual(smooth.r.cuts, [0, 12]);
  // at the cut the frame is normalised with its own statistics and not blended, as without smoothing ...
  assert.ok(meanAbsDiff(smooth.outs[12], plain.outs[12]) < 1e-3, `cut frame differs by ${meanAbsDiff(smooth.outs[12], plain.outs[12])}`);
  // ... while later frames are smoothed (and would carry the first shot's statistics without the reset)
  assert.ok(meanAbsDiff(smooth.outs[20], plain.outs[20]) > 1e-4);
});

test('--preserve-color fits the colours once, on the first frame', { skip }, async () => {
  const style = await model.readStyle(STYLE, { styleSize: 128 });
  const { outs } = await run(clip('pan.mp4'), 0, style, { preserveColor: true, styleSize: 128 });
  const first = fromInterleavedU8((await frames(clip('pan.mp4')))[0], W, H);
  const expected = toInterleavedU8(await model.stylizeToImage(first, [style], { preserveColor: true, styleSize: 128 }));
  assert.ok(meanAbsDiff(outs[0], expected) < 1e-3);
  // a later frame uses the first frame's fit, not its own (which would equal the image path's)
  const later = fromInterleavedU8((await frames(clip('pan.mp4')))[23], W, H);
  const own = toInterleavedU8(await model.stylizeToImage(later, [style], { preserveColor: true, styleSize: 128 }));
  const once = toInterleavedU8(await model.stylizeToImage(later, [await model.styleStats(await preserved(style, first), { styleSize: 128 })]));
  assert.ok(meanAbsDiff(outs[23], once) < 1e-3 && meanAbsDiff(once, own) > 0, `frame 23 should use the first frame's colour fit: ${meanAbsDiff(outs[23], once)} ${meanAbsDiff(once, own)}`);
});

async function preserved(style: RgbImage, content: RgbImage): Promise<RgbImage> {
  const { preserveColor } = await import('../src/image/color.js');
  return preserveColor(style, content);
}

test('bad video input: one line naming the file, exit 2, no output and no temporary file', { skip }, () => {
  const cases: [string[], string][] = [
    [['-c', clip('truncated.mp4')], 'truncated.mp4'],
    [['-c', clip('corrupt.mp4')], 'corrupt.mp4'],
    [['-c', clip('audio-only.mp4'), '-o', clip('bad.mp4')], 'no video stream'],
    [['-c', clip('photo.mp4')], 'still image'],
    [['-c', clip('zero.avi')], 'no frames'],
    [['-c', clip('pan.mp4'), '--max-pixels', '10000'], 'more than the limit'],
    [['-c', clip('pan.mp4'), '-o', clip('bad.avi')], '.avi'],
  ];
  for (const [args, mention] of cases) {
    const out = args.includes('-o') ? args[args.indexOf('-o') + 1] : clip('bad.mp4');
    const r = adain(['stylize', '-s', STYLE, '-o', out, '--style-size', '64', '-t', '1', ...args.filter((a, i) => a !== '-o' && args[i - 1] !== '-o')]);
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line expected: ${r.stderr}`);
    assert.ok(lines[0].includes(mention), `'${lines[0]}' should mention ${mention}`);
    assert.ok(!existsSync(out), `${out} must not exist`);
    assert.deepEqual(readdirSync(tmp).filter((f) => f.endsWith('.tmp')), [], 'temporary files left behind');
  }
});

test('ffmpeg missing: a one-line error saying how to install it', { skip }, () => {
  const r = adain(['stylize', '-c', clip('pan.mp4'), '-s', STYLE, '-o', clip('none.mp4')], { ADAIN_FFMPEG: path.join(tmp, 'no-such-ffmpeg') });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr.trim(), /^adain: error: ffmpeg was not found .*apt-get install ffmpeg[^\n]*$/);
});

test('Ctrl-C stops the run and leaves no partial file', { skip }, async () => {
  const dir = path.join(tmp, 'sigint');
  mkdirSync(dir);
  const child = spawn(process.execPath, [BIN, 'stylize', '-c', clip('long.mp4'), '-s', STYLE, '-o', path.join(dir, 'out.mp4'), '--style-size', '64', '-t', '1'], {
    env: { ...process.env, ADAIN_MODELS_DIR: MODELS_DIR }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('close', resolve));
  // interrupt once the temporary output holds some frames
  const deadline = Date.now() + 60_000;
  for (;;) {
    const tmpFile = readdirSync(dir).find((f) => f.endsWith('.tmp'));
    if (tmpFile && statSync(path.join(dir, tmpFile)).size > 0) break;
    assert.ok(Date.now() < deadline, `no temporary file appeared: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGINT');
  assert.equal(await exit, 130, stderr);
  assert.deepEqual(readdirSync(dir), []);
  assert.match(stderr, /interrupted/);
});

test('a folder of contents may mix images and videos', { skip }, () => {
  const dir = path.join(tmp, 'mixed'), out = path.join(tmp, 'mixed-out');
  mkdirSync(dir);
  copyFileSync(clip('anim.gif'), path.join(dir, 'still.gif'));
  copyFileSync(clip('odd.webm'), path.join(dir, 'clip.webm'));
  const r = adain(['stylize', '-c', dir, '-s', STYLE, '-o', out, '--style-size', '64', '-t', '1', '-q']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(readdirSync(out).sort(), ['clip_stylized_scream.webm', 'still_stylized_scream.png']);
  assert.equal(probe(path.join(out, 'clip_stylized_scream.webm')).frames, 12);
});

test('readAhead keeps at most depth items in flight and passes errors on', async () => {
  let pulled = 0, consumed = 0, maxAhead = 0;
  async function* source() {
    for (let i = 0; i < 10; i++) {
      pulled++;
      maxAhead = Math.max(maxAhead, pulled - consumed);
      await new Promise((r) => setTimeout(r, 1));
      yield i;
    }
    throw new Error('boom');
  }
  const got: number[] = [];
  await assert.rejects(async () => {
    for await (const x of readAhead(source(), 3)) {
      got.push(x);
      await new Promise((r) => setTimeout(r, 3));
      consumed++;
    }
  }, /boom/);
  assert.deepEqual(got, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.ok(maxAhead <= 4, `ran ${maxAhead} ahead`);
});

test('TemporalStats: a moving average of mean and std, restarted on a jump', () => {
  const s = (m: number, d: number): ChannelStats => ({ mean: Float32Array.of(m), std: Float32Array.of(d) });
  const t = new TemporalStats({ strength: 0.5 });
  assert.deepEqual([...t.next(s(1, 1)).mean], [1]);
  const second = t.next(s(1.1, 1.2));
  assert.ok(Math.abs(second.mean[0] - 1.05) < 1e-6 && Math.abs(second.std[0] - 1.1) < 1e-6);
  // a jump of the statistics, or of the pixels, is a cut: the frame's own statistics are used
  assert.deepEqual([...t.next(s(3, 1)).mean], [3]);
  assert.deepEqual([...t.next(s(3.01, 1), 0.5).mean].map((x) => +x.toFixed(4)), [3.01]);
  assert.deepEqual(t.cuts, [0, 2, 3]);
});

test('OutputBlend: still pixels settle, changed pixels follow the new frame, a cut restarts', () => {
  const blend = new OutputBlend(0.5);
  const still = new Uint8Array([10, 10, 10, 200, 200, 200]);
  const moved = new Uint8Array([10, 10, 10, 40, 40, 40]);
  const first = Float32Array.of(0, 0, 0, 0, 0, 0);
  blend.apply(first, still, false);
  const second = Float32Array.of(1, 1, 1, 1, 1, 1); // planar: R of both pixels, then G, then B
  blend.apply(second, moved, false);
  // pixel 0 did not change: half the previous output; pixel 1 changed by 160 levels: the new one
  assert.deepEqual([second[0], second[2], second[4]], [0.5, 0.5, 0.5]);
  assert.ok(second[1] > 0.999 && second[3] > 0.999 && second[5] > 0.999);
  const third = Float32Array.of(1, 1, 1, 1, 1, 1);
  blend.apply(third, moved, true);
  assert.deepEqual([...third], [1, 1, 1, 1, 1, 1]);
});

test('planarWithChange gives fromInterleavedU8 and frameChange in one pass', () => {
  const w = 29, h = 7, n = w * h;
  let seed = 3;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const prev = Uint8Array.from({ length: 3 * n }, () => rand() * 256), cur = Uint8Array.from({ length: 3 * n }, () => rand() * 256);
  const expectedChanges = new Uint16Array(n), changes = new Uint16Array(n);
  const expectedChange = frameChange(prev, cur, expectedChanges);
  const got = planarWithChange(cur, w, h, prev, changes);
  assert.deepEqual(got.image, fromInterleavedU8(cur, w, h));
  assert.equal(got.change, expectedChange);
  assert.deepEqual(changes, expectedChanges);
  // the first frame: no change, the slots untouched
  const first = planarWithChange(cur, w, h, undefined, changes.fill(9));
  assert.equal(first.change, 0);
  assert.ok(changes.every((v) => v === 9));
});

test('OutputBlend.applyToBytes gives the bytes of apply() then toInterleavedU8, and the same blended floats when asked', () => {
  const w = 37, h = 11, n = w * h;
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const a = new OutputBlend(DEFAULT_TEMPORAL_BLEND), b = new OutputBlend(DEFAULT_TEMPORAL_BLEND);
  let input = Uint8Array.from({ length: 3 * n }, () => rand() * 256);
  for (let f = 0; f < 6; f++) {
    // small changes (the blend's range), a few large ones, values outside [0, 1] and a NaN for the clamp
    const next = input.map((v) => (rand() < 0.1 ? rand() * 256 : Math.min(255, v + (rand() * 6 | 0))));
    const out = Float32Array.from({ length: 3 * n }, () => rand() * 1.2 - 0.1);
    out[5] = NaN;
    const changes = new Uint16Array(n);
    frameChange(input, next, changes);
    const cut = f === 3;
    const plain = out.slice(), fused = out.slice(), untouched = out.slice();
    a.apply(plain, next, cut, changes);
    const expected = toInterleavedU8({ width: w, height: h, data: plain });
    const keep = f % 2 === 0;
    const got = b.applyToBytes(keep ? fused : untouched, next, cut, changes, keep);
    assert.deepEqual(got, expected, `frame ${f}`);
    if (keep) assert.deepEqual(fused, plain, `frame ${f}: blended floats`);
    else if (f > 0 && !cut) assert.deepEqual(untouched, out, `frame ${f}: output left alone`);
    input = next;
  }
});

test('adain bench video reports the pipeline and the stylisation alone, per model and precision (int8 only where calibrated)', { skip }, () => {
  const r = spawnSync(process.execPath, [BIN, 'bench', 'video', '--size', '64x48', '--frames', '4', '--threads', '1', '--runs', '2', '--json'], {
    encoding: 'utf8', env: { ...process.env, ADAIN_MODELS_DIR: MODELS_DIR }, timeout: 180_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as { model: string; precision: string; frames: number; x264Preset: string; runs: number; pipelineFps: number; steadyFps: number; frameByFrameFps: number; stylizeFps: number }[];
  // cd16x-r41 ships a calibration, cd16x-r31 does not (int8 is not faster for it)
  assert.deepEqual(rows.map((x) => `${x.model}@${x.precision}`), ['cd16x-r41@fp32', 'cd16x-r41@int8', 'cd16x-r31@fp32']);
  assert.match(r.stderr, /no int8 row for cd16x-r31.*adain calibrate --model cd16x-r31/);
  for (const row of rows) {
    assert.equal(row.frames, 4);
    assert.deepEqual([row.x264Preset, row.runs], ['veryfast', 2]);
    assert.ok(row.pipelineFps > 0 && row.steadyFps > 0 && row.frameByFrameFps > 0 && row.stylizeFps > 0);
  }
});

test('WriteBehind: write() returns while at most depth chunks are unflushed, in order, and passes errors on', async () => {
  let issued = 0, flushed = 0, maxUnflushed = 0;
  const seen: number[] = [];
  const slow = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _enc, cb) {
      seen.push(chunk[0]);
      setTimeout(() => { flushed++; cb(chunk[0] === 7 ? new Error('disk full') : null); }, 2);
    },
  });
  slow.on('error', () => {});
  const wb = new WriteBehind(slow, 2);
  await assert.rejects(async () => {
    for (let i = 0; i < 20; i++) {
      issued++;
      await wb.write(Uint8Array.of(i));
      maxUnflushed = Math.max(maxUnflushed, issued - flushed);
    }
  }, /disk full/);
  assert.ok(maxUnflushed <= 2, `${maxUnflushed} chunks unflushed`);
  assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 7]);
  await assert.rejects(wb.write(Uint8Array.of(99)), /disk full/);
  assert.throws(() => new WriteBehind(slow, 0), RangeError);
});

test('WriteBehind: a stream destroyed under queued writes ends the wait instead of hanging', async () => {
  const stuck = new Writable({ highWaterMark: 1, write() { /* never calls back */ } });
  stuck.on('error', () => {});
  const wb = new WriteBehind(stuck, 1);
  await wb.write(Uint8Array.of(1));
  const waiting = wb.write(Uint8Array.of(2));
  stuck.destroy();
  await waiting.catch(() => {});
  await assert.rejects(wb.write(Uint8Array.of(3)), /closed|destroyed/);
});

test('FrameEncoder: an ffmpeg that dies makes write() and finish() reject, without hanging', { skip }, async () => {
  const saved = process.env.ADAIN_FFMPEG;
  process.env.ADAIN_FFMPEG = '/bin/false';
  try {
    const enc = new FrameEncoder({ width: W, height: H, fpsNum: 24, fpsDen: 1, format: videoFormatFromPath('x.mp4'), label: 'x.mp4' }, clip('never.mp4'));
    await assert.rejects(async () => {
      for (let i = 0; i < 100; i++) await enc.write(new Uint8Array(W * H * 3));
    }, /ffmpeg failed/);
    await assert.rejects(enc.finish(), /ffmpeg failed/);
  } finally {
    if (saved === undefined) delete process.env.ADAIN_FFMPEG;
    else process.env.ADAIN_FFMPEG = saved;
  }
});

test('frame conversions and the fused change + blend give exactly the values of the plain computations', () => {
  const w = 37, h = 11, n = w * h;
  const a = new Uint8Array(3 * n).map((_, i) => (i * 97 + 13) % 256), b = new Uint8Array(3 * n).map((_, i) => (i * 31 + (i % 7) * 50) % 256);
  assert.deepEqual(fromInterleavedU8(a, w, h).data, Float32Array.from({ length: 3 * n }, (_, j) => a[3 * (j % n) + Math.floor(j / n)] / 255));
  const f = new Float32Array(3 * n).map((_, i) => (i % 300) / 255 - 0.1);
  f.set([NaN, Infinity, -Infinity, 0.5, -0, 1, 127.5 / 255, 0.5 / 255, 254.5 / 255, 1e-9]);
  const img = { width: w, height: h, data: f };
  const plain = (v: number) => Math.round((v > 0 ? (v < 1 ? v : 1) : 0) * 255);
  assert.deepEqual(toInterleavedU8(img), Uint8Array.from({ length: 3 * n }, (_, k) => plain(f[(k % 3) * n + Math.floor(k / 3)])));
  const changes = new Uint16Array(n);
  assert.equal(frameChange(a, b, changes), meanAbsDiff(a, b));
  const out1 = Float32Array.from(f, (x, i) => (i % 5) / 4), out2 = out1.slice();
  const b1 = new OutputBlend(0.8), b2 = new OutputBlend(0.8);
  b1.apply(f.slice(), a, false); b2.apply(f.slice(), a, false);
  b1.apply(out1, b, false); b2.apply(out2, b, false, changes);
  assert.deepEqual(out2, out1);
});

test('aborting a video run through the API rejects and leaves no file, temporary or not', { skip }, async () => {
  const dir = path.join(tmp, 'abort-api');
  mkdirSync(dir);
  const ac = new AbortController();
  await assert.rejects(model.stylizeVideo(clip('pan.mp4'), [scream], {
    output: path.join(dir, 'out.mp4'), signal: ac.signal, onProgress: ({ done }) => { if (done === 3) ac.abort(); },
  }));
  assert.deepEqual(readdirSync(dir), []);
});
