// Choosing the onnxruntime execution provider: validation, defaults, the errors a missing
// provider gives (in the API and through the built CLI), and WebGPU against the CPU on
// SwiftShader (Debian's chromium ships it: a Vulkan driver on the CPU, so no GPU is needed).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { UserError } from '../src/errors.js';
import { conv, Tape, type TapeOptions } from '../src/nn/backward.js';
import { Graph } from '../src/onnx/graph.js';
import {
  availableExecutionProviders, checkExecutionProvider, createSession, defaultExecutionProvider, floatTensor, setDefaultExecutionProvider,
} from '../src/runtime/session.js';
import { cliSkip, example, MODELS_DIR, ROOT, runAdain, type CliResult } from './helpers/cli.js';
import type { EpComparison } from './helpers/ep-compare.js';

const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
const swiftshaderSkip = cliSkip || (existsSync(SWIFTSHADER) ? false : `${SWIFTSHADER} not found (install Debian's chromium, which ships SwiftShader)`);
const CUDA_LIBS = path.join(ROOT, 'node_modules/onnxruntime-node/bin/napi-v6', process.platform, process.arch, 'libonnxruntime_providers_cuda.so');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'adain-ep-'));

function relu(): Uint8Array {
  const g = new Graph('relu');
  g.output(g.op('Relu', [g.input('x', [4])]), 'y', [4]);
  return g.toModel(13);
}

/** Exit 2 and exactly one line from adain itself, the last, naming `mention` (native libraries may print their own warnings first). */
function assertOneLineError(r: CliResult, ...mention: string[]): void {
  assert.equal(r.code, 2, `exit code ${r.code}; stderr: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  const ours = lines.filter((l) => l.startsWith('adain:'));
  assert.equal(ours.length, 1, `one adain line expected, got: ${r.stderr}`);
  assert.equal(lines.at(-1), ours[0], `the error should be the last line: ${r.stderr}`);
  for (const m of mention) assert.ok(ours[0].includes(m), `'${ours[0]}' should mention ${m}`);
}

function stylize(ep: string, env: NodeJS.ProcessEnv = {}): CliResult {
  return runAdain(['stylize', '-c', example('chelsea.jpg'), '-s', example('scream.jpg'), '-o', path.join(tmp, 'out.png'), '--style-size', '64', '--max-size', '64', '--execution-provider', ep],
    path.join(tmp, 'cache'), { env });
}

test('profileFilePrefix: the session writes onnxruntime\'s per-node profile there, with a kernel time per node and run', async () => {
  const dir = mkdtempSync(path.join(tmp, 'profile-'));
  const profiled = await createSession(relu(), { threads: 1, profileFilePrefix: path.join(dir, 'relu') });
  for (let i = 0; i < 3; i++) await profiled.run({ x: floatTensor(new Float32Array([-1, 0, 1, 2]), [4]) });
  profiled.endProfiling();
  await profiled.release();
  const files = readdirSync(dir);
  assert.equal(files.length, 1, `one profile expected: ${files.join(', ')}`);
  assert.ok(files[0].startsWith('relu'), files[0]);
  const events = JSON.parse(readFileSync(path.join(dir, files[0]), 'utf8')) as { cat: string; name: string; args?: { op_name?: string } }[];
  const kernels = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
  assert.equal(kernels.length, 3);
  assert.ok(kernels.every((e) => e.args?.op_name === 'Relu'));
});

test('provider names are checked against this build: case-insensitive, unknown and unavailable ones refused naming the available', () => {
  const available = availableExecutionProviders();
  assert.ok(available.includes('cpu'), available.join());
  assert.equal(checkExecutionProvider('CPU'), 'cpu');
  assert.throws(() => checkExecutionProvider('cpux'), (e: unknown) => e instanceof UserError && /unknown execution provider 'cpux'; available: cpu/.test(e.message));
  const absent = ['coreml', 'dml', 'qnn'].find((n) => !available.includes(n));
  if (absent) {
    assert.throws(() => checkExecutionProvider(absent), (e: unknown) => e instanceof UserError && e.message.includes('not in this onnxruntime-node build') && e.message.includes(available.join(', ')));
  }
});

test('the default provider: setDefaultExecutionProvider, else $ADAIN_EP, else cpu', async () => {
  const saved = process.env.ADAIN_EP;
  try {
    delete process.env.ADAIN_EP;
    setDefaultExecutionProvider(undefined);
    assert.equal(defaultExecutionProvider(), 'cpu');
    process.env.ADAIN_EP = 'nope';
    assert.throws(() => defaultExecutionProvider(), /execution provider 'nope' \(from \$ADAIN_EP\)/);
    await assert.rejects(createSession(relu()), UserError);
    process.env.ADAIN_EP = 'CPU';
    assert.equal(defaultExecutionProvider(), 'cpu');
    setDefaultExecutionProvider('cpu');
    process.env.ADAIN_EP = 'nope';
    assert.equal(defaultExecutionProvider(), 'cpu', 'an explicit default wins over $ADAIN_EP');
    // A caller's own choice wins over both, and sessions on it work.
    const s = await createSession(relu(), { executionProvider: 'cpu', threads: 1 });
    const y = await s.run({ x: floatTensor(new Float32Array([-1, 2, -3, 4]), [4]) });
    assert.deepEqual([...(y.y.data as Float32Array)], [0, 2, 0, 4]);
    await s.release();
  } finally {
    setDefaultExecutionProvider(undefined);
    if (saved === undefined) delete process.env.ADAIN_EP; else process.env.ADAIN_EP = saved;
  }
});

test('a CUDA session without onnxruntime-node\'s CUDA libraries is a UserError saying how to install them', { skip: existsSync(CUDA_LIBS) ? 'the CUDA provider libraries are installed here' : !availableExecutionProviders().includes('cuda') && 'no cuda in this build' }, async () => {
  await assert.rejects(createSession(relu(), { executionProvider: 'cuda' }),
    (e: unknown) => e instanceof UserError && e.message.includes('npm install-scripts approve onnxruntime-node && npm rebuild onnxruntime-node') && !e.message.includes('\n'));
});

test('CLI: --execution-provider on every command that runs networks, and only there', { skip: cliSkip }, () => {
  for (const cmd of [['stylize'], ['serve'], ['eval'], ['train'], ['optimize'], ['export'], ['bench'], ['bench', 'train'], ['bench', 'export'], ['bench', 'video']]) {
    const r = runAdain([...cmd, '--help'], path.join(tmp, 'cache'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /--execution-provider <name>/, `adain ${cmd.join(' ')} --help`);
  }
  assert.doesNotMatch(runAdain(['models', '--help'], path.join(tmp, 'cache')).stdout, /--execution-provider/);
});

test('CLI: an unknown or unavailable provider, from the flag or $ADAIN_EP, exits 2 with one line naming the available ones', { skip: cliSkip }, () => {
  assertOneLineError(stylize('gpu'), "unknown execution provider 'gpu'", 'available: cpu');
  const r = runAdain(['stylize', '-c', example('chelsea.jpg'), '-s', example('scream.jpg'), '-o', path.join(tmp, 'env.png')], path.join(tmp, 'cache'), { env: { ADAIN_EP: 'gpu' } });
  assertOneLineError(r, "'gpu' (from $ADAIN_EP)", 'available: cpu');
  assert.ok(!existsSync(path.join(tmp, 'env.png')));
  if (!existsSync(CUDA_LIBS) && availableExecutionProviders().includes('cuda')) {
    assertOneLineError(stylize('cuda'), 'npm install-scripts approve onnxruntime-node');
  }
});

test('CLI: webgpu without a Vulkan adapter exits 2 naming the fix', { skip: cliSkip }, () => {
  // A Vulkan ICD file that does not exist: the loader finds no driver, as on a machine without a GPU.
  assertOneLineError(stylize('webgpu', { VK_ICD_FILENAMES: path.join(tmp, 'no-such-icd.json') }), 'Failed to get a WebGPU adapter', 'VK_ICD_FILENAMES=');
});

test("the WebGPU-safe conv weight gradient ('batched' unfold) equals the CPU one ('grouped'), both unfold sides", async () => {
  for (const [ci, co] of [[4, 8], [8, 4]]) {
    const n = 2, h = 7, k = 3;
    const grads: Float32Array[] = [];
    for (const unfold of ['grouped', 'batched'] satisfies TapeOptions['unfold'][]) {
      const g = new Graph('conv_grad');
      const t = new Tape(g, { unfold });
      const x = t.input('x', [n, ci, h, h], true);
      const y = conv(t, x, t.input('w', [co, ci, k, k], true), t.input('b', [co], true));
      const grad = t.backward(y, g.input('dy', [n, co, h - k + 1, h - k + 1]));
      g.output(grad.get('w')!, 'dw');
      const s = await createSession(g.toModel(13), { executionProvider: 'cpu', threads: 1 });
      const noise = (len: number, seed: number) => Float32Array.from({ length: len }, (_, i) => Math.sin(i * 12.9898 + seed) * 0.5);
      const out = await s.run({
        x: floatTensor(noise(n * ci * h * h, 1), [n, ci, h, h]), w: floatTensor(noise(co * ci * k * k, 2), [co, ci, k, k]),
        b: floatTensor(noise(co, 3), [co]), dy: floatTensor(noise(n * co * (h - k + 1) ** 2, 4), [n, co, h - k + 1, h - k + 1]),
      });
      grads.push(new Float32Array(out.dw.data as Float32Array));
      await s.release();
    }
    assert.ok(grads[0].some((v) => v !== 0));
    let worst = 0;
    for (let i = 0; i < grads[0].length; i++) worst = Math.max(worst, Math.abs(grads[0][i] - grads[1][i]));
    assert.ok(worst < 1e-5, `${ci}->${co}: max diff ${worst}`);
  }
});

/** Runs test/helpers/ep-compare.ts in a child whose Vulkan is SwiftShader. */
function compare(what: 'stylize' | 'train', size: number): EpComparison {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/helpers/ep-compare.ts'), what, 'webgpu', String(size)], {
    cwd: ROOT, encoding: 'utf8', timeout: 300_000,
    env: { ...process.env, VK_ICD_FILENAMES: SWIFTSHADER, ADAIN_MODELS_DIR: MODELS_DIR },
  });
  assert.equal(r.status, 0, `ep-compare ${what}: ${r.stderr}`);
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(line) as EpComparison;
}

test('webgpu (SwiftShader) stylises a 32x32 image like cpu', { skip: swiftshaderSkip, timeout: 300_000 }, () => {
  const c = compare('stylize', 32);
  const d = c.diffs.image;
  assert.ok(d.maxAbs > 0.05, `a blank image proves nothing: max ${d.maxAbs}`);
  assert.ok(d.maxAbsDiff < 2e-2, `max |cpu - webgpu| = ${d.maxAbsDiff}`);
});

test('webgpu (SwiftShader) computes one training step\'s losses and every gradient like cpu', { skip: swiftshaderSkip, timeout: 300_000 }, () => {
  const c = compare('train', 16);
  assert.ok(Object.keys(c.diffs).filter((k) => k.startsWith('grad:')).length >= 18, Object.keys(c.diffs).join());
  for (const [name, d] of Object.entries(c.diffs)) {
    // Relative to the largest value: gradients here reach ~1e3, losses ~1e2.
    assert.ok(d.maxAbs > 0, `${name} is all zero`);
    assert.ok(d.maxAbsDiff <= 1e-3 * d.maxAbs, `${name}: max |cpu - webgpu| = ${d.maxAbsDiff}, max |cpu| = ${d.maxAbs}`);
  }
});
