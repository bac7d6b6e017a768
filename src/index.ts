/** Public API of the adain package. */
export { loadModel, StyleModel, DEFAULT_STYLE_SIZE, type ImageInput, type LoadModelOptions, type StylizeImageOptions, type StylizeVideoFileOptions } from './stylize/style-model.js';
export { stylizeImage, styleStats, planTiles, DEFAULT_MEMORY_BUDGET, type StylizeOptions } from './stylize/model.js';
export { Network } from './stylize/network.js';
export { adain, channelStats, mixStats, ADAIN_EPS, type ChannelStats, type FeatureMap } from './stylize/features.js';
export { MODELS, DEFAULT_MODEL, findModel, type ModelSpec, type WeightFile, type EncoderKind } from './models/registry.js';
export { resolveWeightFile, modelStatus } from './models/resolve.js';
export { readImage, writeImage, encodeImage, resizeImage, type RgbImage, type ImageFormat } from './image/io.js';
export { preserveColor } from './image/color.js';
export { readWeights } from './weights/index.js';
export { readSafetensors, writeSafetensors } from './weights/safetensors.js';
export { UserError } from './errors.js';
export type { CutLayer } from './models/architectures.js';
export type { Tensor, TensorMap } from './weights/tensor.js';
export { exportStylizer, readStyleStatsFile, type ExportOptions, type ExportResult } from './export/export.js';
export { stylizeVideoFile, outputSize, type StylizeVideoOptions, type VideoFrame, type VideoProgress, type VideoResult } from './video/stylize-video.js';
export { probeVideo, type VideoInfo } from './video/probe.js';
export { TemporalStats, OutputBlend, DEFAULT_TEMPORAL, DEFAULT_TEMPORAL_BLEND, type TemporalOptions } from './video/temporal.js';
export type { AudioHandling } from './video/encode.js';
