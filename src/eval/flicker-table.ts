/**
 * `adain eval video`: how much each video setting flickers, and what it costs in style. The
 * clips are rendered from still photos with a known motion (eval/../video/synthetic.ts), so
 * every change between input frames is the motion (or a cut, exposure or noise put there on
 * purpose), and any change of the output beyond what the input's change explains is flicker.
 *
 * - flicker = mean |out_t - out_t-1| / mean |in_t - in_t-1| over a clip (video/flicker.ts),
 *   the cut clip's cut pair left out (both frames change by design there);
 * - style distance = the judge's (eval/judge.ts), output frame vs style image, mean over every
 *   frame of every clip and style;
 * - each setting is compared with frame by frame (--temporal 0 --temporal-blend 0).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { UserError } from '../errors.js';
import { quoteName, toInterleavedU8 } from '../image/io.js';
import type { PrecisionOption } from '../quant/precision.js';
import type { ChannelStats } from '../stylize/features.js';
import type { Precision } from '../stylize/network.js';
import { loadModel } from '../stylize/style-model.js';
import { listImages } from '../train/data.js';
import { flickerRatio } from '../video/flicker.js';
import { renderMotion, writeClip, type Motion, type RgbBytes } from '../video/synthetic.js';
import { DEFAULT_TEMPORAL, DEFAULT_TEMPORAL_BLEND } from '../video/temporal.js';
import { clampImage, Judge, statsOf, styleDistance, type StyleTarget } from './judge.js';

/** The clips, each a kind of change a real video has. */
export const FLICKER_CLIPS = ['pan', 'pan+zoom', 'zoom', 'cut', 'pan+exposure', 'still+noise'] as const;
export type FlickerClipName = (typeof FLICKER_CLIPS)[number];

/**
 * The photos of docs/VIDEO.md's table, in the test split: a seascape (large smooth areas), a
 * street scene (fine texture) and a portrait. Another folder without them gets its first three.
 */
export const FLICKER_PHOTOS = ['ArtFlow__sea_01.jpg', 'FFDNet__106024.png', 'ArtFlow__maxresdefault.jpg'] as const;

export interface FlickerClip {
  name: FlickerClipName;
  /** The photos it is rendered from (file names). */
  photos: string[];
  /** width*height*3 RGB bytes per frame. */
  frames: Buffer[];
  /** The first frame of the second shot, for the cut clip. */
  cut?: number;
}

/** A generator with a fixed seed per clip, so that a clip is the same whichever others are chosen. */
function seeded(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 16807) % 2147483647) / 2147483647;
}

const clampByte = (v: number) => Math.min(255, Math.max(0, Math.round(v)));

/** Brightness x (1 +- 4%) per frame, as a camera's auto exposure hunting. */
function exposureJitter(frames: Buffer[], random: () => number): Buffer[] {
  return frames.map((f) => {
    const gain = 1 + 0.08 * (random() - 0.5);
    return Buffer.from(f.map((v) => clampByte(v * gain)));
  });
}

/** Gaussian sensor noise of 3 levels of 255, new in every frame. */
function sensorNoise(frames: Buffer[], random: () => number): Buffer[] {
  const gauss = () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
  return frames.map((f) => Buffer.from(f.map((v) => clampByte(v + 3 * gauss()))));
}

/**
 * One clip of `frames` frames at width x height from up to three photos (the cut needs two
 * different ones). The motions are slow, as in footage: a view 70% of the photo's width that
 * moves by 6-12% of it, or zooms by 5-20%, over the clip.
 */
export function renderFlickerClip(name: FlickerClipName, photos: readonly (RgbBytes & { name: string })[], size: Pick<Motion, 'frames' | 'width' | 'height'>): FlickerClip {
  const [a, b, c] = [photos[0], photos[1 % photos.length], photos[2 % photos.length]];
  const move = (p: RgbBytes, pan: number, zoom: number, frames = size.frames) => renderMotion(p, { ...size, frames, pan, zoom });
  switch (name) {
    case 'pan': return { name, photos: [a.name], frames: move(a, 0.12, 1) };
    case 'pan+zoom': return { name, photos: [b.name], frames: move(b, 0.08, 1.15) };
    case 'zoom': return { name, photos: [c.name], frames: move(c, 0, 1.2) };
    case 'cut': {
      const half = Math.floor(size.frames / 2);
      return { name, photos: [a.name, b.name], cut: half, frames: [...move(a, 0.06, 1, half), ...move(b, 0.06, 1.05, size.frames - half)] };
    }
    case 'pan+exposure': return { name, photos: [b.name], frames: exposureJitter(move(b, 0.08, 1.05), seeded(12345)) };
    case 'still+noise': return { name, photos: [a.name], frames: sensorNoise(move(a, 0, 1), seeded(54321)) };
  }
}

/** A video setting: stylize's --temporal and --temporal-blend. */
export interface VideoSetting {
  temporal: number;
  temporalBlend: number;
}

/**
 * Frame by frame first (the baseline of the change columns), then each --temporal value with
 * the blend off, then each --temporal-blend value with the smoothing off, each setting once:
 * one knob at a time, so that a row's change is that knob's alone.
 */
export function flickerSettings(temporal: readonly number[], temporalBlend: readonly number[]): VideoSetting[] {
  for (const t of temporal) if (!(t >= 0 && t <= 1)) throw new UserError(`--temporal values must be between 0 and 1, got ${t}`);
  for (const k of temporalBlend) if (!(k >= 0 && k < 1)) throw new UserError(`--temporal-blend values must be at least 0 and below 1, got ${k}`);
  const all: VideoSetting[] = [{ temporal: 0, temporalBlend: 0 }, ...temporal.map((t) => ({ temporal: t, temporalBlend: 0 })), ...temporalBlend.map((k) => ({ temporal: 0, temporalBlend: k }))];
  const seen = new Set<string>();
  return all.filter((s) => {
    const key = `${s.temporal}/${s.temporalBlend}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export const isDefaultSetting = (s: VideoSetting): boolean => s.temporal === DEFAULT_TEMPORAL && s.temporalBlend === DEFAULT_TEMPORAL_BLEND;

export function settingLabel(s: VideoSetting): string {
  const parts = [...(s.temporal > 0 ? [`--temporal ${s.temporal}`] : []), ...(s.temporalBlend > 0 ? [`--temporal-blend ${s.temporalBlend}`] : [])];
  return (parts.length ? parts.join(' ') : 'frame by frame') + (isDefaultSetting(s) ? ' (default)' : '');
}

export interface FlickerTableConfig {
  /** Folder of photos the clips are rendered from (see FLICKER_PHOTOS). */
  contentDir: string;
  /** Style images; every clip is stylised with each. */
  styles: string[];
  /** Style images are scaled so that their shorter side is this (default 256). */
  styleSize?: number;
  /** Clips to measure (default all of FLICKER_CLIPS). */
  clips?: readonly FlickerClipName[];
  /** Rows, e.g. from flickerSettings; the change columns are relative to frame by frame, which is added first when missing. */
  settings: readonly VideoSetting[];
  frames: number;
  width: number;
  height: number;
  model: string;
  precision?: PrecisionOption;
  threads?: number;
  modelsDir?: string;
  download?: boolean;
  /** The judge's weights instead of the registry's. */
  judgeFile?: string;
  progress?: (label: string, total: number) => { update(done: number): void; stop(): void };
  log?: (line: string) => void;
}

export interface FlickerRow {
  setting: string;
  temporal: number;
  temporal_blend: number;
  default: boolean;
  /** Per clip, the mean over the styles. */
  flicker: Record<string, number>;
  mean_flicker: number;
  /** mean_flicker over frame by frame's, minus 1 (-0.35: 35% less flicker). */
  flicker_change: number;
  style_distance: number;
  /** style_distance over frame by frame's, minus 1. */
  style_change: number;
  /** Scene cuts the pipeline found per clip (first style, frame 0 left out); null when the setting does not watch for cuts. */
  cuts_found: Record<string, number[]> | null;
}

export interface FlickerReport {
  model: string;
  /** The precision that ran (auto resolved). */
  precision: Precision;
  frames: number;
  width: number;
  height: number;
  styles: string[];
  clips: { name: FlickerClipName; photos: string[]; cut: number | null }[];
  rows: FlickerRow[];
}

/** Checked before the photos are read: a clip needs two frames each side of the cut, H.264 even sides, the judge 8x8. */
export function checkFlickerSize(frames: number, width: number, height: number): void {
  if (!Number.isInteger(frames) || frames < 4) throw new UserError(`--frames must be an integer of at least 4, got ${frames}`);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 16 || height < 16 || width % 2 || height % 2) {
    throw new UserError(`--size must be WIDTHxHEIGHT with even sides of at least 16 (H.264 needs even sides), got ${width}x${height}`);
  }
}

/** The photos the clips are made of, as RGB bytes at full size (the motion resamples them). */
async function readPhotos(dir: string): Promise<(RgbBytes & { name: string })[]> {
  const stat = await fs.stat(dir).catch(() => undefined);
  if (!stat?.isDirectory()) {
    throw new UserError(`--content ${quoteName(dir)}: no such folder; pass --content DIR with photos to render the clips from (the default is the test split, ../shared/data/content/test beside the repository)`);
  }
  const files = await listImages(dir, { label: 'content' });
  const byName = new Map(files.map((f) => [path.basename(f), f]));
  const chosen = FLICKER_PHOTOS.every((n) => byName.has(n)) ? FLICKER_PHOTOS.map((n) => byName.get(n)!) : files.slice(0, 3);
  if (chosen.length < 2) throw new UserError(`--content ${quoteName(dir)}: ${files.length} image(s) found, the clips need at least 2 (the cut is between two photos)`);
  return Promise.all(chosen.map(async (file) => {
    try {
      const { data, info } = await sharp(file).autoOrient().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
      return { name: path.basename(file), width: info.width, height: info.height, data };
    } catch (err) {
      throw new UserError(`image ${quoteName(file)} cannot be read (${(err instanceof Error ? err.message : String(err)).split('\n')[0]}); remove it or pass another --content folder`);
    }
  }));
}

const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

export async function runFlickerTable(cfg: FlickerTableConfig): Promise<FlickerReport> {
  checkFlickerSize(cfg.frames, cfg.width, cfg.height);
  if (!cfg.styles.length) throw new UserError('--styles: no style image given; pass --styles a.jpg,b.jpg');
  const names = [...new Set(cfg.clips ?? FLICKER_CLIPS)];
  if (!names.length) throw new UserError(`--clips: no clip given; choose from ${FLICKER_CLIPS.join(', ')}`);
  const base: VideoSetting = { temporal: 0, temporalBlend: 0 };
  const settings = cfg.settings.some((s) => s.temporal === 0 && s.temporalBlend === 0) ? [...cfg.settings] : [base, ...cfg.settings];
  const log = cfg.log ?? (() => undefined);
  const progress = cfg.progress ?? (() => ({ update: () => undefined, stop: () => undefined }));

  const photos = await readPhotos(cfg.contentDir);
  const size = { frames: cfg.frames, width: cfg.width, height: cfg.height };
  const clips = names.map((n) => renderFlickerClip(n, photos, size));
  const runtime = { threads: cfg.threads, modelsDir: cfg.modelsDir, download: cfg.download };
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'adain-eval-video-'));
  const model = await loadModel(cfg.model, { ...runtime, precision: cfg.precision });
  let judge: Judge | undefined;
  try {
    judge = await Judge.load({ ...runtime, file: cfg.judgeFile });
    const files: string[] = [];
    for (const clip of clips) {
      const file = path.join(tmp, `${files.length}.mp4`);
      await writeClip(clip.frames, cfg.width, cfg.height, 24, file);
      files.push(file);
    }
    const targets: StyleTarget[] = [], stats: ChannelStats[] = [];
    for (const s of cfg.styles) {
      const img = await model.readStyle(s, { styleSize: cfg.styleSize ?? 256 });
      targets.push(await judge.styleTarget(img));
      stats.push(await model.styleStats(img));
    }
    log(`${clips.length} clips x ${cfg.styles.length} styles x ${settings.length} settings, ${cfg.frames} frames at ${cfg.width}x${cfg.height}, ${model.spec.name} (${model.network.precision})`);

    const measured: Omit<FlickerRow, 'flicker_change' | 'style_change'>[] = [];
    const bar = progress('Stylising clips', settings.length * clips.length * stats.length * cfg.frames);
    let done = 0;
    for (const setting of settings) {
      const flicker: Record<string, number> = {};
      const watches = setting.temporal > 0 || setting.temporalBlend > 0;
      const cuts: Record<string, number[]> = {};
      let styleSum = 0, styleCount = 0;
      for (const [i, clip] of clips.entries()) {
        const perStyle: number[] = [];
        for (const [k, st] of stats.entries()) {
          const ins: Uint8Array[] = [], outs: Uint8Array[] = [];
          const r = await model.stylizeVideo(files[i], [st], {
            output: path.join(tmp, 'out.mkv'), temporal: setting.temporal, temporalBlend: setting.temporalBlend, ffmpegThreads: cfg.threads,
            onFrame: async ({ input, output }) => {
              ins.push(toInterleavedU8(input));
              // clamped and rounded as the encoder will write it: what a viewer sees
              const seen = clampImage(output);
              outs.push(toInterleavedU8(seen));
              styleSum += styleDistance(statsOf(await judge!.features(seen)), targets[k]);
              styleCount++;
              bar.update(++done);
            },
          });
          perStyle.push(flickerRatio(ins, outs, clip.cut !== undefined ? new Set([clip.cut]) : undefined));
          if (k === 0 && watches) cuts[clip.name] = r.cuts.filter((c) => c > 0);
        }
        flicker[clip.name] = mean(perStyle);
      }
      measured.push({
        setting: settingLabel(setting), temporal: setting.temporal, temporal_blend: setting.temporalBlend, default: isDefaultSetting(setting),
        flicker, mean_flicker: mean(Object.values(flicker)), style_distance: styleSum / styleCount, cuts_found: watches ? cuts : null,
      });
    }
    bar.stop();
    const ref = measured.find((r) => r.temporal === 0 && r.temporal_blend === 0)!;
    return {
      model: model.spec.name, precision: model.network.precision, frames: cfg.frames, width: cfg.width, height: cfg.height, styles: cfg.styles,
      clips: clips.map((c) => ({ name: c.name, photos: c.photos, cut: c.cut ?? null })),
      rows: measured.map((r) => ({ ...r, flicker_change: r.mean_flicker / ref.mean_flicker - 1, style_change: r.style_distance / ref.style_distance - 1 })),
    };
  } finally {
    await judge?.dispose();
    await model.dispose();
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

const percent = (x: number) => `${x > 0 ? '+' : ''}${(100 * x).toFixed(1)}%`;

/** The report as a Markdown table (docs/VIDEO.md keeps one), with what was measured above it and the cuts found below. */
export function formatFlickerTable(report: FlickerReport): string {
  const head = ['setting', ...report.clips.map((c) => c.name), 'mean flicker', 'vs frame by frame', 'style distance', 'vs frame by frame'];
  const cells = report.rows.map((r) => [
    r.setting, ...report.clips.map((c) => r.flicker[c.name].toFixed(3)), r.mean_flicker.toFixed(3),
    r.temporal === 0 && r.temporal_blend === 0 ? '' : percent(r.flicker_change), r.style_distance.toFixed(4),
    r.temporal === 0 && r.temporal_blend === 0 ? '' : percent(r.style_change),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => `| ${c.map((x, i) => x.padEnd(widths[i])).join(' | ')} |`;
  const cut = report.clips.find((c) => c.cut !== null);
  const watching = report.rows.filter((r) => r.cuts_found);
  const hitsOf = (r: FlickerRow) => Object.entries(r.cuts_found!).filter(([, f]) => f.length).map(([clip, f]) => `${clip} at ${f.join(', ')}`).join('; ') || 'none';
  // one line when every setting found the same cuts, the usual case
  const found = watching.length > 1 && watching.every((r) => hitsOf(r) === hitsOf(watching[0]))
    ? [`every setting that watches for them: ${hitsOf(watching[0])}`]
    : watching.map((r) => `${r.setting}: ${hitsOf(r)}`);
  return [
    `${report.clips.length} clips x ${report.styles.length} style(s), ${report.frames} frames at ${report.width}x${report.height}, ${report.model} (${report.precision}); style ${report.styles.map((s) => path.basename(s)).join(', ')}`,
    'flicker = mean |out_t - out_t-1| / mean |in_t - in_t-1| per clip (mean over styles); style distance: the judge\'s, mean over frames',
    line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line),
    ...(found.length ? [`Scene cuts found${cut ? ` (the cut clip cuts at frame ${cut.cut}, left out of its flicker)` : ''}: ${found.join('; ')}`] : []),
  ].join('\n');
}
