// The explorer of `reslens serve` in a real browser: a prompt typed into the page is explained
// (layer bars and heatmap cells for the model), a click on a heatmap cell shows that head's source
// positions with their token views, a click on a neuron shows its vocabulary tokens, its ablation
// and (attention neurons) its query neurons, the circuit from /api/graph is drawn and a click on a
// node explains it, its pruning controls draw the graph of other shares (and the server's error for
// a bad one), a click on a predicted token explains that token, a generated answer shows its token
// strip while its steps stream (a finished token opens its report at once, the final page equals the
// report file of the same answer), a new request stops the polling of an answer and the server
// cancels its job (the page asks), a job failing mid-stream shows its error, and a bad request
// shows its error while the server keeps serving.
// Screenshots of each view go to $RESLENS_WEB_ARTIFACTS.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { artifact, sharedPath, check, main, launchBrowser, watchedPage, startServer, clickHeatmapCell, api, env } from './lib.mjs';

// The answer streamed: stories260K continues this prompt for ANSWER_N tokens without ending its
// turn, and one step takes long enough (the job runs for seconds) that the page's polls, at most
// 400 ms apart, see it half explained.
const ANSWER_PROMPT = 'Once upon a time';
const ANSWER_N = 48;
// The answer a new request supersedes: long enough (about 10 s) that it is surely still running when
// the page cancels it (it stopped after 25 steps on a quiet machine).
const SUPERSEDED_N = 160;
const MODEL = sharedPath('models/stories260K/stories260K.gguf');

let browser = null;
let server = null;

const deferred = () => {
  let release;
  const promise = new Promise((r) => (release = r));
  return { promise, release };
};

// The circuit card's drawing after its controls asked again: waits for the reply (drawn or an error).
async function redrawCircuit(page, shares) {
  for (const [name, v] of Object.entries(shares)) await page.locator(`[data-part="circuit-controls"] input[name="${name}"]`).fill(String(v));
  await page.locator('[data-part="circuit-apply"]').click();
  return circuitSettled(page);
}
async function circuitSettled(page) {
  await page.waitForFunction(() => ['ready', 'error'].includes(document.querySelector('[data-part="circuit"] [data-part="circuit-body"]').dataset.state), null, { timeout: 60000 });
  return page.evaluate(() => {
    const card = document.querySelector('[data-part="circuit"]');
    return {
      state: card.querySelector('[data-part="circuit-body"]').dataset.state,
      text: card.querySelector('[data-part="circuit-state"]').innerText,
      nodes: card.querySelectorAll('g.node').length,
      links: card.querySelectorAll('line').length,
      node_box: card.querySelector('input[name="node_threshold"]').value,
      edge_box: card.querySelector('input[name="edge_threshold"]').value,
    };
  });
}

// The answer's strip as the page shows it.
function stripState(page) {
  return page.evaluate(() => {
    const s = document.querySelector('[data-part="target-strip"]');
    if (!s) return null;
    const pending = [...s.querySelectorAll('button.step.pending')];
    return {
      state: s.dataset.state,
      total: Number(s.dataset.total || 0),
      explained: s.querySelectorAll('button.step.target:not(.pending)').length,
      pending: pending.length,
      pending_disabled: pending.every((b) => b.disabled),
      summed_disabled: s.querySelector('button[data-step="all"]').disabled,
      progress: (s.querySelector('[data-part="progress"]') || { innerText: '' }).innerText,
      texts: [...s.querySelectorAll('button.step.target')].map((b) => [...b.childNodes].filter((n) => n.nodeName !== 'SUB').map((n) => n.textContent).join('')),
      status: document.querySelector('[data-part="status"]').innerText,
    };
  });
}

// The report's text without the charts' own (their axis labels depend on the layout): what two
// pages showing the same document must both say.
const reportText = (page) =>
  page.evaluate(() => {
    const c = document.querySelector('[data-part="report"]').cloneNode(true);
    c.querySelectorAll('[data-chart]').forEach((e) => e.replaceChildren());
    return c.textContent.replace(/\s+/g, ' ').trim();
  });

async function heatmapCellsDrawn(page) {
  await page.locator('[data-chart="heads"]').scrollIntoViewIfNeeded();
  return page.evaluate(() => {
    const chart = window.reslens.chart('heads');
    const box = chart.getDom().getBoundingClientRect();
    const cells = new Set();
    for (const { value: [h, l] } of chart.getOption().series[0].data) {
      const [x, y] = chart.convertToPixel({ seriesIndex: 0 }, [h, l]);
      const el = document.elementFromPoint(box.left + x, box.top + y);
      if (el && el.tagName === 'path' && chart.getDom().contains(el)) cells.add(el);
    }
    return cells.size;
  });
}

async function explainTyped(page, prompt, previous) {
  await page.locator('input[name="prompt"]').fill(prompt);
  await page.locator('[data-part="go"]').click();
  await page.waitForFunction((n) => Number(document.getElementById('app').dataset.explained || 0) > n, previous, { timeout: 60000 });
  await page.waitForSelector('[data-part="report"] [data-state="ready"], [data-part="report"][data-state="ready"]');
  return page.evaluate(() => Number(document.getElementById('app').dataset.explained));
}

main(
  async () => {
    browser = await launchBrowser();  // first: it exits 77 (skipped) when chromium is missing
    server = await startServer(['--model', MODEL]);
    console.log(`server on ${server.url}`);
    const { page, errors, requests } = await watchedPage(browser.context);
    await page.goto(server.url + '/');
    await page.waitForFunction(() => document.querySelector('[data-part="model"]').innerText.includes('layers'));
    check((await page.locator('[data-part="model"]').innerText()).includes('5 layers × 8 heads'), 'the page shows the model');
    await page.screenshot({ path: artifact('serve-start.png') });

    // Type a prompt, explain it.
    let n = await explainTyped(page, 'Once upon a time', 0);
    const data = await page.evaluate(() => window.reslens.data);
    check(data.target.text === ',' && data.tokens.length === 5, 'the typed prompt is explained (target ",")', JSON.stringify(data.target));
    check((await page.locator('[data-part="preds"] .pred').count()) === 10, 'the ten likeliest next tokens are listed');
    const bars = await page.evaluate(() => document.querySelectorAll('[data-chart="layers"] svg path[fill="#2166ac"], [data-chart="layers"] svg path[fill="#b2182b"]').length);
    check(bars === 10, '10 layer bars', String(bars));
    check((await heatmapCellsDrawn(page)) === 40, '40 heatmap cells drawn');
    check((await page.locator('[data-part="status"]').innerText()).includes('explained position 4'), 'the status line says what was explained');
    await page.screenshot({ path: artifact('serve-explained.png'), fullPage: true });

    // The circuit of the same prediction, from /api/graph: drawn node for node, a click explains a node.
    await page.waitForSelector('[data-part="circuit"] svg.circuit', { timeout: 60000 });
    const graph = await page.evaluate(async (t) => (await fetch('/api/graph', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ prompt: 'Once upon a time', target: t, position: 4 }) })).json(), data.target.id);
    const drawn = await page.evaluate(() => [document.querySelectorAll('[data-part="circuit"] g.node').length, document.querySelectorAll('[data-part="circuit"] line').length]);
    check(requests.some((u) => u.endsWith('/api/graph')) && drawn[0] === graph.nodes.length && drawn[1] === graph.links.length,
      `the explorer draws the circuit from /api/graph (${graph.nodes.length} nodes, ${graph.links.length} links)`, JSON.stringify(drawn));
    const value = graph.nodes.find((x) => x.feature_type === 'mlp neuron');
    await page.locator(`[data-part="circuit"] g.node[data-id="${value.node_id}"]`).click();
    const gd = page.locator(`[data-part="circuit-detail"] .graph-node[data-id="${value.node_id}"]`);
    await gd.waitFor({ timeout: 5000 });
    check((await gd.innerText()).includes('FFN value neuron in this report: score'), `clicking ${value.clerp} in the circuit shows its explanation`, await gd.innerText());
    await page.locator('[data-part="circuit"]').screenshot({ path: artifact('serve-circuit.png') });

    // The pruning controls: they show the shares of the graph drawn, and other shares draw what
    // /api/graph answers for them (fewer edges at a lower edge share, more at a higher one); a share
    // outside [0, 1] or a pruning that leaves nothing shows the server's error in place.
    let c = await circuitSettled(page);
    check(c.node_box === '0.8' && c.edge_box === '0.98', 'the circuit controls show the default shares (node 0.8, edge 0.98)', JSON.stringify(c));
    const graphFor = async (shares) => (await api(server.url, '/api/graph', { prompt: 'Once upon a time', target: data.target.id, position: 4, ...shares })).json;
    const low = await graphFor({ node_threshold: 0.8, edge_threshold: 0.5 });
    c = await redrawCircuit(page, { edge_threshold: 0.5 });
    check(c.state === 'ready' && c.nodes === low.nodes.length && c.links === low.links.length && c.links < graph.links.length,
      `edge share 0.5 draws /api/graph's reply for it: ${c.links} edges, fewer than ${graph.links.length} at 0.98`, JSON.stringify(c));
    check(c.text.includes('edge share 0.5'), 'the circuit says which shares it was pruned at', c.text);
    const high = await graphFor({ node_threshold: 0.8, edge_threshold: 1 });
    c = await redrawCircuit(page, { edge_threshold: 1 });
    check(c.state === 'ready' && c.links === high.links.length && c.links > low.links.length, `edge share 1 draws more edges (${c.links})`, JSON.stringify(c));
    c = await redrawCircuit(page, { edge_threshold: 1.5 });
    check(c.state === 'error' && c.text.includes("'edge_threshold' = 1.5 must be a number in [0, 1]") && c.links === 0,
      'edge share 1.5 shows the server\'s error in the circuit card', JSON.stringify(c));
    check(!(await page.locator('[data-part="status"]').getAttribute('class')).includes('err'), 'the explanation stays (the status line has no error)');
    await page.locator('[data-part="circuit"]').screenshot({ path: artifact('serve-circuit-error.png') });
    c = await redrawCircuit(page, { edge_threshold: 0.98, node_threshold: 0 });
    check(c.state === 'error' && c.text.includes('empty after pruning'), 'a node share that leaves nothing says the graph is empty', JSON.stringify(c));
    // The edge slider, moved with the keyboard from 1 down to 0.9: each step asks again. The test's
    // route hands the ten replies to the page newest first: only the last request's is drawn, the
    // older ones that come after it are dropped.
    await page.locator('[data-part="circuit-controls"] input[name="node_threshold"]').fill('0.8');
    const slider = page.locator('[data-part="circuit-controls"] input[type="range"][data-share="edge_threshold"]');
    const graphRoutes = [];
    const allAsked = deferred();
    await page.route('**/api/graph', (route) => {
      graphRoutes.push(route);
      if (graphRoutes.length === 10) allAsked.release();
    });
    const repliesBefore = await page.evaluate(() => Number(document.querySelector('[data-part="circuit"] [data-part="circuit-body"]').dataset.replies || 0));
    await slider.focus();
    for (let i = 0; i < 10; ++i) await slider.press('ArrowLeft');
    await allAsked.promise;
    const fetched = [];
    for (const r of graphRoutes) fetched.push(await r.fetch());  // the server answers them in turn
    for (let i = fetched.length - 1; i >= 0; --i) await graphRoutes[i].fulfill({ response: fetched[i] });
    await page.unroute('**/api/graph');
    await page.waitForFunction((want) => Number(document.querySelector('[data-part="circuit"] [data-part="circuit-body"]').dataset.replies || 0) >= want, repliesBefore + 10);
    c = await circuitSettled(page);
    const slid = await graphFor({ node_threshold: 0.8, edge_threshold: Number(c.edge_box) });
    check(c.state === 'ready' && Number(c.edge_box) === 0.9 && c.links === slid.links.length && c.nodes === slid.nodes.length,
      `the edge slider at ${c.edge_box} draws that graph (${c.links} edges)`, JSON.stringify(c));
    const v2 = slid.nodes.find((x) => x.feature_type === 'mlp neuron');
    await page.locator(`[data-part="circuit"] g.node[data-id="${v2.node_id}"]`).click();
    const gd2 = page.locator(`[data-part="circuit-detail"] .graph-node[data-id="${v2.node_id}"]`);
    await gd2.waitFor({ timeout: 5000 });
    check((await gd2.innerText()).includes('in this report'), `clicking ${v2.clerp} in the redrawn circuit shows its explanation`, await gd2.innerText());
    await page.locator('[data-part="circuit"]').screenshot({ path: artifact('serve-circuit-slider.png') });

    // A head outside the report's top three: its token views come from /api/head.
    const top3 = data.head_positions.map((h) => h.label);
    let cell = null;
    for (let l = 0; l < 5 && !cell; ++l) for (let h = 0; h < 8 && !cell; ++h) if (!top3.includes(`L${l}H${h}`)) cell = { l, h };
    await clickHeatmapCell(page, cell.l, cell.h);
    const label = `L${cell.l}H${cell.h}`;
    await page.waitForFunction(
      (lab) => document.querySelector('[data-head]') && document.querySelector('[data-head]').dataset.head === lab && document.querySelectorAll('[data-part="head-table"] th').length === 7,
      label,
      { timeout: 30000 },
    );
    const rows = await page.locator('[data-part="head-table"] tbody tr').count();
    check(rows === 5, `clicking ${label} shows its 5 source positions with token views`, String(rows));
    check(requests.some((u) => u.endsWith('/api/head')), 'the head came from /api/head');
    await page.locator('[data-part="head-positions"]').screenshot({ path: artifact('serve-head.png') });

    // A neuron: vocabulary projection and ablation.
    await page.locator('[data-part="neuron-table"] tr[data-i="0"]').click();
    await page.waitForSelector('[data-part="neuron-detail"] .detail[data-neuron] .ablation', { timeout: 30000 });
    const detail = page.locator('[data-part="neuron-detail"] .detail');
    check((await detail.getAttribute('data-neuron')) === data.ffn_neurons[0].label, `clicking ${data.ffn_neurons[0].label} shows it`);
    check((await detail.locator('.tok').count()) >= 30, 'its vocabulary tokens are listed');
    check((await detail.innerText()).includes('zeroed'), 'its ablation is shown');
    await page.locator('[data-part="neurons"]').screenshot({ path: artifact('serve-neuron.png') });

    // An attention neuron: also its query FFN neurons.
    await page.locator('[data-part="neuron-tabs"] button[data-tab="attn"]').click();
    await page.locator('[data-part="neuron-table"] tr[data-i="0"]').click();
    await page.waitForSelector('[data-part="neuron-detail"] [data-chart="neuron-query"] svg', { timeout: 30000 });
    const q = await page.evaluate(() => window.reslens.chart('neuron-query').getOption().series[0].data.length);
    check(q > 0, `clicking ${data.attn_neurons[0].label} shows its query FFN neurons`, String(q));
    await page.locator('[data-part="neurons"]').screenshot({ path: artifact('serve-attn-neuron.png') });

    // ---------------- an answer, streamed step by step ----------------
    // The page's polls of /api/jobs/ID pass through this route, which keeps the steps each reply
    // brought. Once a reply shows the job running with some but not all of its steps explained
    // (holdNext), the next polls are held until the test lets them go: the page stays on the
    // half-explained answer while the test looks at it, with no sleeps, and the server goes on.
    const polls = [];  // {id, state, steps_done}
    const streamed = new Map();  // job id -> the step lines in order
    let hold = null;
    let held = deferred();  // released when the page's next poll reaches the hold
    let holdNext = false;
    let failNext = false;  // replace the reply after a half-explained one by a failure
    const halfway = (j) => {
      const got = streamed.get(j.id) || [];
      if (j.state !== 'running' || !got.length) return false;
      const e = got[0].explanation;
      return j.steps_done < e.tokens.length - e.position;  // m = tokens - P (docs: a step's document)
    };
    await page.route(/\/api\/jobs\//, async (route) => {
      if (route.request().method() !== 'GET') return route.continue();  // a cancel goes straight through
      if (hold) {
        held.release();
        await hold.promise;
      }
      const res = await route.fetch();
      let body = await res.text();
      const j = JSON.parse(body);
      polls.push({ id: j.id, state: j.state, steps_done: j.steps_done || 0 });
      if (j.steps) streamed.set(j.id, [...(streamed.get(j.id) || []), ...j.steps]);
      if (failNext === 'now') {
        failNext = false;
        body = JSON.stringify({ id: j.id, kind: j.kind, state: 'failed', stage: 'failed', status: 500, error: 'injected by the test: the job failed after some steps' });
      } else if (halfway(j)) {
        if (holdNext) {
          holdNext = false;
          hold = deferred();
        }
        if (failNext) failNext = 'now';
      }
      await route.fulfill({ response: res, body });
    });
    const letGo = () => {
      const h = hold;
      hold = null;
      if (h) h.release();
    };
    const ask = async (fields) => {
      for (const [name, v] of Object.entries({ target: '', foil: '', position: '', generate: '', ...fields })) await page.locator(`input[name="${name}"]`).fill(v);
      await page.locator('[data-part="go"]').click();
    };
    const explainedCount = () => page.evaluate(() => Number(document.getElementById('app').dataset.explained || 0));
    // Asks for an answer and waits until the page's poll after a half-explained reply is held (the
    // page has drawn that reply), or until the page is done without one.
    const askHalfway = async (fields) => {
      const before = await explainedCount();
      held = deferred();
      holdNext = true;
      await ask(fields);
      const done = page.waitForFunction((b) => Number(document.getElementById('app').dataset.explained || 0) > b, before, { timeout: 120000 });
      done.catch(() => {});  // the race below may have been won by the hold
      await Promise.race([held.promise, done]);
    };

    n = await explainedCount();
    const t0 = Date.now();
    await askHalfway({ prompt: ANSWER_PROMPT, generate: String(ANSWER_N) });
    let st = await stripState(page);
    check(hold !== null && st && st.state === 'streaming', 'the answer\'s strip shows while the job runs (a poll saw it half explained)', JSON.stringify(st));
    if (!hold) throw new Error('the job finished between two polls: no streaming to see (give it more tokens)');
    check(st.explained >= 1 && st.pending >= 1 && st.explained + st.pending === st.total && st.pending_disabled && st.summed_disabled,
      `${st.explained} of ${st.total} tokens explained, the rest pending (disabled), "summed" waits`, JSON.stringify(st));
    check(st.progress.includes(`step ${st.explained} of ${st.total} explained`) && st.status.includes(`step ${st.explained} of ${st.total}`),
      'the progress line and the status line say which step it is at', `${st.progress} | ${st.status}`);
    const pendingTexts = st.texts;
    // A finished token opens its step's report at once, while the rest are still pending.
    const k = st.explained - 1;
    const stepDoc = streamed.get(polls.at(-1).id)[k].explanation;
    await page.locator(`[data-part="target-strip"] button[data-step="${k}"]`).click();
    await page.waitForSelector('[data-part="step"] [data-part="summary"] .tok.explained', { timeout: 10000 });
    const opened = await page.evaluate(() => ({
      pos: document.querySelector('[data-part="step"] [data-part="summary"] .tok.explained sub').innerText,
      summary: document.querySelector('[data-part="step"] [data-part="summary"]').innerText,
    }));
    st = await stripState(page);
    check(opened.pos === String(stepDoc.position) && opened.summary.includes(`id ${stepDoc.target.id}`) && st.state === 'streaming' && st.pending >= 1,
      `clicking explained token ${k} shows its step's report (position ${stepDoc.position}) while the answer still streams`, JSON.stringify(opened));
    await page.screenshot({ path: artifact('serve-answer-streaming.png'), fullPage: true });
    letGo();
    await page.waitForFunction((b) => Number(document.getElementById('app').dataset.explained || 0) > b, n, { timeout: 120000 });
    console.log(`  (the answer of ${st.total} tokens took ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    n = await explainedCount();
    st = await stripState(page);
    const result = await page.evaluate(() => window.reslens.data);
    const jobId = polls.at(-1).id;
    const lines = streamed.get(jobId);
    check(st.state === 'done' && st.pending === 0 && st.explained === result.target.tokens.length, `the finished answer has all ${st.explained} tokens`, JSON.stringify(st));
    check(polls.filter((p) => p.id === jobId && p.state === 'running' && p.steps_done > 0).length >= 1 && lines.length === result.steps.length &&
      lines.every((l, t) => l.step === t && JSON.stringify(l.explanation) === JSON.stringify(result.steps[t])),
      `the ${lines.length} streamed steps are the final document's steps`);
    check(JSON.stringify(pendingTexts.slice(0, -1)) === JSON.stringify(st.texts.slice(0, -1)), 'the pending tokens showed the answer\'s own tokens', `${pendingTexts} | ${st.texts}`);
    check((await page.locator(`[data-part="target-strip"] button[data-step="${k}"].on`).count()) === 1 && (await page.locator('[data-part="step"] [data-part="summary"] .tok.explained').count()) === 1,
      `the finished page keeps step ${k} on view`);
    // The final page equals the one of the same answer explained without streaming: the synchronous
    // /api/explain reply, and the report file `reslens explain --generate N --html` writes for it.
    const sync = await api(server.url, '/api/explain', { prompt: ANSWER_PROMPT, generate: ANSWER_N });
    check(sync.status === 200 && JSON.stringify(sync.json) === JSON.stringify(result), 'the streamed answer\'s document equals the synchronous /api/explain reply');
    await page.locator('[data-part="target-strip"] button[data-step="all"]').click();
    await page.waitForSelector('[data-chart="layer-steps"] svg');
    const html = artifact('serve-answer.html');
    execFileSync(env.cli, ['explain', MODEL, ANSWER_PROMPT, '--generate', String(ANSWER_N), '--html', html], { stdio: ['ignore', 'ignore', 'inherit'] });
    const fileDoc = JSON.parse(/id="reslens-data">(.*?)<\/script>/s.exec(fs.readFileSync(html, 'utf8'))[1]);
    delete sync.json.notes;  // the server's reply carries the notes the command line prints
    check(JSON.stringify(fileDoc) === JSON.stringify(sync.json), 'the report file holds the same document');
    const file = await browser.context.newPage();
    await file.goto(pathToFileURL(path.resolve(html)).href);
    await file.waitForSelector('[data-chart="layer-steps"] svg');
    const [streamedText, fileText] = [await reportText(page), await reportText(file)];
    const heat = (pg) => pg.evaluate(() => JSON.stringify(window.reslens.chart('layer-steps').getOption().series[0].data));
    check(streamedText === fileText && streamedText.includes('Layers × answer tokens'), 'the finished page shows what the report file of the answer shows', `${streamedText.slice(0, 300)} | ${fileText.slice(0, 300)}`);
    check((await heat(page)) === (await heat(file)), 'its layers × answer tokens heatmap is the report file\'s');
    await file.close();
    await page.screenshot({ path: artifact('serve-answer-done.png'), fullPage: true });

    // A new request takes over from an answer still streaming: the old job is polled no more, its
    // steps never reach the page (a held poll is let go after the switch, with new steps in it), and
    // the page cancels it, so the server stops it at a step boundary instead of finishing it.
    await askHalfway({ prompt: 'Lily and Tom went', generate: String(SUPERSEDED_N) });
    // Its next poll is out and held: from here on the old job must not be polled again.
    check(hold !== null, 'the second answer streams');
    const oldJob = polls.at(-1).id;
    await page.evaluate(() => {
      window.__stale = [];
      const s = document.querySelector('[data-part="target-strip"]');
      new MutationObserver((m) => window.__stale.push(m.length)).observe(s, { attributes: true, childList: true, subtree: true });
    });
    const switchedAt = requests.length;
    await ask({ prompt: 'Once upon a time there was' });
    letGo();
    await page.waitForFunction((b) => Number(document.getElementById('app').dataset.explained || 0) > b, n, { timeout: 120000 });
    await page.waitForSelector('[data-part="report"] [data-state="ready"]');
    n = await explainedCount();
    const after = requests.slice(switchedAt).filter((u) => u.includes('/api/jobs/' + oldJob + '?'));
    const now = await page.evaluate(() => ({ kind: window.reslens.data.kind || 'explain', tokens: window.reslens.data.tokens.length, strips: document.querySelectorAll('[data-part="target-strip"]').length, stale: window.__stale.length }));
    check(after.length === 0 && now.stale === 0 && now.kind === 'explain' && now.strips === 0,
      'a new request stops polling the old answer, and none of its steps reach the page', JSON.stringify({ after, now }));
    const cancels = requests.slice(switchedAt).filter((u) => u.endsWith('/api/jobs/' + oldJob));
    let old = null;
    for (let i = 0; i < 600; ++i) {  // the server's own word on the old job (not through the page)
      old = (await api(server.url, '/api/jobs/' + oldJob)).json;
      if (old.state !== 'queued' && old.state !== 'running') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    check(cancels.length === 1 && old.state === 'cancelled' && old.steps_done >= 1 && old.steps_done < SUPERSEDED_N && !old.result,
      `the page cancels the superseded answer: the server reports it cancelled after ${old.steps_done} of its ${SUPERSEDED_N} steps`,
      JSON.stringify({ cancels, state: old.state, stage: old.stage, steps_done: old.steps_done }));

    // A job that fails after some steps: the error shows in the status line, the steps explained
    // before it stay on the strip and still open their reports.
    failNext = true;
    await ask({ prompt: ANSWER_PROMPT, generate: String(ANSWER_N) });
    await page.waitForSelector('[data-part="status"].err', { timeout: 120000 });
    st = await stripState(page);
    check(st && st.status.includes('injected by the test') && st.state === 'failed' && st.progress.includes('stopped: injected by the test') && st.explained >= 1,
      `an error mid-stream shows in the status line, ${st && st.explained} explained tokens stay`, JSON.stringify(st));
    await page.locator('[data-part="target-strip"] button[data-step="0"]').click();
    await page.waitForSelector('[data-part="step"] [data-part="summary"] .tok.explained', { timeout: 10000 });
    check(true, 'an explained token still opens its report after the failure');
    await page.screenshot({ path: artifact('serve-answer-failed.png'), fullPage: true });
    await page.unroute(/\/api\/jobs\//);
    await page.locator('input[name="generate"]').fill('');

    // The answer given as text: explained token by token after the prompt (continuation).
    n = await explainedCount();
    await ask({ prompt: 'Lily and Tom', generate: ' went to the park.' });
    await page.waitForFunction((b) => Number(document.getElementById('app').dataset.explained || 0) > b, n, { timeout: 120000 });
    n = await explainedCount();
    const given = await page.evaluate(() => window.reslens.data);
    st = await stripState(page);
    check(given.kind === 'target' && !given.generated && given.target.text === ' went to the park.' && st.state === 'done' && st.explained === given.target.tokens.length,
      `a text in the answer field is explained as the given answer (${given.target.tokens.length} tokens)`, JSON.stringify(given.target.text));
    await page.locator('input[name="generate"]').fill('');

    // A click on a predicted token explains that token.
    const second = page.locator('[data-part="preds"] .pred').nth(1);
    const id = Number(await second.getAttribute('data-id'));
    await second.click();
    await page.waitForFunction((want) => window.reslens.data && window.reslens.data.target.id === want, id, { timeout: 60000 });
    n = await page.evaluate(() => Number(document.getElementById('app').dataset.explained));
    check(true, `clicking a predicted token explains it (id ${id})`);

    // A bad request: the error shows, and the next request works.
    await page.locator('input[name="position"]').fill('99');
    await page.locator('[data-part="go"]').click();
    await page.waitForSelector('[data-part="status"].err', { timeout: 30000 });
    check((await page.locator('[data-part="status"]').innerText()).includes('out of range'), 'a bad position shows the server\'s error');
    await page.screenshot({ path: artifact('serve-error.png') });
    await page.locator('input[name="position"]').fill('');
    await page.locator('input[name="target"]').fill('');
    n = await explainTyped(page, 'Lily and Tom', n);
    check(n > 0 && (await page.evaluate(() => window.reslens.data.tokens.length)) > 2, 'the server keeps serving after the error');

    const unexpected = errors.filter((e) => !e.includes('status of 400'));
    check(unexpected.length === 0, 'no console errors (besides the 400 asked for)', unexpected.join(' | '));
    const foreign = requests.filter((u) => !u.startsWith(server.url) && !u.startsWith('data:'));
    check(foreign.length === 0, 'the page requests only its own server', foreign.join(' '));
    await page.close();
  },
  async () => {
    if (browser) await browser.close();
    if (server) {
      const r = await server.stop();
      check(r.code === 0, 'the server stops cleanly on SIGTERM', JSON.stringify(r));
    }
  },
);
