/**
 * The validation pairs measured by eval's judge (the normalised VGG-19, independent of the
 * encoder the decoder is trained on): the training objective and the judge disagree about
 * which checkpoints are better (docs/models/cd16x-r41.md), so `--best-by judge` keeps the
 * decoder that the 400-pair `adain eval` is likely to prefer.
 */
import type { RgbImage } from '../image/io.js';
import { Judge, type StyleTarget } from '../eval/judge.js';
import type { FeatureMap } from '../stylize/features.js';
import type { RuntimeOptions } from '../runtime/session.js';
import type { TrainingBatch } from './prefetch.js';

export type BestBy = 'loss' | 'judge';
export const BEST_BY: readonly BestBy[] = ['loss', 'judge'];

export interface JudgeScores { style: number; content: number }

/** Image i of a [B,3,S,S] batch (a view, not a copy). */
function pairImage(batch: Float32Array, i: number, S: number): RgbImage {
  return { width: S, height: S, data: batch.subarray(i * 3 * S * S, (i + 1) * 3 * S * S) };
}

export class JudgeValidation {
  private constructor(
    private readonly judge: Judge,
    private readonly targets: { content: FeatureMap; style: StyleTarget }[],
    private readonly batchSize: number,
    private readonly crop: number,
  ) {}

  /** The judge's targets of every validation pair, computed once. */
  static async create(batches: readonly TrainingBatch[], batchSize: number, crop: number, opts: RuntimeOptions & { modelsDir?: string }): Promise<JudgeValidation> {
    const judge = await Judge.load(opts);
    const targets = [];
    for (const b of batches) {
      for (let i = 0; i < batchSize; i++) {
        targets.push({ content: await judge.contentTarget(pairImage(b.content, i, crop)), style: await judge.styleTarget(pairImage(b.style, i, crop)) });
      }
    }
    return new JudgeValidation(judge, targets, batchSize, crop);
  }

  /** Mean style and content distance of the decoded validation batches (in the order given to create). */
  async measure(decoded: readonly Float32Array[]): Promise<JudgeScores> {
    if (decoded.length * this.batchSize !== this.targets.length) throw new RangeError(`${decoded.length} decoded batches for ${this.targets.length} validation pairs`);
    let style = 0, content = 0, k = 0;
    for (const d of decoded) {
      for (let i = 0; i < this.batchSize; i++, k++) {
        const m = await this.judge.measure(pairImage(d, i, this.crop), this.targets[k].content, this.targets[k].style);
        style += m.style;
        content += m.content;
      }
    }
    return { style: style / k, content: content / k };
  }

  dispose(): Promise<void> {
    return this.judge.dispose();
  }
}

/**
 * Whether `s` beats the best so far: the lower judge style distance, among the validations whose
 * content distance is within `maxContent` (a run that keeps no content is no better for its style).
 */
export function judgeImproves(s: JudgeScores, bestStyle: number, maxContent = Infinity): boolean {
  return s.content <= maxContent && s.style < bestStyle;
}
