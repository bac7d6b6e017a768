/**
 * The system ffmpeg and ffprobe, spawned as child processes. No npm package ships them: those
 * download binaries at install time, which this project never does (see allowScripts).
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { UserError } from '../errors.js';

export type Tool = 'ffmpeg' | 'ffprobe';

/** The executable of a tool: $ADAIN_FFMPEG / $ADAIN_FFPROBE, else the name looked up on PATH. */
export function toolPath(tool: Tool): string {
  const env = tool === 'ffmpeg' ? process.env.ADAIN_FFMPEG : process.env.ADAIN_FFPROBE;
  return env && env.trim() !== '' ? env : tool;
}

export function missingToolError(tool: Tool): UserError {
  return new UserError(
    `${tool} was not found (video needs the system ffmpeg and ffprobe); install it with \`apt-get install ffmpeg\` (Debian/Ubuntu), \`brew install ffmpeg\` (macOS) or from ffmpeg.org, or set $ADAIN_${tool.toUpperCase()}`,
  );
}

/**
 * Spawns a tool in its own process group: a Ctrl-C in the terminal then reaches only adain,
 * which stops the tools itself, instead of also reaching ffmpeg, whose early exit would look
 * like a corrupt input.
 */
export function spawnTool(tool: Tool, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  return spawn(toolPath(tool), args, { stdio: ['ignore', 'pipe', 'pipe'], detached: process.platform !== 'win32', ...opts });
}

/** Keeps the last `limit` characters a stream writes (ffmpeg's error output can be long). */
export function tail(stream: NodeJS.ReadableStream | null, limit = 8192): () => string {
  let text = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (s: string) => {
    text = (text + s).slice(-limit);
  });
  return () => text;
}

/** The exit of a child: its code (null when killed) and signal; a spawn failure rejects, ENOENT as a missing-tool UserError. */
export function exited(child: ChildProcess, tool: Tool): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'ENOENT' ? missingToolError(tool) : err));
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
}

/** Runs a tool to completion and returns what it wrote. */
export async function runTool(tool: Tool, args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnTool(tool, args);
  let stdout = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (s: string) => (stdout += s));
  const stderr = tail(child.stderr, 65536);
  const { code } = await exited(child, tool);
  return { code, stdout, stderr: stderr() };
}

/** The first meaningful line of ffmpeg's error output, for a one-line message. */
export function firstError(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const line = lines.find((l) => /error|invalid|corrupt|not found|truncat|no such|unknown|unsupported|failed/i.test(l)) ?? lines[0] ?? 'no message';
  // "[h264 @ 0x55d2...] " says which of ffmpeg's parts spoke, nothing a user can act on
  return line.replace(/^\[[^\]]*@ 0x[0-9a-f]+\]\s*/i, '').replace(/[\u0000-\u001f\u007f]/g, '?').slice(0, 200);
}

let encoderList: Promise<Set<string>> | undefined;

/** The encoders this ffmpeg build has (libx264 and libvpx-vp9 are optional in ffmpeg builds). */
export function availableEncoders(): Promise<Set<string>> {
  encoderList ??= runTool('ffmpeg', ['-hide_banner', '-encoders']).then((r) => {
    const names = new Set<string>();
    for (const line of r.stdout.split('\n')) {
      const m = /^\s*[VAS][A-Z.]{5}\s+(\S+)/.exec(line);
      if (m) names.add(m[1]);
    }
    return names;
  }, (err: unknown) => {
    encoderList = undefined;
    throw err;
  });
  return encoderList;
}

/** Stops a child and its process group (ffmpeg may have helper threads, not processes, but be thorough). */
export function killTool(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    if (child.pid !== undefined && process.platform !== 'win32') process.kill(-child.pid, 'SIGKILL');
    else child.kill('SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}
