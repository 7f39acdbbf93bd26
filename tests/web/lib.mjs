// Shared pieces of the browser and load tests: paths from CTest's environment, a headless chromium
// through playwright-core (installed by the build's `npm ci`), a `reslens serve` child process on a
// free loopback port, and a tiny check/report harness that ends with "N passed, M failed".
import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const SKIP = 77;

export const env = {
  cli: process.env.RESLENS_CLI || 'build/reslens',
  render: process.env.RESLENS_RENDER_REPORT || 'build/tests/web/web_render_report',
  nodeModules: process.env.RESLENS_WEB_NODE_MODULES || 'build/web/node_modules',
  artifacts: process.env.RESLENS_WEB_ARTIFACTS || 'build/tests/web/artifacts',
  shared: process.env.RESLENS_SHARED_DIR || process.env.RESLENS_SHARED_DIR_DEFAULT || '../shared',
};
fs.mkdirSync(env.artifacts, { recursive: true });

export const sharedPath = (rel) => {
  const p = path.join(env.shared, rel);
  if (!fs.existsSync(p)) {
    console.error(`shared test data not found: ${p} (set RESLENS_SHARED_DIR)`);
    process.exit(1);
  }
  return p;
};
export const artifact = (name) => path.join(env.artifacts, name);

// ---------------------------------------------------------------- checks

let passed = 0;
let failed = 0;
export function check(ok, what, detail = '') {
  if (ok) {
    passed++;
    console.log(`  ok   ${what}`);
  } else {
    failed++;
    console.log(`  FAIL ${what}${detail ? ': ' + detail : ''}`);
  }
  return ok;
}
export function finish() {
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
// Runs the test body, turning an exception into a failure, and always cleans up.
export async function main(body, cleanup = async () => {}) {
  const guard = setTimeout(() => {
    console.log('FAIL the test ran past its own 240 s limit');
    process.exit(1);
  }, 240000);
  try {
    await body();
  } catch (e) {
    check(false, 'no exception', e && e.stack ? e.stack : String(e));
  } finally {
    try {
      await cleanup();
    } catch (e) {
      console.log('cleanup: ' + e);
    }
    clearTimeout(guard);
  }
  finish();
}

// ---------------------------------------------------------------- chromium

// $RESLENS_CHROMIUM when set (only it: set it to a missing path to see the skip), else Debian's.
export function chromiumPath() {
  const candidates = process.env.RESLENS_CHROMIUM ? [process.env.RESLENS_CHROMIUM] : ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
  return candidates.find((p) => fs.existsSync(p)) || null;
}

// A fresh headless chromium (own profile folder, no background networking). Exits 77 (CTest: skipped)
// with a message when chromium is not installed.
export async function launchBrowser() {
  const exe = chromiumPath();
  if (!exe) {
    console.log('SKIPPED: chromium is not installed (apt-get install chromium); the browser tests need it');
    process.exit(SKIP);
  }
  const require = createRequire(path.join(path.resolve(env.nodeModules), 'noop.js'));
  const { chromium } = require('playwright-core');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'reslens-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: exe,
    headless: true,
    viewport: { width: 1360, height: 900 },
    deviceScaleFactor: 1,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
  return {
    context,
    close: async () => {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

// A page that records console errors, uncaught exceptions and every request it makes.
export async function watchedPage(context) {
  const page = await context.newPage();
  const errors = [];
  const requests = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push('console: ' + m.text());
  });
  page.on('pageerror', (e) => errors.push('page error: ' + e.message));
  page.on('request', (r) => requests.push(r.url()));
  return { page, errors, requests };
}

// Items a chart drew (bars, heatmap cells), as ECharts laid them out.
export async function chartItems(page, name) {
  return page.evaluate((n) => window.reslens.items(n), name);
}

// ---------------------------------------------------------------- reslens serve

export async function startServer(args = []) {
  const proc = spawn(env.cli, ['serve', '--port', '0', '--threads', '1', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr.on('data', (d) => (err += d));
  const port = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('the server did not start within 60 s: ' + err)), 60000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`the server exited with ${code}: ${err}`));
    });
  });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    stderr: () => err,
    alive: () => proc.exitCode === null && proc.signalCode === null,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10000);
      const r = await exited;
      clearTimeout(timer);
      return r;
    },
  };
}

export async function api(base, pathname, body, { raw = null, method = null, timeoutMs = 120000 } = {}) {
  const init = { method: method || (body === undefined && raw === null ? 'GET' : 'POST'), signal: AbortSignal.timeout(timeoutMs) };
  if (raw !== null) init.body = raw;
  else if (body !== undefined) init.body = JSON.stringify(body);
  if (init.body !== undefined) init.headers = { 'Content-Type': 'application/json' };
  const r = await fetch(base + pathname, init);
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: r.status, text, json, type: r.headers.get('content-type') || '' };
}

/** Clicks the heads heatmap's cell of (layer, head), moving the mouse there first (hover). */
export async function clickHeatmapCell(page, layer, head) {
  await page.locator('[data-chart="heads"]').scrollIntoViewIfNeeded();
  const pt = await page.evaluate(
    ([l, h]) => {
      const chart = window.reslens.chart('heads');
      const box = chart.getDom().getBoundingClientRect();
      const [x, y] = chart.convertToPixel({ seriesIndex: 0 }, [h, l]);
      return { x: box.left + x, y: box.top + y };
    },
    [layer, head],
  );
  await page.mouse.move(pt.x, pt.y);
  await page.mouse.click(pt.x, pt.y);
}
