// The adain command line as a user runs it (bin/adain.js on the built dist/).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { cliSkip as skip, example, MODELS_DIR as SHARED_MODELS, runAdain, type CliResult } from './helpers/cli.js';

const MODELS_DIR = SHARED_MODELS;
const EX = example;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'adain-cli-'));

function adain(...args: string[]): CliResult {
  return runAdain(args, path.join(tmp, 'cache'));
}

function stylize(out: string, ...extra: string[]) {
  return adain('stylize', '--content', EX('chelsea.jpg'), '--style', EX('scream.jpg'), '--output', out, '--style-size', '128', ...extra);
}

/** A user error: exit code 2, one line on stderr naming `mention`, and no output file. */
function assertUserError(r: ReturnType<typeof adain>, mention: string, out?: string): void {
  assert.equal(r.code, 2, `exit code ${r.code}; stderr: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line expected, got: ${r.stderr}`);
  assert.ok(lines[0].includes(mention), `'${lines[0]}' should mention ${mention}`);
  if (out) assert.ok(!existsSync(out), `${out} must not exist`);
}

test('stylize writes an image of the content size', { skip }, async () => {
  const out = path.join(tmp, 'ok.png');
  const r = stylize(out, '--alpha', '0.8');
  assert.equal(r.code, 0, r.stderr);
  const meta = await sharp(out).metadata();
  assert.deepEqual([meta.width, meta.height, meta.format], [451, 300, 'png']);
});

test('style interpolation, mask of another size and preserve-colour work from the CLI', { skip }, async () => {
  const mask = path.join(tmp, 'mask.png');
  const half = Buffer.alloc(100 * 50 * 3);
  for (let y = 0; y < 50; y++) for (let x = 0; x < 50; x++) half.fill(255, (y * 100 + x) * 3, (y * 100 + x) * 3 + 3);
  await sharp(half, { raw: { width: 100, height: 50, channels: 3 } }).png().toFile(mask);
  const out = path.join(tmp, 'mix.jpg');
  assert.equal(stylize(out, '--style', `${EX('scream.jpg')},${EX('coffee.jpg')}`, '--style-weights', '0.7,0.3', '--preserve-color').code, 0);
  const outMask = path.join(tmp, 'mask.webp');
  const r = stylize(outMask, '--style', `${EX('scream.jpg')},${EX('coffee.jpg')}`, '--mask', mask);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await sharp(outMask).metadata()).width, 451);
});

test('folders: every content x style pair, with a progress summary', { skip }, () => {
  const out = path.join(tmp, 'dirout');
  const contents = path.join(tmp, 'contents');
  spawnSync('mkdir', ['-p', contents]);
  writeFileSync(path.join(contents, 'a.jpg'), readFileSync(EX('chelsea.jpg')));
  writeFileSync(path.join(contents, 'b.jpg'), readFileSync(EX('coffee.jpg')));
  writeFileSync(path.join(contents, 'notes.txt'), 'not an image');
  const styles = path.join(tmp, 'styles');
  spawnSync('mkdir', ['-p', styles]);
  writeFileSync(path.join(styles, 's1.jpg'), readFileSync(EX('scream.jpg')));
  writeFileSync(path.join(styles, 's2.jpg'), readFileSync(EX('rocket.jpg')));
  const r = adain('stylize', '-c', contents, '-s', styles, '-o', out, '--style-size', '128', '--max-size', '200');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(readdirSync(out).sort(), ['a_stylized_s1.png', 'a_stylized_s2.png', 'b_stylized_s1.png', 'b_stylized_s2.png']);
  assert.match(r.stderr, /Stylising/);
});

test('bad input: one-line error naming the file, exit code 2, no output file', { skip }, async () => {
  const out = path.join(tmp, 'never.png');
  const empty = path.join(tmp, 'empty.jpg');
  writeFileSync(empty, '');
  const text = path.join(tmp, 'text.jpg');
  writeFileSync(text, 'hello, not an image');
  const truncated = path.join(tmp, 'truncated.jpg');
  const jpg = readFileSync(EX('chelsea.jpg'));
  writeFileSync(truncated, jpg.subarray(0, jpg.length >> 1));
  const grey = path.join(tmp, 'grey-mask.png');
  await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 128, g: 128, b: 128 } } }).png().toFile(grey);
  const corrupt = path.join(tmp, 'corrupt.pth');
  writeFileSync(corrupt, readFileSync(path.join(MODELS_DIR, 'cd16x/decoders/4SD_20191111-092553_E20.pth')).subarray(0, 5000));

  assertUserError(adain('stylize', '-c', path.join(tmp, 'missing.jpg'), '-s', EX('scream.jpg'), '-o', out), 'missing.jpg', out);
  assertUserError(adain('stylize', '-c', empty, '-s', EX('scream.jpg'), '-o', out), 'empty.jpg', out);
  assertUserError(adain('stylize', '-c', text, '-s', EX('scream.jpg'), '-o', out), 'text.jpg', out);
  assertUserError(adain('stylize', '-c', truncated, '-s', EX('scream.jpg'), '-o', out), 'truncated.jpg', out);
  assertUserError(stylize(out, '--max-pixels', '10000'), '--max-pixels', out);
  assertUserError(stylize(out, '--style', `${EX('scream.jpg')},${EX('coffee.jpg')}`, '--mask', grey), 'grey-mask.png', out);
  assertUserError(stylize(out, '--decoder', path.join(MODELS_DIR, 'cd16x/encoders/4SE_20191110-132643_E20.pth')), '4SE_20191110-132643_E20.pth', out);
  assertUserError(stylize(out, '--decoder', path.join(MODELS_DIR, 'vgg19-normalised/feature_invertor_conv3_1.pth')), 'feature_invertor_conv3_1.pth', out);
  assertUserError(stylize(out, '--decoder', corrupt), 'corrupt.pth', out);
  assertUserError(stylize(out, '--alpha', '1.5'), '--alpha', out);
  assertUserError(stylize(out, '--model', 'nope'), 'nope', out);
  assertUserError(stylize(path.join(tmp, 'out.gif')), 'out.gif');
});

test('--help on every command', { skip }, () => {
  for (const args of [['--help'], ['stylize', '--help'], ['models', '--help'], ['bench', '--help']]) {
    const r = adain(...args);
    assert.equal(r.code, 0, `${args}: ${r.stderr}`);
    assert.match(r.stdout, /Usage: adain/);
  }
});

test('models lists every model and whether its files are present', { skip }, () => {
  const r = adain('models');
  assert.equal(r.code, 0, r.stderr);
  for (const name of ['cd16x-r41', 'vgg19-r31', 'vgg19-r41', 'vgg19bn-r41']) assert.match(r.stdout, new RegExp(name));
  assert.match(r.stdout, /present: /);
  assert.match(r.stdout, /weakly/);
  const json = JSON.parse(adain('models', '--json').stdout) as { name: string; files: { localPath: string | null }[] }[];
  assert.ok(json.find((m) => m.name === 'cd16x-r41')!.files.every((f) => f.localPath));
});
