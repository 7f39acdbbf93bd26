// The explorer of `reslens serve` in a real browser: a prompt typed into the page is explained
// (layer bars and heatmap cells for the model), a click on a heatmap cell shows that head's source
// positions with their token views, a click on a neuron shows its vocabulary tokens, its ablation
// and (attention neurons) its query neurons, the circuit from /api/graph is drawn and a click on a
// node explains it, a click on a predicted token explains that token, and a
// bad request shows its error while the server keeps serving. Screenshots of each view go to
// $RESLENS_WEB_ARTIFACTS.
import { artifact, sharedPath, check, main, launchBrowser, watchedPage, startServer, clickHeatmapCell } from './lib.mjs';

let browser = null;
let server = null;

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
    server = await startServer(['--model', sharedPath('models/stories260K/stories260K.gguf')]);
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
