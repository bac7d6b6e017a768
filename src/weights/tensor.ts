/** A dense float32 tensor in row-major (C) order; weights use PyTorch's OIHW layout. */
export interface Tensor {
  shape: number[];
  data: Float32Array;
}

/** Named tensors, in the order the checkpoint stored them. */
export type TensorMap = Map<string, Tensor>;

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function tensor(shape: number[], data?: Float32Array): Tensor {
  const n = numel(shape);
  if (data && data.length !== n) throw new Error(`tensor data has ${data.length} values, shape [${shape}] needs ${n}`);
  return { shape, data: data ?? new Float32Array(n) };
}
