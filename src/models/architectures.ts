/**
 * The networks as data: the encoder is one literal list of layers (the VGG-19 topology
 * shared by the normalised VGG, the Collaborative Distillation small encoders and
 * torchvision's vgg19_bn); the decoder is its mirror image, derived from it.
 */
export type CutLayer = 'relu1_1' | 'relu2_1' | 'relu3_1' | 'relu4_1' | 'relu5_1';
export const CUT_LAYERS: readonly CutLayer[] = ['relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1'];

/** The deepest of some cut layers: how far an encoder must run to tap them all. */
export function deepestLayer(layers: readonly CutLayer[]): CutLayer {
  return CUT_LAYERS[Math.max(...layers.map((l) => CUT_LAYERS.indexOf(l)))];
}

export interface ConvLayer { kind: 'conv'; name: string; k: 1 | 3; relu: boolean; tap?: CutLayer }
export type Layer = ConvLayer | { kind: 'pool' } | { kind: 'up' };

const c = (name: string, tap?: CutLayer): Layer => ({ kind: 'conv', name, k: 3, relu: true, tap });
const pool: Layer = { kind: 'pool' };

/** VGG-19 up to relu5_1. conv0 is the 1x1 RGB[0,1] -> BGR[0,255]-mean layer of the normalised VGG. */
export const VGG19_LAYERS: readonly Layer[] = [
  { kind: 'conv', name: 'conv0', k: 1, relu: false },
  c('conv1_1', 'relu1_1'), c('conv1_2'), pool, // input -> relu1_1 -> pool1
  c('conv2_1', 'relu2_1'), c('conv2_2'), pool, // -> relu2_1 -> pool2
  c('conv3_1', 'relu3_1'), c('conv3_2'), c('conv3_3'), c('conv3_4'), pool, // -> relu3_1 -> pool3
  c('conv4_1', 'relu4_1'), c('conv4_2'), c('conv4_3'), c('conv4_4'), pool, // -> relu4_1 -> pool4
  c('conv5_1', 'relu5_1'),
];

/** The encoder layers from the input up to and including the ReLU at `cut`. */
export function encoderLayers(cut: CutLayer, withInputConv: boolean): Layer[] {
  const end = VGG19_LAYERS.findIndex((l) => l.kind === 'conv' && l.tap === cut);
  return VGG19_LAYERS.slice(0, end + 1).filter((l) => withInputConv || !(l.kind === 'conv' && l.name === 'conv0'));
}

/**
 * The decoder mirrors the encoder from `cut` down: each 3x3 conv becomes `dec<name>` (mapping
 * its output channels back to its input channels), each pool a 2x nearest upsampling; ReLU
 * after every conv but the last.
 */
export function decoderLayers(cut: CutLayer): Layer[] {
  const enc = encoderLayers(cut, false).reverse();
  const out: Layer[] = enc.map((l): Layer => (l.kind === 'pool' ? { kind: 'up' } : { kind: 'conv', name: `dec${l.kind === 'conv' ? l.name.slice(4) : ''}`, k: 3, relu: true }));
  const last = out[out.length - 1];
  if (last.kind === 'conv') last.relu = false;
  return out;
}

/** Number of 2x poolings before `cut`: images are padded to a multiple of 2^n. */
export function downsampleFactor(cut: CutLayer): number {
  return 2 ** encoderLayers(cut, false).filter((l) => l.kind === 'pool').length;
}

export function convNames(layers: readonly Layer[]): string[] {
  return layers.flatMap((l) => (l.kind === 'conv' ? [l.name] : []));
}
