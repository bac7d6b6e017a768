/**
 * The models the CLI knows, as data: which encoder/decoder weight files make up each one,
 * where they come from and how to recognise a good copy. Hashes and sizes are those in
 * shared/models/PROVENANCE.md; a download must match them byte for byte.
 */
import { UserError } from '../errors.js';
import type { CutLayer } from './architectures.js';

export type { CutLayer } from './architectures.js';
export type EncoderKind = 'vgg19-normalised' | 'cd16x' | 'vgg19bn';

export interface WeightFile {
  /** Path relative to a models dir, e.g. 'cd16x/encoders/4SE_20191110-132643_E20.pth'. */
  file: string;
  /** Where to download it; absent for files only the user can bring. */
  url?: string;
  /** Full sha256 (hex) when known. */
  sha256?: string;
  /**
   * Leading hex digits of the sha256 when only those are published (torchvision puts the
   * first 8 in the file name); checked only when `sha256` is absent.
   */
  shaPrefix?: string;
  /** Exact size in bytes when known; checked on every lookup because it is free. */
  bytes?: number;
  /** Upstream git blob id, for provenance (sha1 of "blob <size>\0" + bytes). */
  gitBlob?: string;
}

export interface ModelSpec {
  name: string;
  encoder: { kind: EncoderKind; cut: CutLayer; weights: WeightFile };
  decoder: { weights: WeightFile; kind: 'reconstruction' | 'adain' };
  description: string;
}

const CD16X_BASE =
  'https://github.com/MingSun-Tse/Collaborative-Distillation/raw/4a269dc90020721ef9b279b2926c62f5bcd6d209/trained_models';
const WCT_VGG_BASE = 'https://github.com/jkbehne/GOTStyleTranfer/raw/9268fb868e4bb65311ef3ddc1989ae980d22f8bb/models';
const ADAIN_RELEASE = 'https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0';

const CD16X_4SE: WeightFile = {
  file: 'cd16x/encoders/4SE_20191110-132643_E20.pth',
  // Upstream names the file by its timestamp only; the KSE_ prefix is ours.
  url: `${CD16X_BASE}/wct_se_16x_new/20191110-132643_E20.pth`,
  sha256: 'd2f059cbcd6669556a43aadef58d20c8b280462c18b60a9e7424a14dd271cd6b',
  bytes: 1235183,
  gitBlob: '468fe7340eb03f4fc58da06e2b1bbe296999db81',
};

const CD16X_3SE: WeightFile = {
  file: 'cd16x/encoders/3SE_20191110-132705_E20.pth',
  url: `${CD16X_BASE}/wct_se_16x_new/20191110-132705_E20.pth`,
  sha256: '269cdd0e2634e3e1e5d3005b9e7eca0f4cc8077653fee1ac8c0cf1cbe9ab8758',
  bytes: 231124,
  gitBlob: '46d4e5263c89c1ca7498d120cdcb1d491a686ff1',
};

const VGG_CONV3_1: WeightFile = {
  file: 'vgg19-normalised/vgg_normalised_conv3_1.pth',
  url: `${WCT_VGG_BASE}/vgg_normalised_conv3_1.pth`,
  sha256: '4ffff49ad5cdc3337374b947918f35f903fcb0898b0b5eebfcbd601b99fc3929',
  bytes: 2223308,
  gitBlob: 'a038a8b38da65eb2199c117182c2ccd33e43f62f',
};

const WEAK_STYLISATION =
  'Its decoder was trained to invert the encoder, not for AdaIN, so it stylises weakly ' +
  '(colours and some texture): a baseline for evaluation and a warm start for training.';

export const MODELS: readonly ModelSpec[] = [
  {
    name: 'cd16x-r41',
    encoder: { kind: 'cd16x', cut: 'relu4_1', weights: CD16X_4SE },
    decoder: { kind: 'adain', weights: { file: 'cd16x-r41.decoder.safetensors' } },
    description:
      'The fast default: Collaborative Distillation small VGG-19 (16x fewer FLOPs) to relu4_1 with the ' +
      "project's own AdaIN decoder (trained with adain train; see docs/models/cd16x-r41.md), bundled with the package.",
  },
  {
    name: 'vgg19-r31',
    encoder: { kind: 'vgg19-normalised', cut: 'relu3_1', weights: VGG_CONV3_1 },
    decoder: { kind: 'adain', weights: { file: 'vgg19-r31.decoder.safetensors' } },
    description:
      'The quality option: the normalised ImageNet VGG-19 to relu3_1 with the project\'s own AdaIN decoder ' +
      '(see docs/models/vgg19-r31.md), bundled with the package.',
  },
  {
    name: 'cd16x-r31',
    encoder: { kind: 'cd16x', cut: 'relu3_1', weights: CD16X_3SE },
    decoder: { kind: 'adain', weights: { file: 'cd16x-r31.decoder.safetensors' } },
    description:
      'The real-time option: Collaborative Distillation small VGG-19 to relu3_1 (about half the FLOPs of cd16x-r41) with ' +
      "the project's own AdaIN decoder (early in its training; see docs/models/cd16x-r31.md), bundled with the package.",
  },
  {
    name: 'cd16x-r41-recon',
    encoder: { kind: 'cd16x', cut: 'relu4_1', weights: CD16X_4SE },
    decoder: {
      kind: 'reconstruction',
      weights: {
        file: 'cd16x/decoders/4SD_20191111-092553_E20.pth',
        url: `${CD16X_BASE}/wct_se_16x_new_sd/20191111-092553_E20.pth`,
        sha256: '902f65e2c6033d803d02df552eb898e5985190a7ae67d155e384826eec6f04cb',
        bytes: 881308,
        gitBlob: '649b41339fe98e1fb9f1965f1764d3324cfd7b8c',
      },
    },
    description:
      'Collaborative Distillation small VGG-19 (16x fewer FLOPs) to relu4_1, ~2 MB, fast. ' + WEAK_STYLISATION,
  },
  {
    name: 'cd16x-r31-recon',
    encoder: { kind: 'cd16x', cut: 'relu3_1', weights: CD16X_3SE },
    decoder: {
      kind: 'reconstruction',
      weights: {
        file: 'cd16x/decoders/3SD_20191111-091929_E20.pth',
        url: `${CD16X_BASE}/wct_se_16x_new_sd/20191111-091929_E20.pth`,
        sha256: '005faba27859435762a8a9386116c00629cd8835a01617d0a71defa577c42174',
        bytes: 142014,
        gitBlob: '59e054a756c95a4da3a278c430fe6ff528e5b9a6',
      },
    },
    description:
      'Collaborative Distillation small VGG-19 to relu3_1 (about half the FLOPs of cd16x-r41), <0.5 MB; the warm start of cd16x-r31. ' + WEAK_STYLISATION,
  },
  {
    name: 'vgg19-r31-recon',
    encoder: { kind: 'vgg19-normalised', cut: 'relu3_1', weights: VGG_CONV3_1 },
    decoder: {
      kind: 'reconstruction',
      weights: {
        file: 'vgg19-normalised/feature_invertor_conv3_1.pth',
        url: `${WCT_VGG_BASE}/feature_invertor_conv3_1.pth`,
        sha256: '899eb82c2ee7b4214c57ca3655c50fbed652c63ef695f36ed035368c03bdf7d7',
        bytes: 2221993,
        gitBlob: 'db2fee968a567e2008c54e6b29b1e73410c5c0b6',
      },
    },
    description:
      'The normalised ImageNet VGG-19 (the original AdaIN encoder family) to relu3_1, ~4 MB. ' + WEAK_STYLISATION,
  },
  {
    name: 'vgg19-r41',
    encoder: {
      kind: 'vgg19-normalised',
      cut: 'relu4_1',
      // No hash is recorded here, so these downloads are checked for nothing but completeness.
      weights: { file: 'vgg19-normalised/vgg_normalised.pth', url: `${ADAIN_RELEASE}/vgg_normalised.pth` },
    },
    decoder: {
      kind: 'adain',
      weights: { file: 'adain/decoder.pth', url: `${ADAIN_RELEASE}/decoder.pth` },
    },
    description:
      'The AdaIN paper model (Huang & Belongie 2017): normalised VGG-19 to relu4_1 with the AdaIN-trained ' +
      'decoder from naoto0804/pytorch-AdaIN release v0.0.0 (unverified download, no hash known); strongest stylisation.',
  },
  {
    name: 'vgg19bn-r41',
    encoder: {
      kind: 'vgg19bn',
      cut: 'relu4_1',
      weights: {
        file: 'vgg19bn/vgg19_bn-c79401a0.pth',
        url: 'https://download.pytorch.org/models/vgg19_bn-c79401a0.pth',
        shaPrefix: 'c79401a0',
      },
    },
    decoder: {
      kind: 'adain',
      // Only a decoder the user trained for this encoder fits; nothing public to download.
      weights: { file: 'adain/vgg19bn_decoder.pth' },
    },
    description:
      "torchvision's ImageNet vgg19_bn to relu4_1 with a decoder you trained for it yourself " +
      '(put it at adain/vgg19bn_decoder.pth in your models dir).',
  },
];

export const DEFAULT_MODEL = 'cd16x-r41';

export function findModel(name: string): ModelSpec {
  const spec = MODELS.find((m) => m.name === name);
  if (!spec) {
    throw new UserError(`unknown model "${name}"; known models: ${MODELS.map((m) => m.name).join(', ')}`);
  }
  return spec;
}

/** The weight files a model needs, labelled, in a stable order (encoder first). */
export function modelWeightFiles(spec: ModelSpec): { role: 'encoder' | 'decoder'; weights: WeightFile }[] {
  return [
    { role: 'encoder', weights: spec.encoder.weights },
    { role: 'decoder', weights: spec.decoder.weights },
  ];
}
