// The studio's engine on onnxruntime-web's WebGPU execution provider, in headless Chromium on
// SwiftShader (a CPU Vulkan, so this runs without a GPU): the image path (the two cd16x models)
// and one webcam frame from Chromium's fake camera must match the wasm provider's result for
// the same input. One page per provider (?ep=webgpu, ?ep=wasm), both on one server; the wasm
// page also runs the image path with every installed model. Small images only: SwiftShader
// runs compute shaders on the CPU (cd16x-r41 at 120x80 takes ~25 s there, a VGG-19 minutes).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import sharp from 'sharp';
import { EVALUATE_SHIM, FAKE_CAMERA_FLAGS, WEBGPU_SWIFTSHADER_FLAGS, chromiumPath, hasChromium, launchChromium } from '../src/web/browser.js';
import { startStudio, type StudioServer } from '../src/web/server.js';

const MODELS_DIR = path.resolve(import.meta.dirname, '../../shared/models');
const EX = (f: string) => path.resolve(import.meta.dirname, '../examples', f);
const skip = !existsSync(MODELS_DIR) ? `../shared/models not found at ${MODELS_DIR}`
  : !hasChromium() ? `no Chromium at ${chromiumPath()} (apt-get install chromium, or set ADAIN_CHROMIUM)` : false;

/** Side of the webcam frame compared. */
const FRAME = 128;
/** Both providers compute in float32; only the order of the sums differs. */
const MIN_PSNR_DB = 40;
const MAX_ABS_LEVELS = 8;
/** The models compared on WebGPU: the default (the page starts on it) and the webcam's real-time one. */
const WEBGPU_MODELS = ['cd16x-r41', 'cd16x-r31'];

let studio: StudioServer;
let browser: Browser;
let gpu: Page;
let cpu: Page;
/** Why the WebGPU tests cannot run here (no adapter), or null. */
let noWebgpu: string | null = null;
const pageErrors: string[] = [];
let files: { content: string; style: string };

// Playwright polls page functions on requestAnimationFrame by default, which never fires in a
// page that is not in front; two pages run here, so every wait polls on a timer instead.
async function openPage(ep: 'webgpu' | 'wasm'): Promise<Page> {
  const page = await browser.newPage();
  await page.addInitScript(EVALUATE_SHIM);
  page.on('pageerror', (e) => pageErrors.push(`${ep}: ${e.message}`));
  await page.goto(`${studio.url}/?ep=${ep}`);
  await page.waitForFunction(() => document.body.dataset.ready !== undefined, null, { timeout: 120_000, polling: 250 });
  const ready = await page.evaluate(() => document.body.dataset.ready);
  assert.equal(ready, 'true', `the ?ep=${ep} page failed to start: ${await page.textContent('#error')}`);
  return page;
}

before(async () => {
  if (skip) return;
  // a small content and style keep SwiftShader's share of the run to seconds
  const dir = mkdtempSync(path.join(tmpdir(), 'adain-webgpu-'));
  files = { content: path.join(dir, 'content.png'), style: path.join(dir, 'style.png') };
  writeFileSync(files.content, await sharp(EX('chelsea.jpg')).resize(120, 80).png().toBuffer());
  writeFileSync(files.style, await sharp(EX('scream.jpg')).resize(96, 96, { fit: 'cover' }).png().toBuffer());
  studio = await startStudio({ port: 0, modelsDir: MODELS_DIR, threads: 1, styleSize: 96 });
  browser = await launchChromium([...FAKE_CAMERA_FLAGS, ...WEBGPU_SWIFTSHADER_FLAGS]);
  const probe = await browser.newPage();
  await probe.goto(`${studio.url}/healthz`); // a secure context (127.0.0.1) without loading the app
  const adapter = await probe.evaluate(async () => {
    const g = (navigator as unknown as { gpu?: { requestAdapter(): Promise<{ info?: { architecture?: string } } | null> } }).gpu;
    if (!g) return null;
    const a = await g.requestAdapter().catch(() => null);
    return a ? a.info?.architecture || 'unknown' : null;
  });
  await probe.close();
  cpu = await openPage('wasm');
  if (adapter === null) { noWebgpu = 'navigator.gpu gives no WebGPU adapter in this Chromium (SwiftShader flags ignored?)'; return; }
  gpu = await openPage('webgpu');
});

after(async () => {
  await browser?.close();
  await studio?.close();
});

function skipWithoutWebgpu(t: TestContext): boolean {
  if (noWebgpu) t.skip(noWebgpu);
  return noWebgpu !== null;
}

/** PSNR (peak 1) and max |a - b| of two arrays on the same scale `peak`. */
function compare(a: ArrayLike<number>, b: ArrayLike<number>, peak: number, clamp = false): { psnr: number; maxAbs: number } {
  assert.equal(a.length, b.length);
  let se = 0, maxAbs = 0;
  for (let i = 0; i < a.length; i++) {
    const x = clamp ? Math.min(Math.max(a[i], 0), peak) : a[i], y = clamp ? Math.min(Math.max(b[i], 0), peak) : b[i];
    const d = Math.abs(x - y);
    se += d * d;
    if (d > maxAbs) maxAbs = d;
  }
  const mse = se / a.length;
  return { psnr: mse === 0 ? Infinity : 10 * Math.log10((peak * peak) / mse), maxAbs };
}

async function canvasRgb(page: Page, selector: string): Promise<{ w: number; h: number; data: number[] }> {
  return page.evaluate((sel) => {
    const c = document.querySelector(sel) as HTMLCanvasElement;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    const rgb: number[] = [];
    for (let i = 0; i < d.length; i += 4) rgb.push(d[i], d[i + 1], d[i + 2]);
    return { w: c.width, h: c.height, data: rgb };
  }, selector);
}

function renderCount(page: Page): Promise<number> {
  return page.getAttribute('#result', 'data-renders').then(Number);
}

/** Selects the image mode's model and waits for a result drawn by it after the `before`th. */
async function renderWith(page: Page, model: string, before?: number): Promise<{ w: number; h: number; data: number[] }> {
  before ??= await renderCount(page);
  if ((await page.inputValue('#model')) !== model) await page.selectOption('#model', model);
  await page.waitForFunction(({ model, before }) => {
    const c = document.querySelector('#result')!;
    return c.getAttribute('data-model') === model && c.getAttribute('data-state') === 'ready' && Number(c.getAttribute('data-renders')) > before;
  }, { model, before }, { timeout: 300_000, polling: 250 });
  return canvasRgb(page, '#result');
}

test('the WebGPU page runs on the webgpu execution provider, the other on wasm', { skip }, async (t) => {
  if (skipWithoutWebgpu(t)) return;
  assert.deepEqual(await gpu.evaluate(() => (window as any).studio.state.rt.executionProviders), ['webgpu', 'wasm']);
  assert.match((await gpu.textContent('#backend')) ?? '', /^WebGPU/);
  // onnxruntime-web sets up its GPUDevice only when a session really runs on the webgpu provider
  const device = await gpu.evaluate(async () => {
    const d = await (window as any).studio.state.rt.ort.env.webgpu.device;
    return !!d && typeof d.createBuffer === 'function';
  });
  assert.equal(device, true, 'onnxruntime-web made no WebGPU device');
  assert.deepEqual(await cpu.evaluate(() => (window as any).studio.state.rt.executionProviders), ['wasm']);
});

function stdDev(a: number[]): number {
  let s = 0, s2 = 0;
  for (const v of a) { s += v; s2 += v * v; }
  return Math.sqrt(s2 / a.length - (s / a.length) ** 2);
}

test('image path on wasm: every installed model renders, cd16x-r31 among them with its ONNX files served', { skip, timeout: 300_000 }, async (t) => {
  const models = (await (await fetch(`${studio.url}/api/models`)).json()) as { models: { name: string; available: boolean; onnx: { encoder: string } }[] };
  const installed = models.models.filter((m) => m.available).map((m) => m.name);
  assert.ok(installed.includes('cd16x-r31') && installed.includes('cd16x-r41'), `installed: ${installed.join(', ')}`);
  const info = await (await fetch(`${studio.url}/models/cd16x-r31/info.json`)).json() as { featureName: string; factor: number };
  assert.deepEqual([info.featureName, info.factor], ['relu3_1', 4]);
  // the first render may be done before setInputFiles returns
  const first = await renderCount(cpu);
  await cpu.setInputFiles('#content-file', files.content);
  await cpu.setInputFiles('#style-file', files.style);
  for (const [i, model] of installed.entries()) {
    const r = await renderWith(cpu, model, i === 0 ? first : undefined);
    assert.deepEqual([r.w, r.h], [120, 80], model);
    assert.ok(stdDev(r.data) > 5, `${model}: the result should not be a flat image`);
    t.diagnostic(`${model}: rendered on wasm`);
  }
  assert.deepEqual(pageErrors, []);
});

test('image path: WebGPU matches wasm (cd16x-r41, cd16x-r31)', { skip, timeout: 900_000 }, async (t) => {
  if (skipWithoutWebgpu(t)) return;
  const first = await renderCount(gpu);
  await gpu.setInputFiles('#content-file', files.content);
  await gpu.setInputFiles('#style-file', files.style);
  for (const [i, model] of WEBGPU_MODELS.entries()) {
    const [a, b] = await Promise.all([renderWith(gpu, model, i === 0 ? first : undefined), renderWith(cpu, model)]);
    assert.deepEqual([a.w, a.h], [120, 80], model);
    assert.deepEqual([b.w, b.h], [120, 80], model);
    const { psnr, maxAbs } = compare(a.data, b.data, 255);
    t.diagnostic(`${model}: WebGPU vs wasm PSNR ${psnr.toFixed(1)} dB, max |diff| ${maxAbs} of 255`);
    assert.ok(psnr >= MIN_PSNR_DB && maxAbs <= MAX_ABS_LEVELS, `${model}: PSNR ${psnr.toFixed(1)} dB, max |diff| ${maxAbs} levels`);
  }
  assert.deepEqual(pageErrors, []);
});

test(`webcam: a fake-camera frame at ${FRAME}x${FRAME} on WebGPU matches wasm on the same frame`, { skip, timeout: 900_000 }, async (t) => {
  if (skipWithoutWebgpu(t)) return;
  await gpu.evaluate((size) => { const w = (window as any).studio.webcam; w.size = size; w.keepFrame = true; }, FRAME);
  await gpu.bringToFront(); // a page behind another may get no video frames composited
  await gpu.click('#tab-webcam');
  await gpu.click('#webcam-toggle');
  await gpu.waitForFunction(() => Number(document.querySelector('#webcam-output')?.getAttribute('data-frames')) >= 2, null, { timeout: 600_000, polling: 250 });
  await gpu.click('#webcam-toggle');
  await gpu.waitForFunction(() => !(window as any).studio.webcam.running, null, { polling: 250 });
  const kept = await gpu.evaluate(() => {
    const k = (window as any).studio.webcam.kept;
    return { size: k.size as number, model: k.model as string, input: Array.from(k.input as Float32Array), output: Array.from(k.output as Float32Array) };
  });
  assert.equal(kept.size, FRAME);
  assert.equal(kept.model, 'cd16x-r31', 'the webcam defaults to the real-time model');
  const drawn = await canvasRgb(gpu, '#webcam-output');
  assert.deepEqual([drawn.w, drawn.h], [FRAME, FRAME]);
  const wasm = await cpu.evaluate(({ input, size }) => (window as any).studio.stylizeWebcamFrame(input, size), { input: kept.input, size: FRAME }) as { model: string; w: number; h: number; output: number[] };
  assert.equal(wasm.model, 'cd16x-r31');
  assert.deepEqual([wasm.w, wasm.h], [FRAME, FRAME]);
  const { psnr, maxAbs } = compare(kept.output, wasm.output, 1, true);
  t.diagnostic(`webcam ${FRAME}x${FRAME} cd16x-r31: WebGPU vs wasm PSNR ${psnr.toFixed(1)} dB, max |diff| ${maxAbs.toExponential(1)} (in [0, 1])`);
  assert.ok(psnr >= MIN_PSNR_DB && 255 * maxAbs <= MAX_ABS_LEVELS, `PSNR ${psnr.toFixed(1)} dB, max |diff| ${(255 * maxAbs).toFixed(2)} levels`);
  assert.deepEqual(pageErrors, []);
});
