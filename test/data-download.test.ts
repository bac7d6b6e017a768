import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { crc32, gzipSync } from 'node:zlib';
import { zipSync } from 'fflate';
import type { DatasetSpec } from '../src/data/datasets.js';
import { DATASETS } from '../src/data/datasets.js';
import { COMPLETE_MARKER, datasetPaths, downloadDataset } from '../src/data/download-dataset.js';
import { UserError } from '../src/errors.js';

// ---- archives built here ---------------------------------------------------------------
const photo = randomBytes(70_000); // incompressible, like a JPEG
const text = Buffer.from('a style image, or rather its stand-in\n'.repeat(500));
const longName = `${'deep/'.repeat(30)}Vincent_van_Gogh_the-starry-night-${'x'.repeat(40)}.jpg`; // > 100 chars: needs pax

const zipBytes = Buffer.from(zipSync({
  'train2017/': {},
  'train2017/000000000009.jpg': [photo, { level: 0 }],
  'train2017/sub/notes.txt': [text, { level: 6 }],
  'train2017/empty.jpg': [new Uint8Array(0), { level: 0 }],
}));

function tarHeader(name: string, size: number, type: string): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write('14000000000\0', 136);
  h.write('        ', 148);
  h.write(type, 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}
function tarEntry(name: string, data: Buffer, type = '0'): Buffer[] {
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return [tarHeader(name, data.length, type), data, pad];
}
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = body.length + 1;
  while (`${len}${body}`.length !== len) len++;
  return `${len}${body}`;
}
const tarBytes = Buffer.concat([
  ...tarEntry('wikiart/', Buffer.alloc(0), '5'),
  ...tarEntry('wikiart/Impressionism/monet.jpg', photo),
  ...tarEntry('./PaxHeaders/long', Buffer.from(paxRecord('path', `wikiart/${longName}`)), 'x'),
  ...tarEntry('wikiart/truncated-name-ignored', text),
  ...tarEntry('wikiart/link', Buffer.alloc(0), '2'),
  ...tarEntry('wikiart/empty.txt', Buffer.alloc(0)),
  Buffer.alloc(1024),
]);
const tgzBytes = gzipSync(tarBytes);

/** A ZIP64 archive (ZIP64 end records, a 0xffffffff local offset) with data descriptors, as big zips are. */
function zip64(files: Record<string, Buffer>): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of Object.entries(files)) {
    const n = Buffer.from(name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(45, 4);
    local.writeUInt16LE(0x0808, 6); // data descriptor + utf8; crc and sizes left zero here
    local.writeUInt16LE(n.length, 26);
    const desc = Buffer.alloc(24);
    desc.writeUInt32LE(0x08074b50, 0);
    desc.writeUInt32LE(crc32(data), 4);
    desc.writeBigUInt64LE(BigInt(data.length), 8);
    desc.writeBigUInt64LE(BigInt(data.length), 16);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(45, 4);
    cd.writeUInt16LE(45, 6);
    cd.writeUInt16LE(0x0808, 8);
    cd.writeUInt32LE(crc32(data), 16);
    cd.writeUInt32LE(data.length, 20);
    cd.writeUInt32LE(data.length, 24);
    cd.writeUInt16LE(n.length, 28);
    cd.writeUInt16LE(12, 30);
    cd.writeUInt32LE(0xffffffff, 42);
    const extra = Buffer.alloc(12);
    extra.writeUInt16LE(1, 0);
    extra.writeUInt16LE(8, 2);
    extra.writeBigUInt64LE(BigInt(offset), 4);
    central.push(cd, n, extra);
    parts.push(local, n, data, desc);
    offset += 30 + n.length + data.length + 24;
  }
  const cdBytes = Buffer.concat(central);
  const count = Object.keys(files).length;
  const rec = Buffer.alloc(56);
  rec.writeUInt32LE(0x06064b50, 0);
  rec.writeBigUInt64LE(44n, 4);
  rec.writeUInt16LE(45, 12);
  rec.writeUInt16LE(45, 14);
  rec.writeBigUInt64LE(BigInt(count), 24);
  rec.writeBigUInt64LE(BigInt(count), 32);
  rec.writeBigUInt64LE(BigInt(cdBytes.length), 40);
  rec.writeBigUInt64LE(BigInt(offset), 48);
  const loc = Buffer.alloc(20);
  loc.writeUInt32LE(0x07064b50, 0);
  loc.writeBigUInt64LE(BigInt(offset + cdBytes.length), 8);
  loc.writeUInt32LE(1, 16);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(0xffff, 8);
  eocd.writeUInt16LE(0xffff, 10);
  eocd.writeUInt32LE(0xffffffff, 12);
  eocd.writeUInt32LE(0xffffffff, 16);
  return Buffer.concat([...parts, cdBytes, rec, loc, eocd]);
}
const zip64Bytes = zip64({ 'big/a.jpg': photo, 'big/b.txt': text });
const slipBytes = Buffer.from(zipSync({ '../escape.txt': [text, { level: 0 }] }));

// ---- a local HTTP server with Range support and misbehaviours on demand -------------------
// ignore-range-shorter: ignores Range, and its second answer drops sooner than the first did
type Mode = 'normal' | 'cut-first' | 'ignore-range' | 'ignore-range-shorter';
interface Route { body: Buffer; mode: Mode }
const routes = new Map<string, Route>();
const seen: { path: string; range?: string }[] = [];
let server: Server;
let base: string;
let tmp: string;

function handle(req: IncomingMessage, res: ServerResponse): void {
  const path = req.url ?? '/';
  const route = routes.get(path);
  const earlier = seen.filter((s) => s.path === path).length;
  seen.push({ path, range: req.headers.range });
  if (!route) {
    res.writeHead(404).end();
    return;
  }
  const { body, mode } = route;
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (m && mode !== 'ignore-range' && mode !== 'ignore-range-shorter') {
    const start = Number(m[1]);
    if (start >= body.length) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
      return;
    }
    res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
    res.end(body.subarray(start));
    return;
  }
  res.writeHead(200, { 'content-length': body.length, 'accept-ranges': mode.startsWith('ignore-range') ? 'none' : 'bytes' });
  if ((mode === 'cut-first' || mode.startsWith('ignore-range')) && earlier === 0) {
    res.write(body.subarray(0, body.length >> 1));
    setTimeout(() => res.destroy(), 30); // the connection drops half-way
    return;
  }
  if (mode === 'ignore-range-shorter' && earlier === 1) {
    res.write(body.subarray(0, body.length >> 2));
    setTimeout(() => res.destroy(), 30); // and the second one a quarter of the way
    return;
  }
  res.end(body);
}

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'adain-data-'));
  server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(tmp, { recursive: true, force: true });
});

let n = 0;
function serve(body: Buffer, mode: Mode, spec: Partial<DatasetSpec> & Pick<DatasetSpec, 'format'>): { spec: DatasetSpec; dir: string; path: string } {
  const path = `/d${++n}/${spec.format === 'zip' ? 'data.zip' : 'data.tar.gz'}`;
  routes.set(path, { body, mode });
  return {
    spec: { name: `set${n}`, description: 'test', url: `${base}${path}`, file: path.split('/').pop()!, terms: 'test', ...spec },
    dir: join(tmp, `run${n}`),
    path,
  };
}
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const requests = (path: string) => seen.filter((s) => s.path === path);
const quick = { retryDelayMs: 0 };

describe('dataset download', () => {
  test('the built-in specs point at COCO train2017 and the ArtGAN WikiArt archive', () => {
    assert.equal(DATASETS.coco.bytes, 19336861798);
    assert.equal(DATASETS.coco.md5, 'cced6f7f71b7629ddf16f17bbcfab6b2');
    assert.equal(DATASETS.wikiart.format, 'tar.gz');
    assert.match(DATASETS.wikiart.description, /[Nn]o size or hash is published/);
  });

  test('zip: download, verify size and md5, unpack, marker; a rerun is a no-op', async () => {
    const { spec, dir, path } = serve(zipBytes, 'normal', { format: 'zip', bytes: zipBytes.length, md5: md5(zipBytes) });
    const phases = new Set<string>();
    const r = await downloadDataset(spec, dir, { ...quick, onProgress: (p) => phases.add(p) });
    assert.deepEqual([...phases], ['download', 'verify', 'unpack']);
    assert.equal(r.skipped, false);
    assert.equal(r.files, 3);
    assert.equal(r.sha256, sha256(zipBytes));
    const { target, archive, marker } = datasetPaths(spec, dir);
    assert.deepEqual(await readFile(join(target, 'train2017/000000000009.jpg')), photo);
    assert.deepEqual(await readFile(join(target, 'train2017/sub/notes.txt')), text);
    assert.equal((await stat(join(target, 'train2017/empty.jpg'))).size, 0);
    assert.ok(existsSync(marker));
    assert.ok(!existsSync(archive), 'archive deleted after unpacking');
    assert.deepEqual((await readdir(dir)).sort(), [spec.name]);

    const again = await downloadDataset(spec, dir, quick);
    assert.equal(again.skipped, true);
    assert.equal(again.files, 3);
    assert.equal(requests(path).length, 1, 'no second request');
  });

  test('tar.gz without a published size or hash: ustar, pax long names, folders; links skipped', async () => {
    const { spec, dir } = serve(tgzBytes, 'normal', { format: 'tar.gz' });
    const logs: string[] = [];
    const r = await downloadDataset(spec, dir, { ...quick, keepArchive: true, log: (l) => logs.push(l) });
    assert.equal(r.files, 3);
    assert.equal(r.sha256, sha256(tgzBytes));
    const { target, archive } = datasetPaths(spec, dir);
    assert.deepEqual(await readFile(join(target, 'wikiart/Impressionism/monet.jpg')), photo);
    assert.deepEqual(await readFile(join(target, 'wikiart', longName)), text);
    assert.equal((await stat(join(target, 'wikiart/empty.txt'))).size, 0);
    assert.ok(!existsSync(join(target, 'wikiart/link')));
    assert.ok(!existsSync(join(target, 'wikiart/truncated-name-ignored')));
    assert.ok(existsSync(archive), '--keep-archive');
    assert.ok(logs.some((l) => /skipped 1 links/.test(l)));
  });

  test('a connection cut half-way: the run fails keeping the .part, the rerun resumes with Range', async () => {
    const { spec, dir, path } = serve(zipBytes, 'cut-first', { format: 'zip', bytes: zipBytes.length, md5: md5(zipBytes) });
    const { part } = datasetPaths(spec, dir);
    await assert.rejects(downloadDataset(spec, dir, { ...quick, retries: 0 }), (err: unknown) => {
      assert.ok(err instanceof UserError);
      assert.match(err.message, /connection (broke|closed).*kept in .*\.part: rerun the same command to resume/);
      return true;
    });
    const have = (await stat(part)).size;
    assert.ok(have > 0 && have < zipBytes.length, `partial file of ${have} bytes`);
    const r = await downloadDataset(spec, dir, quick);
    assert.equal(r.files, 3);
    assert.deepEqual(requests(path).map((s) => s.range), [undefined, `bytes=${have}-`]);
    assert.deepEqual(await readFile(join(datasetPaths(spec, dir).target, 'train2017/000000000009.jpg')), photo);
  });

  test('a cut connection is retried within the same run from where it stopped', async () => {
    const { spec, dir, path } = serve(tgzBytes, 'cut-first', { format: 'tar.gz', sha256: sha256(tgzBytes) });
    const logs: string[] = [];
    const r = await downloadDataset(spec, dir, { ...quick, log: (l) => logs.push(l) });
    assert.equal(r.files, 3);
    const ranges = requests(path).map((s) => s.range);
    assert.equal(ranges.length, 2);
    assert.match(ranges[1] ?? '', /^bytes=[1-9]\d*-$/);
    assert.ok(logs.some((l) => /retrying from byte/.test(l)));
  });

  test('a server that ignores Range (200) is read from the start again', async () => {
    const { spec, dir, path } = serve(zipBytes, 'ignore-range', { format: 'zip', bytes: zipBytes.length, md5: md5(zipBytes) });
    const logs: string[] = [];
    const r = await downloadDataset(spec, dir, { ...quick, log: (l) => logs.push(l) });
    assert.equal(r.sha256, sha256(zipBytes));
    assert.equal(requests(path).length, 2);
    assert.ok(requests(path)[1].range, 'asked to resume');
    assert.ok(logs.some((l) => /ignored the resume request/.test(l)));
    assert.deepEqual(await readFile(join(datasetPaths(spec, dir).target, 'train2017/sub/notes.txt')), text);
  });

  test('a server that ignores Range and drops again sooner: the .part never shrinks', async () => {
    const { spec, dir } = serve(zipBytes, 'ignore-range-shorter', { format: 'zip', bytes: zipBytes.length, md5: md5(zipBytes) });
    const { part } = datasetPaths(spec, dir);
    await assert.rejects(downloadDataset(spec, dir, { ...quick, retries: 0 }), UserError);
    const first = (await stat(part)).size;
    await assert.rejects(downloadDataset(spec, dir, { ...quick, retries: 0 }), UserError);
    assert.equal((await stat(part)).size, first, 'the second, shorter answer truncated what the first one left');
    const r = await downloadDataset(spec, dir, quick);
    assert.equal(r.sha256, sha256(zipBytes));
  });

  test('an archive placed by hand is verified before unpacking; a wrong one is kept and named', async () => {
    const good = serve(zipBytes, 'normal', { format: 'zip', bytes: zipBytes.length, md5: md5(zipBytes) });
    const { archive } = datasetPaths(good.spec, good.dir);
    await mkdir(good.dir, { recursive: true });
    await writeFile(archive, zipBytes);
    const logs: string[] = [];
    const r = await downloadDataset(good.spec, good.dir, { ...quick, log: (l) => logs.push(l) });
    assert.equal(r.files, 3);
    assert.equal(requests(good.path).length, 0, 'nothing downloaded');
    assert.ok(logs.some((l) => /verifying/.test(l)) && !logs.some((l) => /already downloaded and verified/.test(l)), logs.join('\n'));

    const bad = serve(zipBytes, 'normal', { format: 'zip', bytes: zipBytes.length, md5: md5(zipBytes) });
    const wrong = datasetPaths(bad.spec, bad.dir).archive;
    await mkdir(bad.dir, { recursive: true });
    const junk = Buffer.alloc(zipBytes.length, 1);
    await writeFile(wrong, junk);
    await assert.rejects(downloadDataset(bad.spec, bad.dir, quick), (err: unknown) => err instanceof UserError && err.message.includes(wrong) && /is not the set\d+ archive \(md5/.test(err.message));
    assert.deepEqual(await readFile(wrong), junk, 'the user\'s file was kept as it was');
  });

  test('a wrong hash is a UserError and the bad file is deleted', async () => {
    const { spec, dir } = serve(zipBytes, 'normal', { format: 'zip', bytes: zipBytes.length, md5: '0'.repeat(32) });
    await assert.rejects(downloadDataset(spec, dir, quick), (err: unknown) => {
      assert.ok(err instanceof UserError);
      assert.match(err.message, new RegExp(`md5 ${md5(zipBytes)}, expected 0{32}.*deleted: rerun`));
      assert.ok(err.message.includes(spec.url));
      return true;
    });
    assert.deepEqual(await readdir(dir), []);
  });

  test('a wrong size is refused before downloading', async () => {
    const { spec, dir } = serve(zipBytes, 'normal', { format: 'zip', bytes: zipBytes.length + 1 });
    await assert.rejects(downloadDataset(spec, dir, quick), /server reports \d+ bytes, the set\d+ archive has \d+/);
  });

  test('ZIP64 archives with data descriptors unpack', async () => {
    const { spec, dir } = serve(zip64Bytes, 'normal', { format: 'zip', sha256: sha256(zip64Bytes) });
    const r = await downloadDataset(spec, dir, quick);
    assert.equal(r.files, 2);
    const { target, marker } = datasetPaths(spec, dir);
    assert.deepEqual(await readFile(join(target, 'big/a.jpg')), photo);
    assert.deepEqual(await readFile(join(target, 'big/b.txt')), text);
    assert.equal(JSON.parse(await readFile(marker, 'utf8')).files, 2);
    assert.ok(marker.endsWith(COMPLETE_MARKER));
  });

  test('an archive with paths leaving its folder is refused and deleted', async () => {
    const { spec, dir } = serve(slipBytes, 'normal', { format: 'zip' });
    await assert.rejects(downloadDataset(spec, dir, quick), /damaged \(it holds a path leaving its folder.*deleted: rerun/);
    assert.ok(!existsSync(join(tmp, 'escape.txt')) && !existsSync(join(dir, 'escape.txt')));
    assert.ok(!existsSync(datasetPaths(spec, dir).archive));
  });

  test('a file that is not a gzip archive is reported as damaged', async () => {
    const { spec, dir } = serve(Buffer.from('<html>not found</html>'), 'normal', { format: 'tar.gz' });
    await assert.rejects(downloadDataset(spec, dir, quick), (err: unknown) => err instanceof UserError && /damaged \(it does not gunzip/.test(err.message));
  });
});
