/**
 * A network as plain layer shapes (no weights): what the FLOP count needs and what the
 * PyTorch benchmark builds, so both sides run the same architecture by construction.
 */
import type { Layer } from '../models/architectures.js';
import type { ConvWeights } from '../models/canonical-weights.js';

export type LayerShape =
  | { kind: 'conv'; cin: number; cout: number; k: number; relu: boolean }
  | { kind: 'pool' }
  | { kind: 'up' };

export interface ArchitectureShape {
  encoder: LayerShape[];
  decoder: LayerShape[];
}

/** The layer list with each conv's channel counts and kernel size read from its weights (OIHW). */
export function layerShapes(layers: readonly Layer[], weights: ConvWeights): LayerShape[] {
  return layers.map((l): LayerShape => {
    if (l.kind !== 'conv') return { kind: l.kind };
    const w = weights.get(l.name);
    if (!w) throw new Error(`no weights for layer ${l.name}`);
    const [cout, cin, k] = w.weight.shape;
    return { kind: 'conv', cin, cout, k, relu: l.relu };
  });
}
