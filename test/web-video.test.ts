// POST /api/stylize-video and GET /api/video-jobs/<id> over loopback: clips made by the
// project's own synthetic renderer go through the API and come back with their frame count and
// size; every kind of bad input is a 4xx JSON error naming the problem (and never a server
// path); temporary folders are gone afterwards; a client that leaves frees the worker. Also
// adain serve --precision int8.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { serveCommand } from '../src/cli/serve-command.js';
import { decodeFrames } from '../src/video/decode.js';
import { probeVideo } from '../src/video/probe.js';
import { renderMotion, writeClip } from '../src/video/synthetic.js';
import { meanAbsDiff } from '../src/video/temporal.js';
import { startStudio, type StudioOptions, type StudioServer } from '../src/web/server.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const MODELS_DIR = path.resolve(ROOT, '../shared/models');
const has = (tool: string) => spawnSync(tool, ['-version'], { stdio: 'ignore' }).status === 0;
const skip = !has('ffmpeg') || !has('ffprobe') ? 'ffmpeg/ffprobe not installed (apt-get install ffmpeg)'
  : !existsSync(MODELS_DIR) ? `../shared/models not found at ${MODELS_DIR}` : false;
const EX = (f: string) => readFileSync(path.join(ROOT, 'examples', f));

const tmp = mkdtempSync(path.join(os.tmpdir(), 'adain-web-video-'));
// an empty cache: which models have an int8 calibration must not depend on this machine
process.env.ADAIN_CACHE_DIR = path.join(tmp, 'cache');
const W = 64, H = 48, FRAMES = 6;
const file = (name: string) => path.join(tmp, name);

let studio: StudioServer;
let serverTmp: string;
let clip: Buffer;
let longClip: Buffer;
let style: Buffer;
let style2: Buffer;

function serverOptions(extra: StudioOptions = {}): StudioOptions {
  return { port: 0, modelsDir: MODELS_DIR, threads: 1, ...extra };
}

function tempFolder(name: string): string {
  const dir = file(name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

before(async () => {
  if (skip) return;
  const { data, info } = await sharp(EX('chelsea.jpg')).resize({ width: 320 }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const photo = { width: info.width, height: info.height, data };
  await writeClip(renderMotion(photo, { frames: FRAMES, width: W, height: H, pan: 0.1, zoom: 1.05 }), W, H, 12, file('clip.mp4'));
  // long enough (about a second a frame on one thread) that a client can leave mid-way
  await writeClip(renderMotion(photo, { frames: 40, width: 320, height: 240, pan: 0.1, zoom: 1.05 }), 320, 240, 12, file('long.mp4'));
  clip = readFileSync(file('clip.mp4'));
  longClip = readFileSync(file('long.mp4'));
  style = await sharp(EX('scream.jpg')).resize(96).jpeg().toBuffer();
  style2 = await sharp(EX('coffee.jpg')).resize(96).png().toBuffer();
  serverTmp = tempFolder('server-tmp');
  studio = await startStudio(serverOptions({ tempDir: serverTmp }));
});
after(async () => {
  await studio?.close();
  rmSync(tmp, { recursive: true, force: true });
});

type Part = [name: string, value: string | Buffer, filename?: string];

function form(parts: Part[]): FormData {
  const fd = new FormData();
  for (const [name, value, filename] of parts) {
    if (typeof value === 'string' && filename === undefined) fd.append(name, value);
    else fd.append(name, new Blob([new Uint8Array(typeof value === 'string' ? Buffer.from(value) : value)]), filename ?? `${name}.bin`);
  }
  return fd;
}

async function post(parts: Part[], server = studio, query = ''): Promise<Response> {
  return fetch(`${server.url}/api/stylize-video${query}`, { method: 'POST', body: form(parts) });
}

/** The usual fields with `content` as the clip; `extra` adds or replaces. */
function fields(content: Buffer = clip, name = 'clip.mp4', extra: Part[] = []): Part[] {
  const parts: Part[] = [['content', content, name], ['style', style, 's.jpg'], ['style_size', '64']];
  return [...parts.filter(([n]) => !extra.some(([e]) => e === n)), ...extra];
}

async function expectError(res: Response, status: number, pattern: RegExp): Promise<string> {
  const text = await res.text();
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${text.slice(0, 400)}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const body = JSON.parse(text) as { error: string; status: number };
  assert.equal(body.status, status);
  assert.match(body.error, pattern);
  for (const dir of [tmp, os.tmpdir()]) assert.ok(!body.error.includes(dir), `a server path (${dir}) in: ${body.error}`);
  return body.error;
}

async function getJson<T>(server: StudioServer, p: string): Promise<T> {
  const res = await fetch(`${server.url}${p}`);
  assert.equal(res.status, 200, `${p}: ${res.status}`);
  return (await res.json()) as T;
}

interface JobStatus { state: string; frames_done: number; frames_total: number; fps: number; bytes_received: number; error?: string }

/** Waits for a request's temporary folder to go (it is removed once its job has stopped writing). */
async function emptied(dir: string): Promise<void> {
  const t0 = performance.now();
  while (readdirSync(dir).length > 0) {
    assert.ok(performance.now() - t0 < 10_000, `temporary files left in ${dir}: ${readdirSync(dir).join(', ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function saved(res: Response, name: string): Promise<string> {
  const out = file(name);
  writeFileSync(out, Buffer.from(await res.arrayBuffer()));
  return out;
}

async function firstFrame(video: string): Promise<Buffer> {
  const info = await probeVideo(video);
  for await (const f of decodeFrames(video, info, { width: info.width, height: info.height })) return Buffer.from(f);
  throw new Error(`${video} has no frames`);
}

test('a clip comes back as an MP4 with its frame count and size; its progress ends with done == total', { skip }, async () => {
  const id = randomUUID();
  const res = await post(fields(clip, 'clip.mp4', [['alpha', '0.8']]), studio, `?job=${id}`);
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal(res.headers.get('content-type'), 'video/mp4');
  assert.equal(res.headers.get('x-video-frames'), String(FRAMES));
  assert.equal(res.headers.get('x-video-size'), `${W}x${H}`);
  const out = await saved(res, 'out.mp4');
  const info = await probeVideo(out);
  assert.deepEqual([info.width, info.height, info.frames, info.framesFrom, info.fpsNum / info.fpsDen], [W, H, FRAMES, 'count', 12]);
  // stylised, not a copy
  assert.ok(meanAbsDiff(await firstFrame(out), await firstFrame(file('clip.mp4'))) > 0.05);
  const job = await getJson<JobStatus>(studio, `/api/video-jobs/${id}`);
  assert.equal(job.state, 'done');
  assert.equal(job.frames_done, FRAMES);
  assert.equal(job.frames_total, FRAMES);
  assert.ok(job.fps > 0 && job.bytes_received > clip.length, JSON.stringify(job));
  await emptied(serverTmp);
});

test('WebM and GIF out, two styles with weights, preserved colours and the temporal fields', { skip }, async () => {
  const webm = await post(fields(clip, 'clip.mp4', [['style', style, 's.jpg'], ['format', 'webm'], ['temporal', '0.5'], ['temporal_blend', '0.5']]).concat([['style', style2, 's2.png'], ['style_weights', '0.7,0.3']]));
  assert.equal(webm.status, 200, await webm.clone().text());
  assert.equal(webm.headers.get('content-type'), 'video/webm');
  const w = await probeVideo(await saved(webm, 'out.webm'));
  assert.deepEqual([w.width, w.height, w.frames], [W, H, FRAMES]);
  const gif = await post(fields(clip, 'clip.mp4', [['format', 'gif'], ['preserve_color', 'true'], ['max_size', '32']]));
  assert.equal(gif.status, 200, await gif.clone().text());
  assert.equal(gif.headers.get('content-type'), 'image/gif');
  const g = await probeVideo(await saved(gif, 'out.gif'));
  assert.deepEqual([g.width, g.height], [32, 24]);
  const frames: Buffer[] = [];
  for await (const f of decodeFrames(file('out.gif'), g, { width: g.width, height: g.height })) frames.push(f);
  assert.equal(frames.length, FRAMES);
  await emptied(serverTmp);
});

test('bad input gets 4xx JSON naming the problem: not a video, corrupt, no video stream, a still image, bad fields', { skip }, async () => {
  const png = await sharp(EX('chelsea.jpg')).resize(64).png().toBuffer();
  spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=0.5', '-c:a', 'aac', file('audio.mp4')]);
  await expectError(await post(fields(Buffer.from('this is not a video\n'), 'notes.txt')), 415, /content \(notes\.txt\) is not a video this server can read/);
  await expectError(await post(fields(clip.subarray(0, Math.floor(clip.length / 2)), 'half.mp4')), 422, /content \(half\.mp4\) .*(truncated|corrupt)/);
  await expectError(await post(fields(readFileSync(file('audio.mp4')), 'audio.mp4')), 415, /content \(audio\.mp4\) has no video stream \(only audio\)/);
  await expectError(await post(fields(png, 'photo.mp4')), 415, /content \(photo\.mp4\) is a still image.*POST \/api\/stylize/);
  await expectError(await post(fields(Buffer.alloc(0), 'empty.mp4')), 400, /content \(empty\.mp4\) is empty \(0 bytes\)/);
  await expectError(await post([['style', style, 's.jpg']]), 400, /missing field "content": upload the video/);
  await expectError(await post([['content', clip, 'clip.mp4']]), 400, /missing field "style"/);
  await expectError(await post(fields(clip, 'clip.mp4', [['style', Buffer.from('nope'), 's.txt']])), 415, /style \(s\.txt\) is not an image/);
  await expectError(await post(fields(clip, 'clip.mp4', [['format', 'avi']])), 400, /"format" must be mp4, webm, gif/);
  await expectError(await post(fields(clip, 'clip.mp4', [['fromat', 'mp4']])), 400, /unknown field "fromat"; the fields are .*temporal_blend/);
  await expectError(await post(fields(clip, 'clip.mp4', [['temporal_blend', '1']])), 400, /"temporal_blend" must be a number between 0 and 0.99/);
  await expectError(await post(fields(clip, 'clip.mp4', [['max_size', '8']])), 400, /"max_size" must be an integer between 16/);
  await expectError(await post(fields(clip, 'clip.mp4', [['alpha', '2']])), 400, /"alpha" must be a number between 0 and 1/);
  await expectError(await post(fields(clip, 'clip.mp4', [['model', 'nope']])), 400, /unknown model "nope"/);
  await expectError(await post(fields(), studio, '?job=../x'), 400, /job id "\.\.\/x" is not 8-64 letters/);
  await expectError(await fetch(`${studio.url}/api/stylize-video`, { method: 'POST', body: '{}', headers: { 'Content-Type': 'application/json' } }), 415, /multipart\/form-data/);
  await expectError(await fetch(`${studio.url}/api/stylize-video`), 405, /use POST/);
  await expectError(await fetch(`${studio.url}/api/video-jobs/${randomUUID()}`), 404, /no video job/);
  await expectError(await fetch(`${studio.url}/api/video-jobs/x`), 400, /job id/);
  await emptied(serverTmp);
  assert.equal((await fetch(`${studio.url}/healthz`)).status, 200);
});

test('limits: upload size, frames, frames x pixels and pixels per frame each give 413', { skip }, async () => {
  const tiny = await sharp(EX('scream.jpg')).resize(16, 16).png().toBuffer();
  const cases: [StudioOptions, RegExp][] = [
    [{ maxVideoBytes: 2000 }, /file "clip\.mp4" is larger than the 2000 bytes upload limit for videos/],
    [{ maxUploadBytes: 1000 }, /file "s\.jpg" is larger than the 1000 bytes upload limit for images/],
    [{ maxVideoFrames: 3 }, /content \(clip\.mp4\) has 6 frames \(0\.5 s at 12\.00 fps\), more than this server's limit of 3 frames/],
    [{ maxVideoPixels: 10_000 }, /6 frames of 64x48, 18432 pixels in all, more than this server's limit of 10000 pixels; send a shorter clip or a smaller max_size/],
    [{ maxPixels: 1000 }, /content \(clip\.mp4\) has 64x48 frames .* per frame/],
  ];
  for (const [limits, pattern] of cases) {
    const dir = tempFolder('limits-tmp');
    const s = await startStudio(serverOptions({ ...limits, tempDir: dir }));
    try {
      await expectError(await post(fields(clip, 'clip.mp4', limits.maxPixels ? [['style', tiny, 't.png']] : []), s), 413, pattern);
      await emptied(dir);
    } finally {
      await s.close();
    }
  }
});

test('no ffmpeg or ffprobe: 503 JSON saying how to install it', { skip }, async () => {
  const config = await getJson<{ video: { available: boolean; formats: string[] } }>(studio, '/api/config');
  assert.equal(config.video.available, true);
  assert.deepEqual(config.video.formats, ['mp4', 'webm', 'gif']);
  for (const tool of ['FFPROBE', 'FFMPEG']) {
    const key = `ADAIN_${tool}`;
    process.env[key] = file(`no-such-${tool.toLowerCase()}`);
    try {
      await expectError(await post(fields()), 503, new RegExp(`cannot stylise videos: ${tool.toLowerCase()} was not found .*apt-get install ffmpeg`));
    } finally {
      delete process.env[key];
    }
  }
  await emptied(serverTmp);
});

test('progress while a job runs; a second request with its id gets 409; a client that leaves frees the worker', { skip }, async () => {
  const lines: string[] = [];
  const dir = tempFolder('abort-tmp');
  const s = await startStudio(serverOptions({ tempDir: dir, log: (l) => lines.push(l) }));
  try {
    const id = randomUUID();
    const r = new Request('http://localhost/', { method: 'POST', body: form(fields(longClip, 'long.mp4')) });
    const body = Buffer.from(await r.arrayBuffer());
    const req = http.request(`${s.url}/api/stylize-video?job=${id}`, { method: 'POST', headers: { 'Content-Type': r.headers.get('content-type')! } });
    req.on('error', () => {}); // we hang up ourselves
    req.end(body);
    const t0 = performance.now();
    let job: JobStatus;
    for (;;) {
      const res = await fetch(`${s.url}/api/video-jobs/${id}`);
      if (res.status === 200) {
        job = (await res.json()) as JobStatus;
        if (job.frames_done >= 1) break;
      } else await res.body?.cancel();
      assert.ok(performance.now() - t0 < 60_000, 'the job never got to its first frame');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(job.state, 'running');
    assert.equal(job.frames_total, 40);
    assert.ok(job.frames_done < 40, 'the clip should still be running');
    await expectError(await post(fields(), s, `?job=${id}`), 409, /already running/);
    req.destroy();
    const gone = performance.now();
    let health = await getJson<{ queue: { running: number }; cancelled: number }>(s, '/healthz');
    while (health.queue.running !== 0 && performance.now() - gone < 20_000) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      health = await getJson(s, '/healthz');
    }
    const freedS = (performance.now() - gone) / 1000;
    assert.equal(health.queue.running, 0, 'the job kept running after its client left');
    assert.ok(freedS < 6, `the worker was busy for ${freedS.toFixed(1)} s after the client left`);
    assert.equal(health.cancelled, 1);
    const after = await getJson<JobStatus>(s, `/api/video-jobs/${id}`);
    assert.equal(after.state, 'cancelled');
    assert.ok(after.frames_done < 40);
    assert.ok(lines.some((l) => /stylize-video.* cancelled after \d+ ms: the client disconnected/.test(l)), lines.join('\n'));
    await emptied(dir);
    // the one worker serves the next request
    const next = await post(fields(), s);
    assert.equal(next.status, 200, await next.clone().text());
    await next.arrayBuffer();
    await emptied(dir);
  } finally {
    await s.close();
  }
});

test('over --video-timeout: 503 JSON, and the folder goes once the job stops; a client hanging up mid-upload leaves nothing', { skip }, async () => {
  const dir = tempFolder('timeout-tmp');
  const s = await startStudio(serverOptions({ tempDir: dir, videoTimeoutMs: 1500 }));
  try {
    const id = randomUUID();
    await expectError(await post(fields(longClip, 'long.mp4'), s, `?job=${id}`), 503, /the video took longer than the 1\.5 s limit/);
    const job = await getJson<JobStatus>(s, `/api/video-jobs/${id}`);
    assert.equal(job.state, 'failed');
    assert.match(job.error ?? '', /longer than the 1\.5 s limit/);
    await emptied(dir);
    assert.equal(s.queue.stats().running, 0);

    await new Promise<void>((resolve) => {
      const req = http.request(`${s.url}/api/stylize-video`, { method: 'POST', headers: { 'Content-Type': 'multipart/form-data; boundary=b', 'Content-Length': '1000000' } });
      req.on('error', () => resolve());
      req.write('--b\r\nContent-Disposition: form-data; name="content"; filename="c.mp4"\r\n\r\n');
      req.write(longClip.subarray(0, 4000));
      setTimeout(() => { req.destroy(); resolve(); }, 200);
    });
    await emptied(dir);
    assert.equal((await fetch(`${s.url}/healthz`)).status, 200);
  } finally {
    await s.close();
  }
});

test('adain serve --precision int8 serves images and videos in int8; a model without calibration gets a clear error', { skip }, async () => {
  const help = serveCommand().helpInformation();
  for (const flag of ['--precision <p>', '--max-video-mb <n>', '--max-video-frames <n>', '--max-video-pixels <n>', '--video-timeout <s>']) assert.ok(help.includes(flag), `${flag} in --help`);
  const s = await startStudio(serverOptions({ precision: 'int8', tempDir: tempFolder('int8-tmp') }));
  try {
    // the default model is loaded at the start, in int8
    assert.deepEqual((await getJson<{ models: Record<string, string> }>(s, '/healthz')).models, { 'cd16x-r41': 'int8' });
    assert.equal((await getJson<{ precision: string }>(s, '/api/config')).precision, 'int8');
    const image = await fetch(`${s.url}/api/stylize`, { method: 'POST', body: form([['content', await sharp(EX('chelsea.jpg')).resize(96, 64).jpeg().toBuffer(), 'c.jpg'], ['style', style, 's.jpg'], ['style_size', '64']]) });
    assert.equal(image.status, 200, await image.clone().text());
    assert.deepEqual(await sharp(Buffer.from(await image.arrayBuffer())).metadata().then((m) => [m.width, m.height]), [96, 64]);
    const video = await post(fields(), s);
    assert.equal(video.status, 200, await video.clone().text());
    assert.equal((await probeVideo(await saved(video, 'int8.mp4'))).frames, FRAMES);
    const message = await expectError(await fetch(`${s.url}/api/stylize`, { method: 'POST', body: form([['content', style, 'c.jpg'], ['style', style, 's.jpg'], ['model', 'cd16x-r31']]) }), 503,
      /model cd16x-r31 has no int8 calibration on this server.*adain calibrate --model cd16x-r31.*--precision auto or fp32/);
    assert.ok(!message.includes(ROOT), message);
  } finally {
    await s.close();
  }
  await assert.rejects(startStudio(serverOptions({ precision: 'int8', defaultModel: 'cd16x-r31' })), /no int8 calibration for this decoder.*adain calibrate --model cd16x-r31/);
});

test('the page\'s video module is served', { skip }, async () => {
  const res = await fetch(`${studio.url}/video.js`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/javascript/);
  assert.match(await res.text(), /\/api\/stylize-video/);
  assert.match(await (await fetch(`${studio.url}/app.js`)).text(), /from '\.\/video\.js'/);
});
