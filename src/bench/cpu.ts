/** The CPU model and the dot-product extensions int8 convolutions depend on (Linux /proc/cpuinfo; unknown elsewhere). */
import { promises as fs } from 'node:fs';
import os from 'node:os';

export interface CpuInfo {
  model: string;
  /** AVX-512 VNNI (u8 x s8 dot products in one instruction): int8 convs gain most with it. */
  avx512_vnni: boolean | null;
  /** AVX-VNNI, the 256-bit form. */
  avx_vnni: boolean | null;
}

export async function cpuInfo(): Promise<CpuInfo> {
  const model = os.cpus()[0]?.model ?? 'unknown';
  try {
    const text = await fs.readFile('/proc/cpuinfo', 'utf8');
    const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(text)?.[1] ?? '').split(/\s+/));
    return { model, avx512_vnni: flags.has('avx512_vnni'), avx_vnni: flags.has('avx_vnni') };
  } catch {
    return { model, avx512_vnni: null, avx_vnni: null };
  }
}

export function describeCpu(c: CpuInfo): string {
  const yn = (b: boolean | null) => (b === null ? 'unknown' : b ? 'yes' : 'no');
  return `cpu: ${c.model}; avx512_vnni: ${yn(c.avx512_vnni)}, avx_vnni: ${yn(c.avx_vnni)}`;
}
