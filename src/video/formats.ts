/** Which files are videos, and how each output container is written. */
import path from 'node:path';
import { UserError } from '../errors.js';
import { quoteName } from '../image/io.js';

/**
 * Extensions that make a content file a video. GIF is not among them: a .gif content is
 * stylised as an image (its first frame) unless the output is a video, as it always was.
 */
export const VIDEO_EXTENSIONS = ['.mp4', '.m4v', '.mov', '.webm', '.mkv', '.avi', '.mpg', '.mpeg', '.ts', '.flv', '.ogv', '.3gp', '.wmv'] as const;

export function hasVideoExtension(file: string): boolean {
  return (VIDEO_EXTENSIONS as readonly string[]).includes(path.extname(file).toLowerCase());
}

export type VideoContainer = 'mp4' | 'mov' | 'mkv' | 'webm' | 'gif';

export interface OutputFormat {
  container: VideoContainer;
  /** ffmpeg's muxer name (-f): the temporary file's name has no telling extension. */
  muxer: string;
  videoCodec: 'libx264' | 'libvpx-vp9' | 'gif';
  /** 4:2:0 chroma needs even sides in H.264. */
  evenSize: boolean;
  /** Audio codecs the container stores as they are; null: any; empty: no audio at all. */
  audioCopy: readonly string[] | null;
  /** The encoder for audio that cannot be copied (none for GIF). */
  audioEncoder?: 'aac' | 'libopus';
}

const MP4_AUDIO = ['aac', 'mp3', 'alac', 'ac3', 'eac3', 'opus', 'flac'];

const OUTPUTS: Record<string, OutputFormat> = {
  '.mp4': { container: 'mp4', muxer: 'mp4', videoCodec: 'libx264', evenSize: true, audioCopy: MP4_AUDIO, audioEncoder: 'aac' },
  '.m4v': { container: 'mp4', muxer: 'mp4', videoCodec: 'libx264', evenSize: true, audioCopy: MP4_AUDIO, audioEncoder: 'aac' },
  '.mov': { container: 'mov', muxer: 'mov', videoCodec: 'libx264', evenSize: true, audioCopy: ['aac', 'mp3', 'alac', 'ac3', 'pcm_s16le', 'pcm_s24le', 'pcm_s16be', 'pcm_f32le'], audioEncoder: 'aac' },
  '.mkv': { container: 'mkv', muxer: 'matroska', videoCodec: 'libx264', evenSize: true, audioCopy: null },
  '.webm': { container: 'webm', muxer: 'webm', videoCodec: 'libvpx-vp9', evenSize: false, audioCopy: ['opus', 'vorbis'], audioEncoder: 'libopus' },
  '.gif': { container: 'gif', muxer: 'gif', videoCodec: 'gif', evenSize: false, audioCopy: [] },
};

export const OUTPUT_EXTENSIONS = Object.keys(OUTPUTS);

export function isVideoOutput(file: string): boolean {
  return path.extname(file).toLowerCase() in OUTPUTS;
}

/** The output format for a video file name; a UserError naming the choices for any other extension. */
export function videoFormatFromPath(file: string): OutputFormat {
  const ext = path.extname(file).toLowerCase();
  const format = OUTPUTS[ext];
  if (!format) {
    const got = ext === '' ? 'has no extension' : `has extension ${quoteName(ext)}, which adain cannot write as a video`;
    throw new UserError(`output ${quoteName(file)} ${got}; name it with one of ${OUTPUT_EXTENSIONS.join(', ')}`);
  }
  return format;
}
