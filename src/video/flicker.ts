/**
 * Flicker: how much consecutive output frames differ, relative to how much the input frames
 * do. A stylisation that only follows the motion scores about what its texture contrast
 * makes it; frame-to-frame popping of the painting on top of that raises it.
 */
import { meanAbsDiff } from './temporal.js';

/**
 * Mean |out_t - out_t-1| over mean |in_t - in_t-1|, over the consecutive pairs not in `skip`
 * (indices t of pairs to leave out, such as a scene cut, where both change by design).
 */
export function flickerRatio(inputs: readonly Uint8Array[], outputs: readonly Uint8Array[], skip: ReadonlySet<number> = new Set()): number {
  if (inputs.length !== outputs.length) throw new RangeError(`${inputs.length} input frames vs ${outputs.length} output frames`);
  let din = 0, dout = 0;
  for (let t = 1; t < inputs.length; t++) {
    if (skip.has(t)) continue;
    din += meanAbsDiff(inputs[t - 1], inputs[t]);
    dout += meanAbsDiff(outputs[t - 1], outputs[t]);
  }
  if (din === 0) throw new RangeError('the input frames do not change: flicker is undefined');
  return dout / din;
}
