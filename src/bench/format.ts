import { REFERENCE_CHANNELS, REFERENCE_SIDE } from './reference-conv.js';
import type { BenchResult } from './run.js';
import type { TorchStatus } from './torch.js';
import { describeCpu } from './cpu.js';

const HEADERS = ['model', 'precision', 'size', 'ms', 'GFLOP/s', 'of_peak', 'torch ms', 'vs torch', 'frame ms', 'torch frame ms', 'frame vs torch'] as const;

/** The rows as an aligned text table (model left-aligned, numbers right-aligned) and a footer. */
export function formatTable(r: BenchResult): string {
  const cells = r.rows.map((row) => [
    row.model,
    row.precision,
    `${row.size}x${row.size}`,
    row.ms.toFixed(1),
    row.gflops.toFixed(1),
    `${(row.of_peak * 100).toFixed(0)}%`,
    row.torch_ms === null ? '-' : row.torch_ms.toFixed(1),
    row.ratio === null ? '-' : `${row.ratio.toFixed(2)}x`,
    row.frame_ms.toFixed(1),
    row.torch_frame_ms === null ? '-' : row.torch_frame_ms.toFixed(1),
    row.frame_ratio === null ? '-' : `${row.frame_ratio.toFixed(2)}x`,
  ]);
  return [...alignTable(HEADERS, cells), '', footer(r)].join('\n') + '\n';
}

/** The header and rows as lines of an aligned table: the first column left-aligned, the others right-aligned. */
export function alignTable(headers: readonly string[], cells: string[][]): string[] {
  const all = [[...headers], ...cells];
  const widths = headers.map((_, i) => Math.max(...all.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((s, i) => (i === 0 ? s.padEnd(widths[i]) : s.padStart(widths[i]))).join('  ').trimEnd();
  return all.map(line);
}

/** Which PyTorch was compared, or why none was. */
export function describeTorch(t: TorchStatus): string {
  return t.used ? `PyTorch ${t.used.version} (${t.used.python})` : `PyTorch ${t.why}`;
}

/** Thread count, the reference conv and which PyTorch, if any, was compared. */
export function footer(r: BenchResult): string {
  const torch = describeTorch(r.torch);
  return [
    `threads: ${r.threads}; median of ${r.runs} run${r.runs === 1 ? '' : 's'} after 1 warm-up; ${torch}`,
    `of_peak reference: onnxruntime, one 3x3 conv ${REFERENCE_CHANNELS}->${REFERENCE_CHANNELS} channels at ${REFERENCE_SIDE}x${REFERENCE_SIDE} (zero padding): ` +
      `${r.reference.ms.toFixed(1)} ms = ${r.reference.gflops.toFixed(1)} GFLOP/s`,
    describeCpu(r.cpu),
  ].join('\n');
}

export function formatJson(r: BenchResult): string {
  return `${JSON.stringify(r.rows, null, 2)}\n`;
}
