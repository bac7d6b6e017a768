/**
 * The training datasets `adain data download` knows: where each archive lives, what is known
 * about it (size, hashes) and how to unpack it. Only what is published is checked.
 */
import { UserError } from '../errors.js';

export interface DatasetSpec {
  name: string;
  description: string;
  url: string;
  /** Archive file name, saved in the download folder while downloading/unpacking. */
  file: string;
  format: 'zip' | 'tar.gz';
  /** Exact archive size when published; otherwise the server's Content-Length is trusted. */
  bytes?: number;
  md5?: string;
  sha256?: string;
  /** Roughly how much the unpacked images take (for the free-space check), when known. */
  unpackedBytes?: number;
  /** Licence / terms the user should know about. */
  terms: string;
}

export const DATASETS: Record<'coco' | 'wikiart', DatasetSpec> = {
  coco: {
    name: 'coco',
    description: 'MS-COCO train2017: 118,287 photos, the content images (paper, ports and seed)',
    url: 'http://images.cocodataset.org/zips/train2017.zip',
    file: 'train2017.zip',
    format: 'zip',
    bytes: 19336861798,
    md5: 'cced6f7f71b7629ddf16f17bbcfab6b2',
    unpackedBytes: 19336861798, // JPEGs are stored, so about the archive's size
    terms: 'COCO images are under Flickr terms of use; annotations CC BY 4.0 (https://cocodataset.org/#termsofuse)',
  },
  wikiart: {
    name: 'wikiart',
    description:
      'WikiArt (the ArtGAN collection, about 81k paintings in 27 style folders), the style images. ' +
      'No size or hash is published for this archive: the download is checked against the ' +
      "server's Content-Length and the gzip checksums only, and its sha256 is recorded on completion",
    url: 'https://archive.org/download/wikiart-dataset/wikiart.tar.gz',
    file: 'wikiart.tar.gz',
    format: 'tar.gz',
    terms: 'the WikiArt dataset may be used for non-commercial research only; the images come from WikiArt.org',
  },
};

export type DatasetName = keyof typeof DATASETS;

export function findDataset(name: string): DatasetSpec {
  const spec = (DATASETS as Record<string, DatasetSpec>)[name];
  if (!spec) throw new UserError(`unknown dataset ${JSON.stringify(name)}; choose one of: ${Object.keys(DATASETS).join(', ')}`);
  return spec;
}
