/**
 * The PyTorch side of `adain bench train`: scripts/bench_torch_train.py as a long-lived child
 * (JSON lines on stdin/stdout, one reply per request; see torch-server.ts), so that its steps
 * interleave with onnxruntime's and both see the same machine load. The interpreter comes
 * from findTorch().
 */
import { fileURLToPath } from 'node:url';
import type { TorchPython } from './torch.js';
import { TorchServer } from './torch-server.js';
import type { TrainArchitecture } from './train-step.js';

/** Same path from src/bench/ (tsx) and dist/bench/ (built). */
export const TORCH_TRAIN_SCRIPT = fileURLToPath(new URL('../../scripts/bench_torch_train.py', import.meta.url));

export interface TorchTrainSetup {
  arch: TrainArchitecture;
  batch: number;
  crop: number;
  lr: number;
  contentWeight: number;
  styleWeight: number;
}

export class TorchTrainWorker {
  private constructor(private readonly server: TorchServer) {}

  static start(torch: TorchPython, threads: number, script = TORCH_TRAIN_SCRIPT): TorchTrainWorker {
    return new TorchTrainWorker(TorchServer.start(torch, script, threads));
  }

  /** Builds the network (random decoder, frozen random encoder), Adam and the input batch. */
  async load(setup: TorchTrainSetup): Promise<void> {
    await this.server.request({
      cmd: 'load', arch: setup.arch, taps: setup.arch.taps, batch: setup.batch, crop: setup.crop,
      lr: setup.lr, content_weight: setup.contentWeight, style_weight: setup.styleWeight,
    });
  }

  /** Milliseconds of one training step. */
  time(): Promise<number> {
    return this.server.time({ cmd: 'run' });
  }

  close(): Promise<void> {
    return this.server.close();
  }
}
