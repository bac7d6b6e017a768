/**
 * Progress bars on stderr. On a terminal the bar redraws in place; anywhere else (CI logs,
 * pipes) redrawing would spam the log, so only one summary line is printed at stop().
 */
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, total?: number): void;
  stop(): void;
}

export interface ProgressOptions {
  /** 'bytes' shows sizes as KB/MB; 'items' shows plain counts (default). */
  unit?: 'bytes' | 'items';
  /** Defaults to process.stderr; a stream with a falsy isTTY gets only the final line. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Also show the rate, items per second since the first update, with this unit (e.g. 'fps'). */
  rate?: string;
}

export function createProgress(label: string, total?: number, opts: ProgressOptions = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  const fmt = opts.unit === 'bytes' ? formatBytes : (n: number) => String(n);
  let done = 0;
  let knownTotal = total;
  let bar: cliProgress.SingleBar | null = null;
  let stopped = false;
  // counted from the first update on, so the work before it (a first item included) is not
  // divided by the few microseconds since
  let firstAt: number | undefined;
  let firstDone = 0;
  const rate = (): string => {
    const secs = firstAt === undefined ? 0 : (performance.now() - firstAt) / 1000;
    return secs > 0 && done > firstDone ? ((done - firstDone) / secs).toFixed(1) : '-';
  };
  const rateText = opts.rate ? ` | {rate} ${opts.rate}` : '';

  // Created on the first update so that the format can depend on whether a total is known.
  const startBar = (): cliProgress.SingleBar => {
    const withTotal = knownTotal !== undefined && knownTotal > 0;
    const b = new cliProgress.SingleBar({
      stream,
      format: withTotal
        ? `${label} [{bar}] {percentage}% | {value}/{total}${rateText} | ETA {eta_formatted}`
        : `${label} {value}${rateText}`,
      formatValue: (v, _o, type) => (type === 'value' || type === 'total' ? fmt(v) : String(v)),
      hideCursor: true,
      clearOnComplete: false,
    });
    b.start(withTotal ? (knownTotal as number) : 0, done, { rate: rate() });
    return b;
  };

  return {
    update(value: number, newTotal?: number): void {
      if (stopped) return;
      if (firstAt === undefined) {
        firstAt = performance.now();
        firstDone = value;
      }
      done = value;
      if (newTotal !== undefined && newTotal !== knownTotal) {
        knownTotal = newTotal;
        bar?.setTotal(newTotal);
      }
      if (!stream.isTTY) return;
      bar ??= startBar();
      bar.update(value, { rate: rate() });
    },
    stop(): void {
      if (stopped) return;
      stopped = true;
      if (bar) {
        bar.stop();
        return;
      }
      const of = knownTotal !== undefined && knownTotal !== done ? ` of ${fmt(knownTotal)}` : '';
      stream.write(`${label}: ${fmt(done)}${of}${opts.rate && done > firstDone ? ` (${rate()} ${opts.rate})` : ''}\n`);
    },
  };
}

/**
 * An onProgress callback that shows a bar only once something reports progress, so a
 * lookup that finds the file on disk prints nothing. Call stop() when the work is done.
 */
export function lazyProgress(
  label: string,
  opts: ProgressOptions = {},
): { onProgress: (done: number, total: number | undefined) => void; stop(): void } {
  let progress: Progress | null = null;
  return {
    onProgress(done, total) {
      progress ??= createProgress(label, total, opts);
      progress.update(done, total);
    },
    stop() {
      progress?.stop();
    },
  };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GB`;
}
