// Entry point of the page: a report file carries its explanation in <script id="reslens-data">;
// without it the page is the explorer of `reslens serve`.
import { renderReport } from './report.js';
import { renderTarget } from './target.js';
import { startExplorer } from './explorer.js';
import { chartNamed } from './charts.js';

function readJson(id) {
  const el = document.getElementById(id);
  return el ? JSON.parse(el.textContent) : null;
}

function boot() {
  const app = document.getElementById('app');
  const data = readJson('reslens-data');
  // For the browser console and the tests: the explanation shown and the chart instances by name
  // (their data-chart attribute), e.g. reslens.chart('heads').getOption().
  window.reslens = { data, chart: chartNamed };
  if (data && data.kind === 'target') {
    // A target of several tokens: its token strip, the summed scores and each step's report.
    app.innerHTML = `<header class="topbar"><div class="brand">res<span>lens</span></div><div class="model-line"><code></code></div></header><main class="page" data-part="report"></main>`;
    app.querySelector('.model-line code').textContent = data.model.path;
    const prompt = data.prompt.map((t) => t.text).join('');
    document.title = `reslens: ${prompt.slice(-60)} → ${data.target.text}`;
    renderTarget(app.querySelector('[data-part="report"]'), data, { heads: readJson('reslens-heads') });
  } else if (data) {
    app.innerHTML = `<header class="topbar"><div class="brand">res<span>lens</span></div><div class="model-line"><code></code></div></header><main class="page" data-part="report"></main>`;
    app.querySelector('.model-line code').textContent = data.model.path;
    const prompt = data.tokens.slice(0, data.position + 1).map((t) => t.text).join('');
    document.title = `reslens: ${prompt.slice(-60)} → ${data.target.text}`;
    // The circuit (explain --html writes it; a page from before has none and no section).
    const graph = readJson('reslens-graph');
    const ctx = { heads: readJson('reslens-heads') };
    if (graph) ctx.graph = graph;
    renderReport(app.querySelector('[data-part="report"]'), data, ctx);
  } else {
    startExplorer(app);
  }
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
else boot();
