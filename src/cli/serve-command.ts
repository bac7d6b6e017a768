import { Command, Option } from 'commander';
import { DEFAULT_MODEL } from '../models/registry.js';
import { PRECISION_OPTIONS, type PrecisionOption } from '../quant/precision.js';
import { defaultThreads } from '../runtime/session.js';
import { DEFAULT_STYLE_SIZE } from '../stylize/style-model.js';
import { DEFAULTS, startStudio } from '../web/server.js';
import { parseInteger, parseNumber } from './options.js';

interface ServeFlags {
  port: number;
  host: string;
  modelsDir?: string;
  model: string;
  download: boolean;
  threads: number;
  maxUploadMb: number;
  maxPixels: number;
  concurrency: number;
  queue: number;
  timeout: number;
  styleSize: number;
  allowedHost?: string[];
  quiet?: boolean;
  precision: PrecisionOption;
  maxVideoMb: number;
  maxVideoFrames: number;
  maxVideoPixels: number;
  videoTimeout: number;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

const HELP = `
Open the printed address in a browser. Image mode stylises uploads (or the built-in gallery)
in the browser with onnxruntime-web and downloads the result at the content's full resolution;
webcam mode stylises camera frames live in the browser, and no frame leaves the machine.

The HTTP API on the same port:
  POST /api/stylize   multipart/form-data: content (file), style (file, 1-4 times), alpha,
                      style_weights (e.g. 0.7,0.3), preserve_color, model, style_size, format
                      -> the stylised image (PNG by default)
  POST /api/stylize-video?job=ID   the same fields with a video as content, plus format
                      (mp4, webm, gif), temporal, temporal_blend, max_size -> the clip
                      (needs the system ffmpeg); ?job=ID (8-64 of A-Z a-z 0-9 - _) is optional
  GET  /api/video-jobs/ID   that job's {state, frames_done, frames_total, fps}
  GET  /api/models    the models, whether their files are here, and their ONNX files
  GET  /healthz       {ok, queue, cancelled, models: {name: precision}}
Errors are JSON {error, status}: 400 bad field, 403 refused Host or Origin, 408 upload too
slow, 409 job id in use, 413 too large (file, pixels, frames), 415 not an image or not a
video, 422 corrupt image or video, 503 busy (with Retry-After), over the time limit, a model
whose weights (or int8 calibration) are not installed, or no ffmpeg for videos.

Binds to 127.0.0.1 unless --host says otherwise; webcam and wasm threads need a secure
context, which browsers grant to http://localhost and http://127.0.0.1 only (serve other hosts
behind HTTPS). See docs/WEB.md.

Only requests whose Host header is localhost, 127.0.0.1, [::1] or the bound address (any
address of this machine with --host 0.0.0.0), with this port, are answered, and POSTs from
other sites' pages are refused (403): a web page you visit cannot use the server through
your browser, not even by DNS rebinding. To reach it under a DNS name or through a reverse
proxy, name that with --allowed-host (NAME for any port, or NAME:PORT).

--timeout covers a stylisation request from its headers to its answer: upload, queue and
work together (408 while the upload is still arriving, 503 after); the headers themselves
must come within the same time, 20 s at most. A job whose client disconnects, or whose time
is up, stops at its next tile and frees its memory. Videos have their own, longer, limit
(--video-timeout), take a queue slot for the whole clip, are refused before they wait when
they have more than --max-video-frames frames or --max-video-pixels pixels in all (frames x
width x height), and each one's temporary folder (under $TMPDIR) is removed when it ends.

--precision int8 runs every model through its int8 calibration (bundled for cd16x-r41;
\`adain calibrate\` makes one); the default model is loaded at the start, so a missing
calibration stops the server there. auto picks int8 per model where it is calibrated and
faster on this CPU. /healthz says what each loaded model runs in.

Example:
  curl -F content=@photo.jpg -F style=@painting.jpg -F alpha=0.8 -o out.png http://127.0.0.1:8080/api/stylize
`;

function stderrLine(line: string): void {
  process.stderr.write(`${new Date().toISOString()} ${line}\n`);
}

export function serveCommand(): Command {
  return new Command('serve')
    .description('Serve the web studio (upload, gallery, live webcam in the browser) and an HTTP stylisation API')
    .option('-p, --port <n>', 'port to listen on; 0 picks a free one', parseInteger('a port', 0, 65535), DEFAULTS.port)
    .option('--host <addr>', 'interface to bind; 0.0.0.0 exposes the server to your network', DEFAULTS.host)
    .option('--models-dir <dir>', 'folder with weight files (also $ADAIN_MODELS_DIR)')
    .option('-m, --model <name>', 'default model for API requests that name none', DEFAULT_MODEL)
    .option('--download', 'download missing weights when a request needs them (off: requests never start downloads)', false)
    .option('-t, --threads <n>', 'CPU threads per server-side stylisation', parseInteger('a thread count'), defaultThreads())
    .option('--max-upload-mb <n>', 'largest upload per image, in MiB', parseNumber('a size in MiB', 0.01, 1024), DEFAULTS.maxUploadBytes / 1024 / 1024)
    .option('--max-pixels <n>', 'largest image, in pixels', parseNumber('a pixel count', 1), DEFAULTS.maxPixels)
    .option('--concurrency <n>', 'stylisations running at once', parseInteger('a job count', 1, 64), DEFAULTS.concurrency)
    .option('--queue <n>', 'stylisations waiting at most; more get 503 + Retry-After', parseInteger('a queue length', 0, 10000), DEFAULTS.maxQueue)
    .option('--timeout <s>', 'seconds a stylisation request may take: upload, wait and work together', parseNumber('seconds', 0.1, 3600), DEFAULTS.timeoutMs / 1000)
    .option('--allowed-host <name>', 'also answer requests for this host name (NAME or NAME:PORT), and POSTs from its pages; repeatable', collect)
    .option('--style-size <n>', 'scale style images so their shorter side is n pixels', parseInteger('a size in pixels', 16, 4096), DEFAULT_STYLE_SIZE)
    .addOption(new Option('--precision <p>', 'fp32; int8 (needs `adain calibrate` once per model); auto: int8 where calibrated and faster on this CPU').choices(PRECISION_OPTIONS).default('fp32'))
    .option('--max-video-mb <n>', 'largest video upload, in MiB', parseNumber('a size in MiB', 0.01, 65536), DEFAULTS.maxVideoBytes / 1024 / 1024)
    .option('--max-video-frames <n>', 'most frames of an uploaded video', parseInteger('a frame count', 1), DEFAULTS.maxVideoFrames)
    .option('--max-video-pixels <n>', 'most pixels of all of a video\'s frames together (frames x width x height)', parseNumber('a pixel count', 1), DEFAULTS.maxVideoPixels)
    .option('--video-timeout <s>', 'seconds a video request may take: upload, wait and work together', parseNumber('seconds', 0.1, 24 * 3600), DEFAULTS.videoTimeoutMs / 1000)
    .option('-q, --quiet', 'do not log requests')
    .addHelpText('after', HELP)
    .action(async (o: ServeFlags) => {
      const studio = await startStudio({
        host: o.host, port: o.port, modelsDir: o.modelsDir, defaultModel: o.model, download: o.download, threads: o.threads,
        maxUploadBytes: Math.round(o.maxUploadMb * 1024 * 1024), maxPixels: o.maxPixels, concurrency: o.concurrency,
        maxQueue: o.queue, timeoutMs: o.timeout * 1000, styleSize: o.styleSize, allowedHosts: o.allowedHost ?? [],
        precision: o.precision, maxVideoBytes: Math.round(o.maxVideoMb * 1024 * 1024), maxVideoFrames: o.maxVideoFrames,
        maxVideoPixels: o.maxVideoPixels, videoTimeoutMs: o.videoTimeout * 1000,
        log: o.quiet ? undefined : stderrLine,
        // problems carry the server's paths, which replies leave out: the operator needs them
        logError: stderrLine,
      });
      process.stdout.write(`adain studio listening on ${studio.url}/ (bound to ${studio.host}:${studio.port}; Ctrl+C stops)\n`);
      if (studio.host !== '127.0.0.1' && studio.host !== '::1') {
        process.stderr.write('adain: note: other machines can reach this server; webcam mode and wasm threads need http://localhost or HTTPS\n');
      }
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          process.stderr.write('adain: stopping\n');
          void studio.close().then(resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
