/**
 * Headless Chromium for the studio's end-to-end tests and browser benchmark, driven by
 * playwright-core (a devDependency, loaded only when called). Uses the system's Chromium
 * (Debian's /usr/bin/chromium, or $ADAIN_CHROMIUM); nothing is downloaded.
 */
import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';

export function chromiumPath(): string {
  return process.env.ADAIN_CHROMIUM || '/usr/bin/chromium';
}

export function hasChromium(): boolean {
  return existsSync(chromiumPath());
}

/**
 * Flags that work as root in a container with no network: no sandbox, no GPU, and none of
 * Chromium's own background connections (they are refused here and slow every start).
 * Playwright gives each launch a fresh, empty profile folder.
 */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
] as const;

/** A fake camera (a moving test pattern) that getUserMedia may use without asking. */
export const FAKE_CAMERA_FLAGS = ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'] as const;

/**
 * WebGPU on SwiftShader, Chromium's CPU Vulkan: navigator.gpu gives the `swiftshader` adapter
 * even with --disable-gpu and no GPU at all. Slow, but it runs onnxruntime-web's WebGPU kernels.
 */
export const WEBGPU_SWIFTSHADER_FLAGS = [
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader',
] as const;

export async function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: chromiumPath(), args: [...CHROMIUM_FLAGS, ...extraArgs], timeout: 60_000 });
}

/**
 * Code run in the page by page.evaluate is the function's source text; tsx (esbuild with
 * keepNames) wraps named functions in a `__name(...)` helper that exists only in Node, so pages
 * get a do-nothing one.
 */
export const EVALUATE_SHIM = 'globalThis.__name = globalThis.__name || ((f) => f);';
