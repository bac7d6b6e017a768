// The studio server against hostile or careless clients, over loopback: foreign Host and
// Origin headers (DNS rebinding, cross-site POSTs), a client that leaves while its job runs,
// uploads that stall, and a missing model whose error must not show the server's folders.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { serveCommand } from '../src/cli/serve-command.js';
import { BUNDLED_DIR } from '../src/models/resolve.js';
import { startStudio, type StudioServer } from '../src/web/server.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const MODELS_DIR = path.resolve(ROOT, '../shared/models');
const skip = existsSync(MODELS_DIR) ? false : `../shared/models not found at ${MODELS_DIR}`;
const EX = (f: string) => readFileSync(path.join(ROOT, 'examples', f));
// an empty cache and no $ADAIN_MODELS_DIR, so that which models are missing does not depend on this machine
const CACHE_DIR = mkdtempSync(path.join(os.tmpdir(), 'adain-hardening-'));
process.env.ADAIN_CACHE_DIR = CACHE_DIR;
delete process.env.ADAIN_MODELS_DIR;

let studio: StudioServer;
let small: Buffer;
let style: Buffer;
before(async () => {
  if (skip) return;
  studio = await startStudio({ port: 0, modelsDir: MODELS_DIR, threads: 1, allowedHosts: ['studio.example', 'proxy.example:8443'] });
  small = await sharp(EX('chelsea.jpg')).resize(96, 64).jpeg().toBuffer();
  style = await sharp(EX('scream.jpg')).resize(128).jpeg().toBuffer();
});
after(async () => {
  await studio?.close();
  rmSync(CACHE_DIR, { recursive: true, force: true });
});

interface Reply { status: number; headers: http.IncomingHttpHeaders; body: Buffer }

/** One request with node:http, which (unlike fetch) lets a test set Host and stall a body. */
function send(server: StudioServer, opts: { method?: string; path?: string; headers?: Record<string, string>; body?: Buffer }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${server.url}${opts.path ?? '/healthz'}`, { method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A multipart/form-data body, serialised by the platform's own FormData. */
async function multipart(parts: [name: string, value: string | Buffer, filename?: string][]): Promise<{ body: Buffer; type: string }> {
  const fd = new FormData();
  for (const [name, value, filename] of parts) {
    if (typeof value === 'string') fd.append(name, value);
    else fd.append(name, new Blob([new Uint8Array(value)]), filename ?? `${name}.bin`);
  }
  const r = new Request('http://localhost/', { method: 'POST', body: fd });
  return { body: Buffer.from(await r.arrayBuffer()), type: r.headers.get('content-type')! };
}

async function postStylize(server: StudioServer, parts: Parameters<typeof multipart>[0], headers: Record<string, string> = {}): Promise<Reply> {
  const { body, type } = await multipart(parts);
  return send(server, { method: 'POST', path: '/api/stylize', headers: { 'Content-Type': type, ...headers }, body });
}

function jsonError(r: Reply, status: number, pattern: RegExp): string {
  const text = r.body.toString('utf8');
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${text.slice(0, 300)}`);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  const { error } = JSON.parse(text) as { error: string };
  assert.match(error, pattern);
  return error;
}

async function queueState(server: StudioServer): Promise<{ running: number; cancelled: number }> {
  const h = JSON.parse((await send(server, {})).body.toString()) as { queue: { running: number }; cancelled: number };
  return { running: h.queue.running, cancelled: h.cancelled };
}

test('a Host header that does not name the server gets 403 JSON; loopback names and --allowed-host pass', { skip }, async () => {
  const port = studio.port;
  const refused = jsonError(await send(studio, { headers: { Host: `rebound.attacker.example:${port}` } }), 403, /Host header "rebound\.attacker\.example:\d+" does not name this server/);
  assert.match(refused, /--allowed-host rebound\.attacker\.example/);
  for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, `LOCALHOST:${port}`, 'studio.example', `studio.example:${port}`, 'proxy.example:8443']) {
    assert.equal((await send(studio, { headers: { Host: host } })).status, 200, `Host: ${host}`);
  }
  for (const host of [`localhost:${port + 1}`, 'localhost', 'proxy.example:8444', 'proxy.example', `studio.example.attacker.example:${port}`]) {
    jsonError(await send(studio, { headers: { Host: host } }), 403, /does not name this server/);
  }
  // the guard covers every path, not just the API: the page and the models are readable too
  jsonError(await send(studio, { path: '/', headers: { Host: 'attacker.example' } }), 403, /Host header/);
  await assert.rejects(startStudio({ port: 0, allowedHosts: ['http://studio.example/'] }), /--allowed-host "http:\/\/studio\.example\/" is not a host name/);
});

test('a cross-origin POST gets 403 JSON; the page\'s own origin, allowed hosts and clients without Origin are served', { skip }, async () => {
  const parts: Parameters<typeof multipart>[0] = [['content', small, 'c.jpg'], ['style', style, 's.jpg'], ['style_size', '64']];
  const foreign = jsonError(await postStylize(studio, parts, { Origin: 'https://attacker.example' }), 403, /cross-origin POST from https:\/\/attacker\.example/);
  assert.match(foreign, /--allowed-host attacker\.example/);
  for (const origin of ['null', `http://localhost:${studio.port + 1}`, `https://127.0.0.1:${studio.port}`, 'file://', `http://studio.example.attacker.example:${studio.port}`]) {
    jsonError(await postStylize(studio, parts, { Origin: origin }), 403, /cross-origin POST/);
  }
  // what the studio page sends (a same-origin fetch), with both loopback spellings
  const own = await postStylize(studio, parts, { Origin: studio.url });
  assert.equal(own.status, 200, own.body.toString().slice(0, 300));
  assert.equal(own.headers['content-type'], 'image/png');
  const local = await postStylize(studio, parts, { Host: `localhost:${studio.port}`, Origin: `http://localhost:${studio.port}` });
  assert.equal(local.status, 200, local.body.toString().slice(0, 300));
  // curl and scripts send no Origin; a page from an --allowed-host may call the API (behind a proxy: https)
  assert.equal((await postStylize(studio, parts)).status, 200);
  jsonError(await postStylize(studio, [['style', style, 's.jpg']], { Origin: 'https://studio.example' }), 400, /missing field "content"/);
  // GETs are left to the browser's same-origin policy (their replies carry no CORS headers)
  assert.equal((await send(studio, { headers: { Origin: 'https://attacker.example' } })).status, 200);
});

test('adain serve --allowed-host reaches the server and --help documents it', { skip }, async () => {
  assert.match(serveCommand().helpInformation(), /--allowed-host <name>[\s\S]*repeatable/);
  const entry = `import { main } from ${JSON.stringify(path.join(ROOT, 'src/cli/main.ts'))}; process.exitCode = await main(['node', 'adain', ...process.argv.slice(1)]);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', entry, '--', 'serve', '--port', '0', '-q',
    '--models-dir', MODELS_DIR, '--allowed-host', 'one.example', '--allowed-host', 'two.example:9000'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '', err = '';
      child.stdout.on('data', (c: Buffer) => { out += c; const m = /listening on (http:\/\/\S+?)\/? /.exec(out); if (m) resolve(m[1]); });
      child.stderr.on('data', (c: Buffer) => { err += c; });
      child.on('exit', (code) => reject(new Error(`adain serve exited with ${code}: ${err}`)));
    });
    const server = { url } as StudioServer;
    assert.equal((await send(server, { headers: { Host: 'one.example' } })).status, 200);
    assert.equal((await send(server, { headers: { Host: 'two.example:9000' } })).status, 200);
    jsonError(await send(server, { headers: { Host: 'three.example' } }), 403, /does not name this server/);
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
});

test('a job whose client disconnects stops at the next tile and frees the worker', { skip }, async () => {
  const lines: string[] = [];
  // 4000x4000 goes in tiles under the default 2 GiB budget and takes tens of seconds on one thread
  const big = await startStudio({ port: 0, modelsDir: MODELS_DIR, threads: 1, log: (l) => lines.push(l) });
  try {
    const png = await sharp({ create: { width: 4000, height: 4000, channels: 3, background: { r: 120, g: 80, b: 40 } } }).png().toBuffer();
    const { body, type } = await multipart([['content', png, 'big.png'], ['style', style, 's.jpg'], ['style_size', '64']]);
    const req = http.request(`${big.url}/api/stylize`, { method: 'POST', headers: { 'Content-Type': type } });
    req.on('error', () => {}); // we hang up ourselves
    req.end(body);
    const t0 = performance.now();
    while ((await queueState(big)).running === 0) {
      assert.ok(performance.now() - t0 < 30_000, 'the big job never started');
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 1500)); // into the decode or the first tiles
    req.destroy();
    const gone = performance.now();
    let state = await queueState(big);
    while (state.running !== 0 && performance.now() - gone < 20_000) {
      await new Promise((r) => setTimeout(r, 100));
      state = await queueState(big);
    }
    const freedS = (performance.now() - gone) / 1000;
    assert.equal(state.running, 0, 'the job kept running after its client left');
    assert.ok(freedS < 6, `the worker was busy for ${freedS.toFixed(1)} s after the client left`);
    assert.equal(state.cancelled, 1);
    assert.equal(big.cancelled(), 1);
    assert.ok(lines.some((l) => /cancelled after \d+ ms: the client disconnected/.test(l)), lines.join('\n'));
    // the one worker serves the next request
    const next = await postStylize(big, [['content', small, 'c.jpg'], ['style', style, 's.jpg'], ['style_size', '64']]);
    assert.equal(next.status, 200);
  } finally {
    await big.close();
  }
});

test('a stalled chunked upload, and stalled headers, get 408 JSON within the timeout', { skip }, async () => {
  const strict = await startStudio({ port: 0, modelsDir: MODELS_DIR, threads: 1, timeoutMs: 1000 });
  try {
    const t0 = performance.now();
    const reply = await new Promise<Reply & { closed: Promise<void> }>((resolve, reject) => {
      const req = http.request(`${strict.url}/api/stylize`, { method: 'POST', headers: { 'Content-Type': 'multipart/form-data; boundary=b', 'Transfer-Encoding': 'chunked' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), closed: new Promise((r) => req.socket?.once('close', () => r())) }));
      });
      req.on('error', reject);
      req.write('--b\r\nContent-Disposition: form-data; name="content"; filename="c.jpg"\r\nContent-Type: image/jpeg\r\n\r\n');
      req.write(small.subarray(0, 200));
      // ...and nothing more; without a limit this would wait for ever
      setTimeout(() => { req.destroy(); reject(new Error('no answer 8 s into a stalled upload with a 1 s timeout')); }, 8000).unref();
    });
    const s = (performance.now() - t0) / 1000;
    jsonError(reply, 408, /request body did not arrive within the 1 s limit/);
    assert.ok(s >= 0.9 && s < 3, `answered after ${s.toFixed(1)} s`);
    assert.equal(reply.headers.connection, 'close');

    // headers that never end: Node's header timer, answered as JSON too
    const raw = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(strict.port, '127.0.0.1');
      let got = '';
      sock.on('data', (c: Buffer) => { got += c.toString('latin1'); });
      sock.on('close', () => resolve(got));
      sock.on('error', reject);
      sock.write(`POST /api/stylize HTTP/1.1\r\nHost: 127.0.0.1:${strict.port}\r\nContent-Type: multipart/form-data; boundary=b\r\n`);
      setTimeout(() => { sock.destroy(); reject(new Error('no answer 8 s into stalled headers')); }, 8000).unref();
    });
    assert.match(raw, /^HTTP\/1\.1 408 /);
    assert.match(raw, /"error":"the request headers did not arrive within 1 s/);
    assert.equal((await send(strict, {})).status, 200);
  } finally {
    await strict.close();
  }
});

test('a model whose weights are missing gets 503 naming the model and the fix, without server paths; the log has them', { skip }, async () => {
  const problems: string[] = [];
  const s = await startStudio({ port: 0, modelsDir: MODELS_DIR, threads: 1, logError: (l) => problems.push(l) });
  try {
    const api = jsonError(await postStylize(s, [['content', small, 'c.jpg'], ['style', style, 's.jpg'], ['model', 'vgg19-r41']]), 503,
      /model vgg19-r41 is not installed on this server \(vgg19-normalised\/vgg_normalised\.pth is missing, adain\/decoder\.pth is missing\)/);
    const onnx = jsonError(await send(s, { path: '/models/vgg19bn-r41/encoder.onnx' }), 503, /model vgg19bn-r41 is not installed/);
    for (const message of [api, onnx]) {
      assert.match(message, /adain models/);
      assert.match(message, /--models-dir or \$ADAIN_MODELS_DIR/);
      for (const dir of [MODELS_DIR, CACHE_DIR, BUNDLED_DIR, ROOT, os.homedir(), os.tmpdir()]) assert.ok(!message.includes(dir), `${dir} in: ${message}`);
      // an absolute path: a slash not part of a URL, followed by folder/name
      assert.doesNotMatch(message, /(^|[^\w:/.-])\/[\w.-]+\/[\w.-]/, message);
    }
    assert.match(api, /--download/); // both files have a download URL
    assert.ok(problems.some((l) => l.includes('vgg19-r41') && l.includes(MODELS_DIR)), `the log should have the searched folders:\n${problems.join('\n')}`);
  } finally {
    await s.close();
  }
});
