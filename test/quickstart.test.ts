// The README's quick start, as a new user runs it: no ../shared, no environment variable, no
// network, and nothing on stderr but our own one-line summary (no npm warnings).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';

const ROOT = path.resolve(import.meta.dirname, '..');

test('npx adain stylize on the bundled examples works offline with no models folder, and warns about nothing', async () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'adain-quickstart-'));
  try {
    const out = path.join(tmp, 'chelsea-scream.png');
    const env: NodeJS.ProcessEnv = { ...process.env, ADAIN_CACHE_DIR: path.join(tmp, 'empty-cache') };
    delete env.ADAIN_MODELS_DIR;
    for (const k of Object.keys(env)) if (k.toLowerCase().startsWith('npm_config_')) delete env[k];
    const r = spawnSync('npx', ['adain', 'stylize', '--content', 'examples/chelsea.jpg', '--style', 'examples/scream.jpg', '--output', out, '--no-download'], {
      cwd: ROOT, env, encoding: 'utf8', timeout: 120_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /warn/i);
    assert.ok(existsSync(out));
    const meta = await sharp(out).metadata();
    assert.deepEqual([meta.width, meta.height], [451, 300]);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
