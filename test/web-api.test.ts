// The studio's HTTP API: good requests, every kind of bad input (each a 4xx JSON error, the
// server still serving afterwards), the bounded queue (503 + Retry-After) and the timeout.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { deflateSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { startStudio, type StudioServer } from '../src/web/server.js';

const MODELS_DIR = path.resolve(import.meta.dirname, '../../shared/models');
const skip = existsSync(MODELS_DIR) ? false : `../shared/models not found at ${MODELS_DIR}`;
const EX = (f: string) => readFileSync(path.resolve(import.meta.dirname, '../examples', f));

let studio: StudioServer;
let small: Buffer; // 96x64 content, quick to stylise
let style: Buffer;
before(async () => {
  if (skip) return;
  studio = await startStudio({ port: 0, modelsDir: MODELS_DIR, threads: 2 });
  small = await sharp(EX('chelsea.jpg')).resize(96, 64).jpeg().toBuffer();
  style = await sharp(EX('scream.jpg')).resize(128).jpeg().toBuffer();
});
after(async () => { await studio?.close(); });

type Part = [name: string, value: string | Buffer, filename?: string];

function form(parts: Part[]): FormData {
  const fd = new FormData();
  for (const [name, value, filename] of parts) {
    if (typeof value === 'string' && filename === undefined) fd.append(name, value);
    else fd.append(name, new Blob([value]), filename ?? `${name}.bin`);
  }
  return fd;
}

async function post(parts: Part[], server = studio): Promise<Response> {
  return fetch(`${server.url}/api/stylize`, { method: 'POST', body: form(parts) });
}

async function expectError(res: Response, status: number, pattern: RegExp): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${text}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const body = JSON.parse(text) as { error: string; status: number };
  assert.equal(body.status, status);
  assert.match(body.error, pattern);
}

async function healthy(server = studio): Promise<void> {
  const res = await fetch(`${server.url}/healthz`);
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as { ok: boolean }).ok, true);
}

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** A 65-byte PNG whose header says 10000x5000 (50 megapixels); its pixel data is missing. */
function hugePngHeader(): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(10000, 0);
  ihdr.writeUInt32BE(5000, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(0))), chunk('IEND', Buffer.alloc(0))]);
}

test('GET /healthz, /api/models, /api/gallery and the page answer, with cross-origin isolation headers', { skip }, async () => {
  await healthy();
  const models = (await (await fetch(`${studio.url}/api/models`)).json()) as { default: string; models: { name: string; available: boolean; onnx: { encoder: string } }[] };
  assert.equal(models.default, 'cd16x-r41');
  const m = models.models.find((x) => x.name === 'cd16x-r41');
  assert.ok(m?.available, 'cd16x-r41 should be available');
  assert.equal(m.onnx.encoder, '/models/cd16x-r41/encoder.onnx');
  const gallery = (await (await fetch(`${studio.url}/api/gallery`)).json()) as { images: { url: string; role: string }[] };
  assert.ok(gallery.images.some((g) => g.role === 'style') && gallery.images.length >= 5);
  const page = await fetch(`${studio.url}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  assert.equal(page.headers.get('cross-origin-opener-policy'), 'same-origin');
  assert.equal(page.headers.get('cross-origin-embedder-policy'), 'require-corp');
  const wasm = await fetch(`${studio.url}/ort/ort-wasm-simd-threaded.wasm`, { method: 'HEAD' });
  assert.equal(wasm.status, 200);
  assert.equal(wasm.headers.get('content-type'), 'application/wasm');
  const mjs = await fetch(`${studio.url}/ort/ort.wasm.min.mjs`, { method: 'HEAD' });
  assert.match(mjs.headers.get('content-type') ?? '', /^text\/javascript/);
  const img = await fetch(`${studio.url}${gallery.images[0].url}`);
  assert.equal(img.status, 200);
  assert.equal(img.headers.get('content-type'), 'image/jpeg');
});

test('the browser ONNX files are built from the registry and run', { skip }, async () => {
  const info = (await (await fetch(`${studio.url}/models/cd16x-r41/info.json`)).json()) as { factor: number; channels: number; featureName: string };
  assert.deepEqual([info.factor, info.channels, info.featureName], [8, 128, 'relu4_1']);
  const enc = new Uint8Array(await (await fetch(`${studio.url}/models/cd16x-r41/encoder.onnx`)).arrayBuffer());
  const dec = new Uint8Array(await (await fetch(`${studio.url}/models/cd16x-r41/decoder.onnx`)).arrayBuffer());
  const e = await ort.InferenceSession.create(enc, { intraOpNumThreads: 1 });
  const d = await ort.InferenceSession.create(dec, { intraOpNumThreads: 1 });
  try {
    const f = (await e.run({ image: new ort.Tensor('float32', new Float32Array(3 * 32 * 48).fill(0.5), [1, 3, 32, 48]) })).relu4_1;
    assert.deepEqual(f.dims, [1, 128, 4, 6]);
    const out = (await d.run({ features: f })).image;
    assert.deepEqual(out.dims, [1, 3, 32, 48]);
  } finally {
    await e.release();
    await d.release();
  }
  const etag = (await fetch(`${studio.url}/models/cd16x-r41/decoder.onnx`, { method: 'HEAD' })).headers.get('etag')!;
  assert.equal((await fetch(`${studio.url}/models/cd16x-r41/decoder.onnx`, { headers: { 'If-None-Match': etag } })).status, 304);
  await expectError(await fetch(`${studio.url}/models/nope/encoder.onnx`), 404, /unknown model/);
  await expectError(await fetch(`${studio.url}/models/cd16x-r41/weights.bin`), 404, /no such file/);
});

test('POST /api/stylize returns a PNG at the content size', { skip }, async () => {
  const content = EX('chelsea.jpg'); // 451x300
  const res = await post([['content', content, 'chelsea.jpg'], ['style', style, 'scream.jpg'], ['alpha', '0.8'], ['style_size', '128']]);
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal(res.headers.get('content-type'), 'image/png');
  const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['png', 451, 300]);
});

test('two styles with weights, preserved colours and JPEG output', { skip }, async () => {
  const style2 = await sharp(EX('coffee.jpg')).resize(128).png().toBuffer();
  const res = await post([
    ['content', small, 'c.jpg'], ['style', style, 's1.jpg'], ['style', style2, 's2.png'],
    ['style_weights', '0.7,0.3'], ['preserve_color', 'true'], ['format', 'jpeg'], ['style_size', '64'],
  ]);
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal(res.headers.get('content-type'), 'image/jpeg');
  const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
  assert.deepEqual([meta.width, meta.height], [96, 64]);
});

test('alpha changes the result; the same request gives the same bytes (style statistics reused)', { skip }, async () => {
  const run = async (alpha: string) => Buffer.from(await (await post([['content', small, 'c.jpg'], ['style', style, 's.jpg'], ['alpha', alpha], ['style_size', '128']])).arrayBuffer());
  const a = await run('1'), b = await run('0.2'), a2 = await run('1');
  assert.notDeepEqual(a, b);
  assert.deepEqual(a, a2);
});

test('transform wct gives another image than adain, repeatably (its style statistics cached apart); a bad value is a 400', { skip }, async () => {
  const run = async (transform?: string) => Buffer.from(await (await post([['content', small, 'c.jpg'], ['style', style, 's.jpg'], ['style_size', '128'], ...(transform ? [['transform', transform] as Part] : [])])).arrayBuffer());
  const adain = await run(), wct = await run('wct'), adain2 = await run('adain'), wct2 = await run('wct');
  assert.notDeepEqual(adain, wct);
  assert.deepEqual(adain, adain2);
  assert.deepEqual(wct, wct2);
  await expectError(await post([['content', small, 'c.jpg'], ['style', style, 's.jpg'], ['transform', 'wtc']]), 400, /"transform" must be adain or wct/);
});

test('bad images get 4xx JSON errors: not an image, truncated JPEG, 0 bytes, 50 megapixels', { skip }, async () => {
  const jpeg = EX('chelsea.jpg');
  await expectError(await post([['content', Buffer.from('this is not an image\n'), 'notes.txt'], ['style', style, 's.jpg']]), 415, /content \(notes\.txt\) is not an image/);
  await expectError(await post([['content', jpeg.subarray(0, Math.floor(jpeg.length / 2)), 'half.jpg'], ['style', style, 's.jpg']]), 422, /truncated|corrupt/);
  await expectError(await post([['content', Buffer.alloc(0), 'empty.jpg'], ['style', style, 's.jpg']]), 400, /empty \(0 bytes\)/);
  await expectError(await post([['content', small, 'c.jpg'], ['style', Buffer.alloc(0), 'empty.png']]), 400, /style \(empty\.png\) is empty/);
  await expectError(await post([['content', hugePngHeader(), 'huge.png'], ['style', style, 's.jpg']]), 413, /10000x5000 \(50\.0 megapixels\)/);
  await expectError(await post([['content', small, 'c.jpg'], ['style', hugePngHeader(), 'huge.png']]), 413, /style \(huge\.png\)/);
  await healthy();
});

test('bad fields get 400: missing content or style, alpha out of range, unknown fields, bad weights', { skip }, async () => {
  await expectError(await post([['style', style, 's.jpg']]), 400, /missing field "content"/);
  await expectError(await post([['content', small, 'c.jpg']]), 400, /missing field "style"/);
  await expectError(await post([['content', 'just text'], ['style', style, 's.jpg']]), 400, /"content" must be a file/);
  for (const alpha of ['1.5', '-0.1', 'abc', '']) {
    await expectError(await post([['content', small, 'c.jpg'], ['style', style, 's.jpg'], ['alpha', alpha]]), 400, /"alpha" must be a number between 0 and 1/);
  }
  await expectError(await post([['content', small, 'c.jpg'], ['style', style, 's.jpg'], ['alpah', '0.5']]), 400, /unknown field "alpah"/);
  await expectError(await post([['content', small, 'c.jpg'], ['style', style, 's.jpg'], ['style_weights', '1,2']]), 400, /2 values for 1 styles/);
  await expectError(await post([['content', small, 'c.jpg'], ['style', style, 's.jpg'], ['preserve_color', 'maybe']]), 400, /true or false/);
  await expectError(await post([['content', small, 'c.jpg'], ['style', style, 's.jpg'], ['model', 'nope']]), 400, /unknown model "nope"/);
  await expectError(await post([['content', small, 'c.jpg'], ['style', style, 's.jpg'], ['format', 'gif']]), 400, /png, jpeg or webp/);
  await expectError(await post([['content', small, 'c.jpg'], ...Array.from({ length: 5 }, (_, i): Part => ['style', style, `s${i}.jpg`])]), 413, /too many files/);
  await expectError(await post([['content', small, 'c.jpg'], ['content', small, 'd.jpg'], ['style', style, 's.jpg']]), 400, /exactly one "content"/);
  await healthy();
});

test('not multipart, malformed multipart, wrong method, unknown path: 4xx JSON', { skip }, async () => {
  await expectError(await fetch(`${studio.url}/api/stylize`, { method: 'POST', body: JSON.stringify({ content: 'x' }), headers: { 'Content-Type': 'application/json' } }), 415, /multipart\/form-data/);
  await expectError(await fetch(`${studio.url}/api/stylize`, { method: 'POST', body: 'garbage without boundaries', headers: { 'Content-Type': 'multipart/form-data; boundary=xyz' } }), 400, /malformed multipart|missing field/);
  await expectError(await fetch(`${studio.url}/api/stylize`, { method: 'POST', body: 'x', headers: { 'Content-Type': 'multipart/form-data' } }), 400, /malformed multipart/);
  await expectError(await fetch(`${studio.url}/api/stylize`), 405, /use POST/);
  await expectError(await fetch(`${studio.url}/api/models`, { method: 'DELETE' }), 405, /not allowed/);
  await expectError(await fetch(`${studio.url}/no/such/page`), 404, /no such page/);
  await expectError(await fetch(`${studio.url}/ort/..%2f..%2fpackage.json`), 404, /no such file/);
  await expectError(await fetch(`${studio.url}/examples/..%2fpackage.json`), 404, /no such file/);
  await healthy();
});

test('upload limit: 413, and the server keeps serving', { skip }, async () => {
  const limited = await startStudio({ port: 0, modelsDir: MODELS_DIR, threads: 1, maxUploadBytes: 4096 });
  try {
    await expectError(await post([['content', EX('chelsea.jpg'), 'big.jpg'], ['style', style, 's.jpg']], limited), 413, /larger than the 4096 bytes upload limit/);
    await healthy(limited);
  } finally {
    await limited.close();
  }
});

test('a full queue answers 503 with Retry-After; a job over the time limit answers 503', { skip }, async () => {
  const busy = await startStudio({ port: 0, modelsDir: MODELS_DIR, threads: 1, concurrency: 1, maxQueue: 0 });
  try {
    // the first request holds the only slot (it also loads the model); the others find no room
    const results = await Promise.all(Array.from({ length: 4 }, () => post([['content', small, 'c.jpg'], ['style', style, 's.jpg'], ['style_size', '64']], busy)));
    const statuses = results.map((r) => r.status).sort();
    assert.equal(statuses[0], 200, `statuses ${statuses}`);
    const refused = results.filter((r) => r.status === 503);
    assert.ok(refused.length >= 1, `expected at least one 503, got ${statuses}`);
    for (const r of refused) {
      assert.match(r.headers.get('retry-after') ?? '', /^\d+$/);
      await expectError(r, 503, /busy/);
    }
    assert.ok(((await (await fetch(`${busy.url}/healthz`)).json()) as { queue: { rejected: number } }).queue.rejected >= 1);
  } finally {
    await busy.close();
  }
  const slow = await startStudio({ port: 0, modelsDir: MODELS_DIR, threads: 1, timeoutMs: 30 });
  try {
    const res = await post([['content', EX('astronaut.jpg'), 'a.jpg'], ['style', EX('scream.jpg'), 's.jpg']], slow);
    await expectError(res, 503, /longer than the 0.03 s limit/);
    await healthy(slow);
  } finally {
    await slow.close();
  }
});

test('a client that disconnects mid-upload does not hurt the server', { skip }, async () => {
  const { request } = await import('node:http');
  await new Promise<void>((resolve) => {
    const req = request(`${studio.url}/api/stylize`, { method: 'POST', headers: { 'Content-Type': 'multipart/form-data; boundary=b', 'Content-Length': '100000' } });
    req.on('error', () => resolve());
    req.write('--b\r\nContent-Disposition: form-data; name="content"; filename="c.jpg"\r\n\r\n');
    req.write(small.subarray(0, 100));
    setTimeout(() => { req.destroy(); resolve(); }, 50);
  });
  await healthy();
});

test('malformed URLs get 4xx, not a crash', { skip }, async () => {
  await expectError(await fetch(`${studio.url}/models/%E0%A4%A/encoder.onnx`), 400, /malformed/);
  const { request } = await import('node:http');
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(`${studio.url}/`, { path: '/%%%/../../etc/passwd' }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
    req.on('error', reject);
    req.end();
  });
  assert.ok(status >= 400 && status < 500, `status ${status}`);
  await healthy();
});

test("the page's AdaIN arithmetic (web/adain.js) matches the server's", async () => {
  // @ts-ignore: a plain JavaScript module of the front end, without types
  const web = await import('../web/adain.js');
  const { adainInto, channelStats, mixStats } = await import('../src/stylize/features.js');
  const { preserveColor } = await import('../src/image/color.js');
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const c = 5, h = 6, w = 7, n = h * w;
  const feats = { c, h, w, data: Float32Array.from({ length: c * n }, () => rand() * 3) };
  const s1 = channelStats({ c, h, w, data: Float32Array.from({ length: c * n }, () => rand() * 2 + 1) });
  const s2 = channelStats({ c, h, w, data: Float32Array.from({ length: c * n }, () => rand()) });
  const mixed = mixStats([s1, s2], [0.25, 0.75]);
  const webMixed = web.mixStats([s1, s2], [1, 3]);
  const ref = new Float32Array(c * n), got = new Float32Array(c * n);
  adainInto(ref, feats, channelStats(feats), mixed, 0.6);
  web.adainInto(got, feats.data, c, n, webMixed, 0.6);
  for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(ref[i] - got[i]) < 1e-4, `adain ${i}: ${ref[i]} vs ${got[i]}`);
  const st = web.channelStats(feats.data, c, n);
  const rs = channelStats(feats);
  for (let i = 0; i < c; i++) assert.ok(Math.abs(st.std[i] - rs.std[i]) < 1e-5 && Math.abs(st.mean[i] - rs.mean[i]) < 1e-5);
  const style = { width: 9, height: 4, data: Float32Array.from({ length: 3 * 36 }, () => rand()) };
  const content = { width: 5, height: 5, data: Float32Array.from({ length: 3 * 25 }, () => rand() * 0.5) };
  const pc = preserveColor(style, content).data;
  const wpc = web.preserveColor(style.data, 36, content.data, 25);
  for (let i = 0; i < pc.length; i++) assert.ok(Math.abs(pc[i] - wpc[i]) < 1e-5, `preserveColor ${i}`);
  // reflect padding as the server pads before encoding
  const { padPlanar } = await import('../src/image/pad.js');
  assert.deepEqual(Array.from(web.padPlanar(style.data, 3, 4, 9, 8, 16)), Array.from(padPlanar(style.data, 3, 4, 9, 8, 16)));
});
