/** Static files: the studio's front end, the example gallery and onnxruntime-web's browser build. */
import { createReadStream, promises as fs } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
};

export function mimeType(file: string): string {
  return MIME[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
}

/** The front end (web/ at the package root; the same relative path from src/web and dist/web). */
export const WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url));
/** The redistributable sample images, listed in NOTICE. */
export const EXAMPLES_DIR = fileURLToPath(new URL('../../examples/', import.meta.url));

/** onnxruntime-web's dist/ folder (its package exports hide package.json, so go via its main file). */
export function ortWebDir(): string {
  const require = createRequire(import.meta.url);
  return path.dirname(require.resolve('onnxruntime-web'));
}

/**
 * Resolves a URL path below `root`, or null when it would leave `root` (.., encoded slashes,
 * NUL) or names a hidden file.
 */
export function safeJoin(root: string, urlPath: string): string | null {
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (rel.includes('\0') || rel.includes('\\')) return null;
  const parts = rel.split('/').filter((p) => p !== '');
  if (parts.some((p) => p === '..' || p.startsWith('.'))) return null;
  const full = path.resolve(root, ...parts);
  const base = path.resolve(root);
  return full === base || full.startsWith(base + path.sep) ? full : null;
}

/**
 * Sends a file with its MIME type and a weak ETag from size and mtime; answers 304 to a
 * matching If-None-Match. Returns false when there is no such regular file.
 */
export async function sendFile(req: IncomingMessage, res: ServerResponse, file: string, cacheControl = 'no-cache'): Promise<boolean> {
  let st;
  try {
    st = await fs.stat(file);
  } catch {
    return false;
  }
  if (!st.isFile()) return false;
  const etag = `W/"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
  res.setHeader('ETag', etag);
  res.setHeader('Cache-Control', cacheControl);
  res.setHeader('Content-Type', mimeType(file));
  if (req.headers['if-none-match'] === etag) {
    res.statusCode = 304;
    res.end();
    return true;
  }
  res.setHeader('Content-Length', st.size);
  if (req.method === 'HEAD') {
    res.end();
    return true;
  }
  await new Promise<void>((resolve) => {
    const stream = createReadStream(file);
    stream.on('error', () => { res.destroy(); resolve(); });
    res.on('close', () => { stream.destroy(); resolve(); });
    stream.pipe(res);
  });
  return true;
}
