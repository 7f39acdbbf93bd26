// Leaving the explorer cancels the job it waits for (issue 19): on a server started with --token, a
// page streaming a long generated answer is reloaded, navigated away from, closed, and reloaded
// without navigator.sendBeacon, and each time the server reports that job `cancelled` before its
// last step, so the next visitor does not wait behind it. The page's cancel is the request its
// pagehide handler sends (sendBeacon, or fetch with keepalive: POST /api/jobs/ID/cancel, no body,
// no Content-Type, no Authorization); the test also sends that exact request itself (no browser)
// and sees it honoured, while the same job's status still needs the token.
import { sharedPath, check, main, launchBrowser, startServer } from './lib.mjs';

// Long enough (about 10 s on one thread; 25 steps before a cancel on a quiet machine, serve_e2e)
// that it is surely still running when the page goes away, and far from done when the test looks.
const PROMPT = 'Lily and Tom went';
const N = 160;
const TOKEN = 'leave-test-token';
const MODEL = sharedPath('models/stories260K/stories260K.gguf');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let browser = null;
let server = null;

// The API as a script with the token sends it.
async function authed(pathname, { method = 'GET', body } = {}) {
  const headers = { Authorization: 'Bearer ' + TOKEN };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(server.url + pathname, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, json: await r.json() };
}

// Polls a job until `until` holds (or 60 s pass) and returns its status.
async function pollJob(id, until) {
  let s = null;
  for (let i = 0; i < 600; ++i) {
    s = (await authed('/api/jobs/' + id)).json;
    if (until(s)) break;
    await sleep(100);
  }
  return s;
}
const running = (s) => s.state === 'running' && (s.steps_done || 0) >= 1;
const ended = (s) => s.state !== 'queued' && s.state !== 'running';

// Opens the explorer as the printed address does (#token=...), asks for the long answer and waits
// until the server has explained some of it; returns the page and its job id.
async function pageStreaming(sent, { noBeacon = false } = {}) {
  const page = await browser.context.newPage();
  // A browser without sendBeacon: the page sends the same request by fetch(..., {keepalive: true}).
  if (noBeacon) await page.addInitScript(() => delete Navigator.prototype.sendBeacon);
  const jobs = [];  // every job the page polled, in order (a reloaded page asks again: a second one)
  page.on('request', (r) => {
    const m = /\/api\/jobs\/([0-9a-f]{32})\?from=/.exec(r.url());
    if (m && !jobs.includes(m[1])) jobs.push(m[1]);
  });
  await page.goto(server.url + '/#token=' + TOKEN);
  await page.waitForFunction(() => document.querySelector('[data-part="model"]').innerText.includes('layers'));
  await page.locator('input[name="prompt"]').fill(PROMPT);
  await page.locator('input[name="generate"]').fill(String(N));
  await page.locator('[data-part="go"]').click();
  const job = await nextJob(jobs, 0);
  const s = await pollJob(job, (x) => running(x) || ended(x));
  if (!running(s)) throw new Error('the answer did not stream: ' + JSON.stringify(s));
  sent.length = 0;
  return { page, job, jobs };
}
async function nextJob(jobs, k) {
  for (let i = 0; i < 600 && jobs.length <= k; ++i) await sleep(50);
  if (jobs.length <= k) throw new Error('the page did not poll a job');
  return jobs[k];
}

main(
  async () => {
    browser = await launchBrowser();  // first: it exits 77 (skipped) when chromium is missing
    server = await startServer(['--model', MODEL, '--token', TOKEN]);
    console.log(`server on ${server.url}`);
    // Every cancel the browser sends, as the server would see it.
    const sent = [];
    browser.context.on('request', (r) => {
      if (/\/api\/jobs\/[0-9a-f]{32}(\/cancel)?$/.test(r.url())) {
        sent.push({ url: r.url(), method: r.method(), body: r.postData() || '', auth: 'authorization' in r.headers(), type: r.headers()['content-type'] || '' });
      }
    });

    const leaves = {
      'reloaded': (page) => page.reload(),
      'navigated away from': (page) => page.goto('about:blank'),
      'closed': (page) => page.close(),
      'reloaded without sendBeacon': (page) => page.reload(),
    };
    for (const [how, leave] of Object.entries(leaves)) {
      const { page, job, jobs } = await pageStreaming(sent, { noBeacon: how.includes('without sendBeacon') });
      const t0 = Date.now();
      await leave(page);
      const s = await pollJob(job, ended);
      const secs = ((Date.now() - t0) / 1000).toFixed(1);
      check(s.state === 'cancelled' && s.steps_done >= 1 && s.steps_done < N && !s.result,
        `a page ${how} while its answer streams: the server reports the job cancelled after ${s.steps_done} of ${N} steps, ${secs} s after`,
        JSON.stringify({ state: s.state, stage: s.stage, steps_done: s.steps_done }));
      const mine = sent.filter((r) => r.url.includes(job));
      if (mine.length) {  // chromium reports the beacon of a reloaded or navigated page (not always of a closed one)
        check(mine.length === 1 && mine[0].method === 'POST' && mine[0].url.endsWith('/api/jobs/' + job + '/cancel') && mine[0].body === '' && mine[0].type === '' && !mine[0].auth,
          `the page's cancel is POST /api/jobs/ID/cancel with no body, no Content-Type and no Authorization (${how})`, JSON.stringify(mine));
      }
      if (how.startsWith('reloaded')) {
        // The reloaded page asks again (its address holds the request): its new job runs (the old
        // one no longer holds the worker), and closing the page cancels it in turn.
        const again = await nextJob(jobs, 1);
        const r = await pollJob(again, (x) => running(x) || ended(x));
        await page.close();
        const e = await pollJob(again, ended);
        check(running(r) && e.state === 'cancelled', `the page ${how} asks again (its address holds the request): its new job runs, and closing the page cancels it too`,
          JSON.stringify({ running: r.state, ended: e.state, steps_done: e.steps_done }));
      } else if (how !== 'closed') {
        await page.close();
      }
    }

    // The pagehide handler's request, sent exactly so by a script (no browser): a POST with no body,
    // no Content-Type and no Authorization cancels a running answer on this --token server, while
    // the job's status (and a DELETE) without the token get 401.
    const sub = await authed('/api/explain?async=1', { method: 'POST', body: { prompt: PROMPT, generate: N } });
    const job = sub.json.job;
    await pollJob(job, (x) => running(x) || ended(x));
    const denied = [await fetch(server.url + '/api/jobs/' + job), await fetch(server.url + '/api/jobs/' + job, { method: 'DELETE' })];
    check(denied.every((r) => r.status === 401), 'without the token, the job\'s status and DELETE get 401', denied.map((r) => r.status).join(' '));
    const beacon = await fetch(server.url + '/api/jobs/' + job + '/cancel', { method: 'POST' });
    const reply = await beacon.json();
    const s = await pollJob(job, ended);
    check(beacon.status === 202 && s.state === 'cancelled' && s.steps_done < N,
      `the beacon's request, sent by a script, cancels the running answer (202, cancelled after ${s.steps_done} steps)`, JSON.stringify({ status: beacon.status, reply, state: s.state }));
    const again = await fetch(server.url + '/api/jobs/' + job + '/cancel', { method: 'POST' });
    check(again.status === 409, 'sent again it gets 409 (the job has finished)', String(again.status));

    // The server is free: a new request is answered at once.
    const t0 = Date.now();
    const pred = await authed('/api/predict', { method: 'POST', body: { prompt: PROMPT } });
    check(pred.status === 200 && Date.now() - t0 < 5000, `the worker is free: a predict after the cancels takes ${Date.now() - t0} ms`);
  },
  async () => {
    if (browser) await browser.close();
    if (server) {
      const r = await server.stop();
      check(r.code === 0, 'the server stops cleanly on SIGTERM', JSON.stringify(r));
    }
  },
);
