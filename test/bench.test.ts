import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { LayerShape } from '../src/bench/architecture.js';
import { convFlops, stylisationFlops } from '../src/bench/flops.js';
import { REFERENCE_FLOPS } from '../src/bench/reference-conv.js';
import { benchCommand } from '../src/cli/bench-command.js';

const MODELS_DIR = path.resolve(import.meta.dirname, '../../shared/models');
const skip = existsSync(MODELS_DIR) ? false : `../shared/models not found at ${MODELS_DIR}`;

test('conv FLOPs of a small encoder/decoder, counted by hand', () => {
  const encoder: LayerShape[] = [
    { kind: 'conv', cin: 3, cout: 4, k: 1, relu: false },
    { kind: 'conv', cin: 4, cout: 8, k: 3, relu: true },
    { kind: 'pool' },
    { kind: 'conv', cin: 8, cout: 16, k: 3, relu: true },
  ];
  const decoder: LayerShape[] = [
    { kind: 'conv', cin: 16, cout: 8, k: 3, relu: true },
    { kind: 'up' },
    { kind: 'conv', cin: 8, cout: 3, k: 3, relu: false },
  ];
  // Encoder on 8x8: 2*3*4*1*64 = 1536; 2*4*8*9*64 = 36864; after the pool 4x4: 2*8*16*9*16 = 36864.
  assert.equal(convFlops(encoder, 8, 8), 1536 + 36864 + 36864);
  // Decoder from 4x4: 2*16*8*9*16 = 36864; upsampled to 8x8: 2*8*3*9*64 = 27648.
  assert.equal(convFlops(decoder, 4, 4), 36864 + 27648);
  // Content and style through the encoder, then the decoder from the 4x4 features.
  assert.equal(stylisationFlops({ encoder, decoder }, 8), 2 * 75264 + 64512);
  assert.equal(REFERENCE_FLOPS, 2 * 128 * 128 * 9 * 128 * 128);
});

test('adain bench --json on cd16x-r41 at 64x64 gives uniform rows', { skip }, async () => {
  const out: string[] = [], err: string[] = [];
  const cmd = benchCommand({ stdout: (t) => out.push(t), stderr: (t) => err.push(t) });
  await cmd.parseAsync(['--json', '--runs', '1', '--sizes', '64', '--no-torch', '--threads', '2',
    '--model', 'cd16x-r41', '--models-dir', MODELS_DIR], { from: 'user' });
  assert.match(err.join(''), /of_peak reference: onnxruntime/);
  const rows = JSON.parse(out.join('')) as Record<string, unknown>[];
  assert.equal(rows.length, 1);
  const [row] = rows;
  assert.deepEqual(Object.keys(row).sort(), ['frame_ms', 'frame_ratio', 'gflops', 'model', 'ms', 'of_peak', 'precision', 'ratio', 'size', 'torch_frame_ms', 'torch_ms']);
  assert.equal(row.model, 'cd16x-r41');
  assert.equal(row.size, 64);
  assert.equal(row.torch_ms, null);
  assert.equal(row.ratio, null);
  assert.deepEqual([row.torch_frame_ms, row.frame_ratio], [null, null]);
  for (const k of ['ms', 'frame_ms', 'gflops', 'of_peak'] as const) {
    assert.ok(typeof row[k] === 'number' && row[k] > 0, `${k} = ${row[k]}`);
  }
});
