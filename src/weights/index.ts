/** Weights files in, TensorMap out: the format is recognised from the bytes, never the extension. */
import { UserError } from '../errors.js';
import { readWeightsFile, WEIGHTS_HINT } from './file.js';
import { looksLikeSafetensors, parseSafetensors } from './safetensors.js';
import { isZip, parseTorchCheckpoint } from './torch-checkpoint.js';
import type { TensorMap } from './tensor.js';

export { readTorchCheckpoint } from './torch-checkpoint.js';
export { readSafetensors, writeSafetensors, type Safetensors } from './safetensors.js';
export { numel, tensor, type Tensor, type TensorMap } from './tensor.js';

export type WeightsFormat = 'safetensors' | 'torch-zip' | 'torch-legacy';

export function sniffWeightsFormat(bytes: Uint8Array): WeightsFormat | undefined {
  if (isZip(bytes)) return 'torch-zip';
  if (bytes[0] === 0x80 && bytes[1] <= 5) return 'torch-legacy'; // pickle PROTO opcode + version
  if (looksLikeSafetensors(bytes)) return 'safetensors';
  return undefined;
}

/** Reads a safetensors file or a PyTorch checkpoint (legacy or zip) into float32 tensors. */
export async function readWeights(path: string): Promise<TensorMap> {
  const bytes = await readWeightsFile(path);
  const format = sniffWeightsFormat(bytes);
  if (format === 'safetensors') return parseSafetensors(bytes, path).tensors;
  if (format) return parseTorchCheckpoint(bytes, path);
  throw new UserError(`${path} is neither a safetensors file nor a PyTorch checkpoint (legacy or zip format); ${WEIGHTS_HINT}`);
}
