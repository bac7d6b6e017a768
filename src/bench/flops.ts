import type { ArchitectureShape, LayerShape } from './architecture.js';

/**
 * Multiply-adds x 2 of the convolutions of a layer list run on an h x w input:
 * 2*Cin*Cout*k*k*H*W per conv at that layer's resolution (pools halve it, upsamplings
 * double it). Pads, ReLUs, pools and AdaIN are left out: they are memory-bound and small.
 */
export function convFlops(layers: readonly LayerShape[], h: number, w: number): number {
  let flops = 0;
  for (const l of layers) {
    if (l.kind === 'pool') { h = Math.floor(h / 2); w = Math.floor(w / 2); }
    else if (l.kind === 'up') { h *= 2; w *= 2; }
    else flops += 2 * l.cin * l.cout * l.k * l.k * h * w;
  }
  return flops;
}

/** 2^(number of pools): the encoder's output is this many times smaller per side. */
export function reductionFactor(layers: readonly LayerShape[]): number {
  return 2 ** layers.filter((l) => l.kind === 'pool').length;
}

/**
 * Conv FLOPs of encoding a side x side content and decoding it (style statistics known, as
 * in webcam mode). `side` must be a multiple of the reduction factor (the size that runs).
 */
export function encodeDecodeFlops(arch: ArchitectureShape, side: number): number {
  const f = reductionFactor(arch.encoder);
  return convFlops(arch.encoder, side, side) + convFlops(arch.decoder, side / f, side / f);
}

/** Conv FLOPs of one stylisation with a style of the content's size: one more encoder pass. */
export function stylisationFlops(arch: ArchitectureShape, side: number): number {
  return encodeDecodeFlops(arch, side) + convFlops(arch.encoder, side, side);
}
