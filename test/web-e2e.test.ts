// The studio in a real browser: Debian's Chromium, headless, driven by playwright-core.
// Uploads two images and checks the stylised result (size, alpha slider changes it, the PNG
// download is full size); then webcam mode with Chromium's fake camera shows frames and an
// FPS above zero without sending anything to the server. Screenshots go to a temp folder
// ($ADAIN_E2E_SHOTS to choose it) for a look.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import sharp from 'sharp';
import { EVALUATE_SHIM, FAKE_CAMERA_FLAGS, chromiumPath, hasChromium, launchChromium } from '../src/web/browser.js';
import { startStudio, type StudioServer } from '../src/web/server.js';

const MODELS_DIR = path.resolve(import.meta.dirname, '../../shared/models');
const EX = (f: string) => path.resolve(import.meta.dirname, '../examples', f);
const skip = !existsSync(MODELS_DIR) ? `../shared/models not found at ${MODELS_DIR}`
  : !hasChromium() ? `no Chromium at ${chromiumPath()} (apt-get install chromium, or set ADAIN_CHROMIUM)` : false;

let studio: StudioServer;
let browser: Browser;
let page: Page;
let shots: string;
const posts: string[] = [];
const pageErrors: string[] = [];

before(async () => {
  if (skip) return;
  shots = process.env.ADAIN_E2E_SHOTS ?? mkdtempSync(path.join(tmpdir(), 'adain-e2e-'));
  mkdirSync(shots, { recursive: true });
  studio = await startStudio({ port: 0, modelsDir: MODELS_DIR, threads: 2 });
  browser = await launchChromium(FAKE_CAMERA_FLAGS);
  page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  await page.addInitScript(EVALUATE_SHIM);
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('request', (r) => { if (r.method() !== 'GET' && r.method() !== 'HEAD') posts.push(`${r.method()} ${r.url()}`); });
  await page.goto(`${studio.url}/`);
  await page.waitForFunction(() => document.body.dataset.ready !== undefined, null, { timeout: 30_000 });
});

after(async () => {
  await browser?.close();
  await studio?.close();
});

/** The result canvas's pixels as RGBA bytes. */
async function canvasPixels(selector: string): Promise<{ w: number; h: number; data: number[] }> {
  return page.evaluate((sel) => {
    const c = document.querySelector(sel) as HTMLCanvasElement;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    return { w: c.width, h: c.height, data: Array.from(d) };
  }, selector);
}

function meanAbsDiff(a: number[], b: number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

function stdDev(a: number[]): number {
  let s = 0, s2 = 0, n = 0;
  for (let i = 0; i < a.length; i += 4) for (let c = 0; c < 3; c++) { s += a[i + c]; s2 += a[i + c] ** 2; n++; }
  return Math.sqrt(s2 / n - (s / n) ** 2);
}

test('the page loads cross-origin isolated with wasm threads', { skip }, async () => {
  assert.equal(await page.evaluate(() => document.body.dataset.ready), 'true', `page errors: ${pageErrors.join('; ')}`);
  assert.equal(await page.evaluate(() => crossOriginIsolated), true);
  const backend = await page.textContent('#backend');
  assert.match(backend ?? '', /wasm SIMD · \d+ threads?|WebGPU/);
  assert.ok((await page.locator('.gallery-item').count()) >= 5);
});

test('upload content and style: the result has the content size; the alpha slider changes it; the download is full size', { skip, timeout: 90_000 }, async () => {
  await page.setInputFiles('#content-file', EX('chelsea.jpg')); // 451x300
  await page.setInputFiles('#style-file', EX('scream.jpg'));
  await page.waitForFunction(() => Number(document.querySelector('#result')?.getAttribute('data-renders')) >= 1, null, { timeout: 60_000 });
  const first = await canvasPixels('#result');
  assert.deepEqual([first.w, first.h], [451, 300]);
  assert.ok(stdDev(first.data) > 10, 'the result should not be a flat image');
  await page.screenshot({ path: path.join(shots, 'image-alpha-1.png') });

  // move the slider with the keyboard, as a user would: 1.00 -> 0.30 in 14 steps of 0.05
  await page.focus('#alpha');
  for (let i = 0; i < 14; i++) await page.keyboard.press('ArrowLeft');
  assert.equal(await page.inputValue('#alpha'), '0.3');
  await page.waitForFunction(() => {
    const c = document.querySelector('#result')!;
    return c.getAttribute('data-alpha') === '0.3' && c.getAttribute('data-state') === 'ready';
  }, null, { timeout: 60_000 });
  const second = await canvasPixels('#result');
  assert.deepEqual([second.w, second.h], [451, 300]);
  const diff = meanAbsDiff(first.data, second.data);
  assert.ok(diff > 3, `alpha 0.3 should look different from alpha 1 (mean |diff| ${diff.toFixed(2)} levels)`);
  await page.screenshot({ path: path.join(shots, 'image-alpha-0.3.png') });

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  const file = path.join(shots, download.suggestedFilename());
  await download.saveAs(file);
  const meta = await sharp(file).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['png', 451, 300]);
  assert.equal(download.suggestedFilename(), 'chelsea_stylized.png');
});

test('webcam mode: fake camera frames are stylised in the page, the FPS shows, nothing is posted', { skip, timeout: 90_000 }, async (t) => {
  posts.length = 0;
  await page.click('#tab-webcam');
  await page.click('#webcam-toggle');
  await page.waitForFunction(() => Number(document.querySelector('#webcam-output')?.getAttribute('data-frames')) >= 3, null, { timeout: 60_000 });
  const fps = Number(await page.getAttribute('#fps', 'data-fps'));
  assert.ok(fps > 0, `FPS ${fps}`);
  assert.match((await page.textContent('#fps')) ?? '', /^\d+\.\d FPS$/);
  const frame = await canvasPixels('#webcam-output');
  assert.deepEqual([frame.w, frame.h], [256, 256]);
  assert.ok(stdDev(frame.data) > 5, 'the webcam output should not be a flat image');
  await page.screenshot({ path: path.join(shots, 'webcam.png') });
  await page.click('#webcam-toggle');
  assert.deepEqual(posts, [], 'webcam mode must not send anything to the server');
  assert.deepEqual(pageErrors, []);
  t.diagnostic(`screenshots in ${shots}`);
});
