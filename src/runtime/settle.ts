/**
 * Waits for this process to stop using CPU after a run. onnxruntime's intra-op threads
 * spin for about 50 ms after a run ends (per session); on a machine with few cores that
 * spinning slows whatever runs next (PyTorch took 2-3x longer right after an onnxruntime
 * run here), so every measurement starts from a quiet process.
 */
import { setTimeout as sleep } from 'node:timers/promises';

const POLL_MS = 10;
/** Quiet: under this fraction of one core over a poll window. */
const QUIET_FRACTION = 0.2;
const MAX_WAIT_MS = 500;

export async function settle(): Promise<void> {
  const start = performance.now();
  while (performance.now() - start < MAX_WAIT_MS) {
    const cpu0 = process.cpuUsage(), t0 = performance.now();
    await sleep(POLL_MS);
    const cpu = process.cpuUsage(cpu0), wall = performance.now() - t0;
    if ((cpu.user + cpu.system) / 1000 < QUIET_FRACTION * wall) return;
  }
}

/** Passes a measurement through once the process has gone quiet again. */
export async function settled(ms: number): Promise<number> {
  await settle();
  return ms;
}
