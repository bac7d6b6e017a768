import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { UserError } from '../src/errors.js';
import { Adam } from '../src/train/adam.js';
import { heInit, heStd, mulberry32, normalSampler } from '../src/train/init.js';
import { buildSchedule, inverseDecay, parseLrSchedule, stepDecay } from '../src/train/schedule.js';

// Written by scripts/fixtures/adam.py (torch.optim.Adam, 20 steps, per-step gradients and lr).
interface Case {
  name: string;
  weightDecay: number;
  init: Record<string, { shape: number[]; values: number[] }>;
  steps: { lr: number; grads: Record<string, number[]>; params: Record<string, number[]> }[];
  final: Record<string, { m: number[]; v: number[] }>;
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/adam/adam.json', import.meta.url), 'utf8')) as { cases: Case[] };

function params(c: Case): Map<string, Float32Array> {
  return new Map(Object.entries(c.init).map(([k, v]) => [k, Float32Array.from(v.values)]));
}
function grads(step: Case['steps'][number]): Map<string, Float32Array> {
  return new Map(Object.entries(step.grads).map(([k, v]) => [k, Float32Array.from(v)]));
}
function assertClose(actual: Float32Array, expected: number[], what: string, rel = 1e-6): void {
  assert.equal(actual.length, expected.length, what);
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    assert.ok(d <= rel * Math.abs(expected[i]) + 1e-12, `${what}[${i}]: ${actual[i]} vs torch ${expected[i]}`);
  }
}

describe('Adam against torch.optim.Adam', () => {
  for (const c of fixture.cases) {
    test(`${c.name}: 20 steps with changing lr match within 1e-6 relative`, () => {
      const p = params(c);
      const opt = new Adam(p, { weightDecay: c.weightDecay });
      c.steps.forEach((s, i) => {
        opt.step(grads(s), s.lr);
        for (const [k, v] of Object.entries(s.params)) assertClose(p.get(k)!, v, `${c.name} step ${i + 1} ${k}`);
      });
      const st = opt.state();
      assert.equal(st.step, 20);
      for (const [k, { m, v }] of Object.entries(c.final)) {
        assertClose(st.m.get(k)!, m, `${k} m`);
        assertClose(st.v.get(k)!, v, `${k} v`);
      }
    });
  }

  test('state()/load() resumes exactly', () => {
    const c = fixture.cases[1];
    const p = params(c);
    const opt = new Adam(p, { weightDecay: c.weightDecay });
    c.steps.slice(0, 10).forEach((s) => opt.step(grads(s), s.lr));
    const saved = opt.state();
    const copy = new Map([...p].map(([k, v]) => [k, v.slice()]));
    const resumed = new Adam(copy, { weightDecay: c.weightDecay });
    resumed.load(saved);
    assert.equal(resumed.stepCount, 10);
    c.steps.slice(10).forEach((s) => {
      opt.step(grads(s), s.lr);
      resumed.step(grads(s), s.lr);
    });
    for (const [k, v] of p) assert.deepEqual(copy.get(k), v, k); // bit-identical
    saved.m.get('dec.bias')![0] = 123; // state() is a copy
    assert.notEqual(opt.state().m.get('dec.bias')![0], 123);
  });

  test('bad gradients and mismatched state are refused without changing anything', () => {
    const p = new Map([['w', new Float32Array([1, 2])]]);
    const opt = new Adam(p);
    assert.throws(() => opt.step(new Map(), 0.1), /no gradient for parameter w/);
    assert.throws(() => opt.step(new Map([['w', new Float32Array(3)]]), 0.1), /3 values/);
    assert.deepEqual([...p.get('w')!], [1, 2]);
    assert.equal(opt.stepCount, 0);
    assert.throws(() => opt.load({ step: 1, m: new Map([['x', new Float32Array(2)]]), v: new Map() }), UserError);
    assert.throws(() => opt.load({ step: 1, m: new Map([['w', new Float32Array(5)]]), v: new Map([['w', new Float32Array(5)]]) }), UserError);
  });
});

describe('learning-rate schedules', () => {
  test('inverse decay (paper) and step decay (seed)', () => {
    const inv = inverseDecay(1e-4, 5e-5);
    assert.equal(inv(0), 1e-4);
    assert.ok(Math.abs(inv(20000) - 5e-5) < 1e-18);
    const step = stepDecay(1e-3, 0.1, 100);
    assert.equal(step(99), 1e-3);
    assert.ok(Math.abs(step(100) - 1e-4) < 1e-18);
    assert.ok(Math.abs(step(250) - 1e-5) < 1e-18);
  });

  test('--lr-schedule parsing', () => {
    assert.deepEqual(parseLrSchedule('inverse'), { kind: 'inverse', decay: 5e-5 });
    assert.deepEqual(parseLrSchedule('inverse:1e-4'), { kind: 'inverse', decay: 1e-4 });
    assert.deepEqual(parseLrSchedule('step'), { kind: 'step', gamma: 0.1 });
    assert.deepEqual(parseLrSchedule('step:0.5:300'), { kind: 'step', gamma: 0.5, everyIters: 300 });
    for (const bad of ['cosine', 'inverse:x', 'step:0.1:0', 'step:0.1:2.5', 'inverse:1:2']) {
      assert.throws(() => parseLrSchedule(bad), (e: unknown) => e instanceof UserError && e.message.includes('--lr-schedule'), bad);
    }
    // step without an interval: every 15 epochs, which needs the epoch length
    const s = buildSchedule(parseLrSchedule('step'), 1e-3, { itersPerEpoch: 10 });
    assert.equal(s(149), 1e-3);
    assert.ok(Math.abs(s(150) - 1e-4) < 1e-18);
    assert.throws(() => buildSchedule(parseLrSchedule('step'), 1e-3), UserError);
  });
});

describe('He initialisation', () => {
  test('empirical std matches sqrt(2/fan_in); biases zero; seeded', () => {
    const shapes: [string, number[]][] = [['dec4_1', [256, 512, 3, 3]], ['dec1_1', [3, 64, 3, 3]]];
    const w = heInit(shapes, 42);
    for (const [name, shape] of shapes) {
      const { weight, bias } = w.get(name)!;
      assert.deepEqual(weight.shape, shape);
      assert.deepEqual(bias.shape, [shape[0]]);
      assert.ok(bias.data.every((b) => b === 0));
      let s = 0, s2 = 0;
      for (const x of weight.data) {
        s += x;
        s2 += x * x;
      }
      const n = weight.data.length;
      const mean = s / n;
      const std = Math.sqrt(s2 / n - mean * mean);
      const want = Math.sqrt(2 / (shape[1] * 9));
      assert.equal(heStd(shape), want);
      assert.ok(Math.abs(std / want - 1) < 0.03, `${name}: std ${std} vs ${want}`);
      assert.ok(Math.abs(mean) < 0.05 * want, `${name}: mean ${mean}`);
    }
    assert.deepEqual(heInit(shapes, 42).get('dec1_1')!.weight.data, w.get('dec1_1')!.weight.data);
    assert.notDeepEqual(heInit(shapes, 43).get('dec1_1')!.weight.data, w.get('dec1_1')!.weight.data);
  });

  test('the normal sampler has mean 0, variance 1', () => {
    const normal = normalSampler(mulberry32(7));
    let s = 0, s2 = 0;
    const n = 100000;
    for (let i = 0; i < n; i++) {
      const x = normal();
      s += x;
      s2 += x * x;
    }
    assert.ok(Math.abs(s / n) < 0.02);
    assert.ok(Math.abs(s2 / n - 1) < 0.02);
  });
});
