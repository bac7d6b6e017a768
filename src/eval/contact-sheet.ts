import sharp from 'sharp';
import { resizeImage, writeImage, type RgbImage } from '../image/io.js';

/**
 * Contact sheets of the evaluation, as PNG:
 * - `contactSheet`: rows = contents, columns = styles; each cell shows every model's output
 *   side by side (model names above each cell), with the content thumbnail at the start of
 *   each row and the style thumbnail above each column;
 * - `tableSheet`: one row per item with labelled columns (the optimisation subset:
 *   content | style | each model | optimize-100 | optimize-300).
 * Labels are rendered from SVG text by libvips; where no font is installed they are blank
 * and the column order is the one `adain eval` prints.
 */
const GAP = 6;
const LABEL = 16;
const BACKGROUND = 1;

class Canvas {
  readonly data: Float32Array;
  private readonly texts: { x: number; y: number; text: string; width: number }[] = [];

  constructor(readonly width: number, readonly height: number) {
    this.data = new Float32Array(3 * width * height).fill(BACKGROUND);
  }

  /** Pastes `img` scaled to fit a box x thumb, centred in the box of width `boxW` at (x, y). */
  async paste(img: RgbImage, x: number, y: number, thumb: number, boxW = thumb): Promise<void> {
    const scale = thumb / Math.max(img.width, img.height);
    const w = Math.max(1, Math.round(img.width * scale)), h = Math.max(1, Math.round(img.height * scale));
    const t = await resizeImage(img, w, h);
    const x0 = x + Math.floor((boxW - w) / 2), y0 = y + Math.floor((thumb - h) / 2);
    const n = this.width * this.height;
    for (let c = 0; c < 3; c++) {
      for (let r = 0; r < h; r++) {
        const dst = c * n + (y0 + r) * this.width + x0;
        this.data.set(t.data.subarray(c * w * h + r * w, c * w * h + (r + 1) * w), dst);
      }
    }
  }

  /** A text label centred in [x, x + width) with its baseline near y + LABEL - 4. */
  label(text: string, x: number, y: number, width: number): void {
    this.texts.push({ x, y, text, width });
  }

  async write(file: string): Promise<void> {
    if (this.texts.length) await this.drawTexts().catch(() => undefined); // labels are a nicety
    await writeImage(file, { width: this.width, height: this.height, data: this.data });
  }

  private async drawTexts(): Promise<void> {
    const items = this.texts.map(({ x, y, text, width }) => {
      const max = Math.max(3, Math.floor(width / 6.5));
      const shown = text.length > max ? `${text.slice(0, max - 1)}…` : text;
      return `<text x="${x + width / 2}" y="${y + LABEL - 4}" text-anchor="middle" font-family="DejaVu Sans, sans-serif" font-size="11" fill="#000">${escapeXml(shown)}</text>`;
    });
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${this.width}" height="${this.height}">${items.join('')}</svg>`;
    const { data, info } = await sharp(Buffer.from(svg)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    if (info.width !== this.width || info.height !== this.height || info.channels !== 4) return;
    const n = this.width * this.height;
    for (let i = 0; i < n; i++) {
      const a = data[4 * i + 3] / 255;
      if (a === 0) continue;
      for (let c = 0; c < 3; c++) this.data[c * n + i] = (1 - a) * this.data[c * n + i] + a * (data[4 * i + c] / 255);
    }
  }
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (ch) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[ch]!);
}

export interface ContactSheetSpec {
  contents: RgbImage[];
  styles: RgbImage[];
  /** Names of the side-by-side outputs of each cell, in order. */
  models: string[];
  /** outputs(c, s)[k]: model k's output for content c and style s. */
  outputs: (content: number, style: number) => RgbImage[];
  /** Side of each thumbnail in pixels. */
  thumb: number;
}

/** rows = contents, columns = styles, every model side by side in each cell. */
export async function contactSheet(file: string, spec: ContactSheetSpec): Promise<void> {
  const { thumb: T, contents, styles, models } = spec;
  const k = models.length;
  const cellW = k * T + (k - 1) * 2;
  const left = GAP + T + GAP;
  const top = GAP + LABEL + T + GAP + LABEL;
  const width = left + styles.length * (cellW + GAP);
  const height = top + contents.length * (T + GAP) + GAP;
  const canvas = new Canvas(width, height);
  canvas.label('content \\ style', GAP, GAP + T / 2, T);
  for (let s = 0; s < styles.length; s++) {
    const x = left + s * (cellW + GAP);
    canvas.label(`style ${s + 1}`, x, GAP, cellW);
    await canvas.paste(styles[s], x, GAP + LABEL, T, cellW);
    models.forEach((m, i) => canvas.label(m, x + i * (T + 2), GAP + LABEL + T + GAP, T));
  }
  for (let c = 0; c < contents.length; c++) {
    const y = top + c * (T + GAP);
    await canvas.paste(contents[c], GAP, y, T);
    for (let s = 0; s < styles.length; s++) {
      const imgs = spec.outputs(c, s);
      for (let i = 0; i < k; i++) if (imgs[i]) await canvas.paste(imgs[i], left + s * (cellW + GAP) + i * (T + 2), y, T);
    }
  }
  await canvas.write(file);
}

/** One row per item, one labelled column per image. */
export async function tableSheet(file: string, headers: string[], rows: (RgbImage | undefined)[][], thumb: number): Promise<void> {
  const T = thumb;
  const width = GAP + headers.length * (T + GAP);
  const height = GAP + LABEL + rows.length * (T + GAP);
  const canvas = new Canvas(width, height);
  headers.forEach((h, i) => canvas.label(h, GAP + i * (T + GAP), GAP, T));
  for (let r = 0; r < rows.length; r++) {
    for (let i = 0; i < rows[r].length; i++) {
      const img = rows[r][i];
      if (img) await canvas.paste(img, GAP + i * (T + GAP), GAP + LABEL + r * (T + GAP), T);
    }
  }
  await canvas.write(file);
}
