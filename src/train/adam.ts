/**
 * Adam over named float32 parameters, step for step the arithmetic of `torch.optim.Adam`
 * (single-tensor path): L2 weight decay added to the gradient, m and v kept in float32,
 * bias correction 1 - beta^t, denominator sqrt(v) / sqrt(1 - beta2^t) + eps.
 * Parameters are updated in place; a step allocates nothing.
 */
import { UserError } from '../errors.js';

export interface AdamOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** L2 penalty added to the gradient (torch's Adam `weight_decay`, not AdamW). Default 0. */
  weightDecay?: number;
}

/** Everything needed to resume exactly: the step count and both moment estimates per parameter. */
export interface AdamState {
  step: number;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
  options: Required<AdamOptions>;
}

export class Adam {
  readonly options: Required<AdamOptions>;
  private readonly names: string[];
  private readonly params: Float32Array[];
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];
  private t = 0;
  private decayed: Float32Array[] | undefined;

  /** `params` are updated in place by step(); the map's order is kept in state(). */
  constructor(params: Map<string, Float32Array>, opts: AdamOptions = {}) {
    this.options = { beta1: opts.beta1 ?? 0.9, beta2: opts.beta2 ?? 0.999, eps: opts.eps ?? 1e-8, weightDecay: opts.weightDecay ?? 0 };
    const { beta1, beta2, eps, weightDecay } = this.options;
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) throw new RangeError(`Adam betas must be in [0, 1), got ${beta1}, ${beta2}`);
    if (!(eps >= 0) || !(weightDecay >= 0)) throw new RangeError(`Adam eps and weightDecay must be >= 0, got ${eps}, ${weightDecay}`);
    this.names = [...params.keys()];
    this.params = [...params.values()];
    this.m = this.params.map((p) => new Float32Array(p.length));
    this.v = this.params.map((p) => new Float32Array(p.length));
  }

  /** Number of steps taken (torch's `state['step']`). */
  get stepCount(): number {
    return this.t;
  }

  /** One update with learning rate `lr`; every parameter needs a gradient of its length. */
  step(grads: Map<string, Float32Array>, lr: number): void {
    const { beta1, beta2, eps, weightDecay } = this.options;
    // Check everything first so that a bad call changes nothing.
    for (let i = 0; i < this.names.length; i++) {
      const g = grads.get(this.names[i]);
      if (!g) throw new Error(`Adam.step: no gradient for parameter ${this.names[i]}`);
      if (g.length !== this.params[i].length) throw new Error(`Adam.step: gradient for ${this.names[i]} has ${g.length} values, the parameter ${this.params[i].length}`);
    }
    const t = ++this.t;
    // torch does this in float32 with its Python-float scalars cast to float32; so do we, so
    // that the trajectories agree to the last bit or two (m and v cancel a lot).
    const f = Math.fround;
    const k: Constants = {
      b1: f(beta1), b2: f(beta2), a1: f(1 - beta1), a2: f(1 - beta2), eps: f(eps), wd: f(weightDecay),
      negStep: f(-lr / (1 - beta1 ** t)), // addcdiv_(m, denom, value=-step_size)
      bc2Sqrt: f(Math.sqrt(1 - beta2 ** t)),
    };
    for (let i = 0; i < this.names.length; i++) {
      if (k.wd !== 0) applyWeightDecay(grads.get(this.names[i])!, this.params[i], k.wd, this.scratch(i));
      const g = k.wd !== 0 ? this.decayed![i] : grads.get(this.names[i])!;
      adamKernel(this.params[i], g, this.m[i], this.v[i], k.b1, k.b2, k.a1, k.a2, k.eps, k.negStep, k.bc2Sqrt);
    }
  }

  /** Per-parameter buffer for grad + wd * param (allocated once, on the first step). */
  private scratch(i: number): Float32Array {
    this.decayed ??= this.params.map(() => new Float32Array(0));
    if (this.decayed[i].length !== this.params[i].length) this.decayed[i] = new Float32Array(this.params[i].length);
    return this.decayed[i];
  }

  /** A copy of the optimiser state (safe to keep while training continues). */
  state(): AdamState {
    const copy = (arrs: Float32Array[]) => new Map(this.names.map((n, i) => [n, arrs[i].slice()]));
    return { step: this.t, m: copy(this.m), v: copy(this.v), options: { ...this.options } };
  }

  /**
   * Restores a state from state() (or a checkpoint). The parameter names and sizes must match;
   * hyper-parameters stay those given to the constructor.
   */
  load(state: Pick<AdamState, 'step' | 'm' | 'v'>): void {
    if (!Number.isSafeInteger(state.step) || state.step < 0) throw new UserError(`optimizer state has an invalid step count ${state.step}; resume from an intact checkpoint or start afresh`);
    const mismatch = (why: string) =>
      new UserError(`optimizer state does not match the model (${why}); resume with the same model settings as the checkpoint, or start afresh`);
    for (const key of state.m.keys()) if (!this.names.includes(key)) throw mismatch(`unknown parameter ${key}`);
    for (let i = 0; i < this.names.length; i++) {
      const n = this.names[i];
      const m = state.m.get(n), v = state.v.get(n);
      if (!m || !v) throw mismatch(`no moments for ${n}`);
      if (m.length !== this.params[i].length || v.length !== this.params[i].length) {
        throw mismatch(`${n} has ${m.length} values, the model ${this.params[i].length}`);
      }
    }
    for (let i = 0; i < this.names.length; i++) {
      this.m[i].set(state.m.get(this.names[i])!);
      this.v[i].set(state.v.get(this.names[i])!);
    }
    this.t = state.step;
  }
}

interface Constants { b1: number; b2: number; a1: number; a2: number; eps: number; wd: number; negStep: number; bc2Sqrt: number }

/** grad.add(param, alpha=wd): a fused multiply-add in torch (one rounding; the double product is exact). */
function applyWeightDecay(g: Float32Array, p: Float32Array, wd: number, out: Float32Array): void {
  const f = Math.fround;
  for (let j = 0; j < p.length; j++) out[j] = f(g[j] + wd * p[j]);
}

/**
 * m.mul_(b1).add_(g, alpha=a1); v.mul_(b2).addcmul_(g, g, value=a2);
 * denom = (v.sqrt() / bc2Sqrt).add_(eps); p.addcdiv_(m, denom, value=negStep) -- op by op in float32.
 * A module-level function over plain arguments keeps V8's loop tight.
 */
function adamKernel(
  p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array,
  b1: number, b2: number, a1: number, a2: number, eps: number, negStep: number, bc2Sqrt: number,
): void {
  const f = Math.fround;
  const n = p.length;
  for (let j = 0; j < n; j++) {
    const gj = g[j];
    const mj = (m[j] = f(f(m[j] * b1) + a1 * gj));
    const vj = (v[j] = f(f(v[j] * b2) + f(f(a2 * gj) * gj)));
    const denom = f(f(f(Math.sqrt(vj)) / bc2Sqrt) + eps);
    p[j] = f(p[j] + f(f(negStep * mj) / denom));
  }
}
