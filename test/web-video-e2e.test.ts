// A video as the studio's content, in a real browser (Debian's Chromium, headless, through
// playwright-core as in web-e2e.test.ts): a tiny clip made by the project's synthetic renderer
// is chosen through the page's file input and stylised on the server; the progress bar ends at
// frames done == total, the <video> element plays the result at the clip's size and length, and
// the download link saves the same clip. Then a longer clip is cancelled from the page mid-way
// and the server shows the job cancelled and its worker free.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import sharp from 'sharp';
import { probeVideo } from '../src/video/probe.js';
import { renderMotion, writeClip } from '../src/video/synthetic.js';
import { EVALUATE_SHIM, chromiumPath, hasChromium, launchChromium } from '../src/web/browser.js';
import { startStudio, type StudioServer } from '../src/web/server.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const MODELS_DIR = path.resolve(ROOT, '../shared/models');
const has = (tool: string) => spawnSync(tool, ['-version'], { stdio: 'ignore' }).status === 0;
const skip = !has('ffmpeg') || !has('ffprobe') ? 'ffmpeg/ffprobe not installed (apt-get install ffmpeg)'
  : !existsSync(MODELS_DIR) ? `../shared/models not found at ${MODELS_DIR}`
  : !hasChromium() ? `no Chromium at ${chromiumPath()} (apt-get install chromium, or set ADAIN_CHROMIUM)` : false;

const W = 64, H = 48, FRAMES = 6, FPS = 12;
// long enough that the page's first progress poll (500 ms) comes well before the end
const LONG = { w: 320, h: 240, frames: 60 };

let tmp: string;
let serverTmp: string;
let studio: StudioServer;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];
/** The ?job= ids of the page's POSTs, in order: the page makes them up, the test needs them to ask the server. */
const jobIds: string[] = [];

const file = (name: string) => path.join(tmp, name);

/**
 * A slow progress answer, made on purpose: while `window.holdPolls` is set, the body of a
 * GET /api/video-jobs answer that says the job is still on its way is handed to the page only
 * once the video view has left its running state (cancelled or done). A page that checks
 * whether the job is still its own before reading the body, not after, then shows that stale
 * progress over the end state. Counted in `window.heldPolls`.
 */
const HOLD_POLLS = `(() => {
  const json = Response.prototype.json;
  window.heldPolls = 0;
  Response.prototype.json = async function () {
    const body = await json.call(this);
    if (window.holdPolls && this.url.includes('/api/video-jobs/') && body.state !== 'done') {
      window.heldPolls++;
      while (document.querySelector('#video-view').dataset.state === 'running') await new Promise((r) => setTimeout(r, 20));
    }
    return body;
  };
})();`;

interface Health { queue: { running: number; waiting: number }; cancelled: number }
interface JobStatus { state: string; frames_done: number; frames_total: number }

async function getJson<T>(p: string): Promise<T> {
  const res = await fetch(`${studio.url}${p}`);
  assert.equal(res.status, 200, `${p}: ${res.status}`);
  return (await res.json()) as T;
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const t0 = performance.now();
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    assert.ok(performance.now() - t0 < ms, `${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  if (skip) return;
  tmp = mkdtempSync(path.join(tmpdir(), 'adain-web-video-e2e-'));
  // an empty cache: nothing this machine has cached may change what the server does
  process.env.ADAIN_CACHE_DIR = file('cache');
  serverTmp = file('server-tmp');
  mkdirSync(serverTmp);
  const { data, info } = await sharp(path.join(ROOT, 'examples', 'chelsea.jpg')).resize({ width: 240 }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const photo = { width: info.width, height: info.height, data };
  await writeClip(renderMotion(photo, { frames: FRAMES, width: W, height: H, pan: 0.1, zoom: 1.05 }), W, H, FPS, file('clip.mp4'));
  await writeClip(renderMotion(photo, { frames: LONG.frames, width: LONG.w, height: LONG.h, pan: 0.1, zoom: 1.05 }), LONG.w, LONG.h, FPS, file('long.mp4'));
  await sharp(path.join(ROOT, 'examples', 'scream.jpg')).resize(96).jpeg().toFile(file('style.jpg'));
  // a small style size: the page sends none, and the server's default (512) costs seconds here
  studio = await startStudio({ port: 0, modelsDir: MODELS_DIR, threads: 1, styleSize: 64, tempDir: serverTmp });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1100, height: 800 }, acceptDownloads: true });
  await page.addInitScript(EVALUATE_SHIM);
  await page.addInitScript(HOLD_POLLS);
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('request', (r) => {
    const m = /\/api\/stylize-video\?job=([\w-]+)/.exec(r.url());
    if (m && r.method() === 'POST') jobIds.push(m[1]);
  });
  // one wasm thread: the page's own networks are not under test, and the machine is shared
  await page.goto(`${studio.url}/?backend=wasm&threads=1`);
  await page.waitForFunction(() => document.body.dataset.ready !== undefined, null, { timeout: 30_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.ready), 'true', `page errors: ${pageErrors.join('; ')}`);
});

after(async () => {
  await browser?.close();
  await studio?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('a clip as content: progress reaches frames total, the <video> plays the result, the download is the clip', { skip, timeout: 30_000 }, async () => {
  await page.setInputFiles('#content-file', file('clip.mp4'));
  await page.waitForFunction(() => document.body.dataset.content === 'video');
  assert.equal(await page.isVisible('#video-view'), true);
  assert.match((await page.textContent('#content-name')) ?? '', /^clip\.mp4 \(video, .*\): stylised on the server$/);
  await page.setInputFiles('#style-file', file('style.jpg'));
  await page.waitForFunction(() => document.querySelectorAll('#style-list .style-item').length === 1);

  // every progress update the page shows, recorded in the page: a tiny clip may pass through
  // "running" between two polls, so the test looks at the whole history afterwards
  await page.evaluate(() => {
    const bar = document.querySelector('#video-progress') as HTMLProgressElement;
    const seen: string[] = [];
    (window as unknown as { progressSeen: string[] }).progressSeen = seen;
    new MutationObserver(() => {
      seen.push(`${bar.dataset.done ?? ''}/${bar.dataset.total ?? ''} ${document.querySelector('#video-status')!.textContent}`);
    }).observe(document.querySelector('#video-view')!, { subtree: true, attributes: true, childList: true, characterData: true });
  });
  await page.click('#video-run');
  await page.waitForFunction(() => document.querySelector('#video-view')?.getAttribute('data-state') !== 'running', null, { timeout: 25_000 });
  assert.equal(await page.getAttribute('#video-view', 'data-state'), 'done', `error: ${await page.textContent('#error')}`);

  const bar = await page.evaluate(() => {
    const p = document.querySelector('#video-progress') as HTMLProgressElement;
    return { done: p.dataset.done, total: p.dataset.total, value: p.value, max: p.max, hidden: p.hidden };
  });
  assert.deepEqual(bar, { done: String(FRAMES), total: String(FRAMES), value: 1, max: 1, hidden: false });
  assert.match((await page.textContent('#video-status')) ?? '', new RegExp(`^${FRAMES} frames, ${W}x${H}, stylised on the server in \\d+\\.\\d s\\.$`));
  const seen = await page.evaluate(() => (window as unknown as { progressSeen: string[] }).progressSeen);
  for (const s of seen) {
    const m = /^Frame (\d+)\/(\d+) /.exec(s.slice(s.indexOf(' ') + 1));
    if (m) assert.ok(Number(m[2]) === FRAMES && Number(m[1]) <= FRAMES, `a progress update past the clip: ${s}`);
  }
  // the page's last word is the result, not a late poll's progress
  assert.match(seen.at(-1) ?? '', new RegExp(`^${FRAMES}/${FRAMES} ${FRAMES} frames`), seen.join('\n'));

  // the result plays: Chromium decodes its metadata and a first frame
  const media = await until('the <video> to load the result', 10_000, () => page.evaluate(() => {
    const v = document.querySelector('#video-result') as HTMLVideoElement;
    return v.readyState >= 2 ? { w: v.videoWidth, h: v.videoHeight, duration: v.duration, hidden: v.hidden, src: v.src, error: v.error?.message } : undefined;
  }));
  assert.equal(media.error, undefined);
  assert.deepEqual([media.w, media.h, media.hidden], [W, H, false]);
  assert.ok(Math.abs(media.duration - FRAMES / FPS) < 0.1, `duration ${media.duration} s, expected about ${FRAMES / FPS} s`);
  assert.match(media.src, /^blob:/);

  const link = await page.evaluate(() => {
    const a = document.querySelector('#video-download') as HTMLAnchorElement;
    return { hidden: a.hidden, href: a.href, download: a.download, text: a.textContent };
  });
  assert.equal(link.hidden, false);
  assert.equal(link.href, media.src, 'the link should save what the player shows');
  assert.equal(link.download, 'clip_stylized.mp4');
  assert.match(link.text ?? '', /^Download clip_stylized\.mp4 \(\d+ kB\)$/);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#video-download')]);
  assert.equal(download.suggestedFilename(), 'clip_stylized.mp4');
  const saved = file('saved.mp4');
  await download.saveAs(saved);
  const info = await probeVideo(saved);
  assert.deepEqual([info.width, info.height, info.frames, info.fpsNum / info.fpsDen], [W, H, FRAMES, FPS]);

  const job = await getJson<JobStatus>(`/api/video-jobs/${jobIds.at(-1)}`);
  assert.deepEqual([job.state, job.frames_done, job.frames_total], ['done', FRAMES, FRAMES]);
  assert.equal(await page.isVisible('#error'), false, `error: ${await page.textContent('#error')}`);
  assert.deepEqual(pageErrors, []);
});

test('Cancel mid-clip: the page says so and the server cancels the job and frees its worker', { skip, timeout: 30_000 }, async () => {
  const before = await getJson<Health>('/healthz');
  const posts = jobIds.length;
  await page.setInputFiles('#content-file', file('long.mp4'));
  await page.waitForFunction(() => document.querySelector('#video-download')?.hasAttribute('hidden'));
  await page.click('#video-run');
  assert.notEqual(await page.getAttribute('#video-progress', 'data-total'), String(FRAMES), 'the bar still counts the last clip\'s frames');
  // a frame done, as the page shows it: the job is running on the server
  await page.waitForFunction(() => Number(document.querySelector('#video-progress')?.getAttribute('data-done')) >= 1
    && document.querySelector('#video-status')?.textContent?.startsWith('Frame '), null, { timeout: 20_000 });
  assert.equal(await page.getAttribute('#video-progress', 'data-total'), String(LONG.frames));
  assert.equal(jobIds.length, posts + 1);
  const id = jobIds.at(-1)!;
  // the next progress answer comes in while the job runs and is read only after Cancel
  await page.evaluate(() => { (window as unknown as { holdPolls: boolean }).holdPolls = true; });
  await page.waitForFunction(() => (window as unknown as { heldPolls: number }).heldPolls >= 1, null, { timeout: 5_000 });
  assert.equal(await page.isVisible('#video-cancel'), true);
  await page.click('#video-cancel');
  const clicked = performance.now();
  assert.equal(await page.textContent('#video-status'), 'Cancelled.');
  assert.equal(await page.isVisible('#video-cancel'), false);
  assert.equal(await page.isEnabled('#video-run'), true);

  const health = await until('the worker to be free after Cancel', 10_000, async () => {
    const h = await getJson<Health>('/healthz');
    return h.queue.running === 0 ? h : undefined;
  });
  const freedS = (performance.now() - clicked) / 1000;
  assert.equal(health.cancelled, before.cancelled + 1);
  const job = await getJson<JobStatus>(`/api/video-jobs/${id}`);
  assert.equal(job.state, 'cancelled');
  assert.ok(job.frames_done < LONG.frames, JSON.stringify(job));
  await until('the job\'s temporary files to go', 10_000, async () => (readdirSync(serverTmp).length === 0 ? true : undefined));

  // the page stays cancelled: the held progress answer (read by now) and later polls change nothing
  await new Promise((r) => setTimeout(r, 700));
  assert.equal(await page.textContent('#video-status'), 'Cancelled.');
  assert.equal(await page.isVisible('#video-progress'), false);
  assert.equal(await page.isVisible('#error'), false, `error: ${await page.textContent('#error')}`);
  assert.deepEqual(pageErrors, []);
  assert.ok(freedS < 6, `the worker was busy for ${freedS.toFixed(1)} s after Cancel`);
});
