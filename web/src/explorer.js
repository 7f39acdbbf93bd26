// The explorer served by `reslens serve`: a prompt form on top of the report's cards. It talks to
// the JSON API under /api/ (docs/report.md): /api/predict for the next tokens, /api/explain as a
// job polled at /api/jobs/ID (so a long explanation shows its progress, and an answer's steps show
// as they are explained), /api/head and /api/neuron when a head or a neuron is clicked, /api/graph
// for the circuit section (again whenever its pruning shares change).
import { esc, tokenHtml, pct } from './format.js';
import { renderReport } from './report.js';
import { renderTarget, streamTarget } from './target.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A server started with --token prints its address with "#token=..." (a fragment never reaches the
// server, its logs or a Referer); the page keeps it for the tab and sends it with every API call.
function apiToken() {
  const m = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
  if (m) {
    sessionStorage.setItem('reslens-token', decodeURIComponent(m[1]));
    history.replaceState(null, '', window.location.pathname + window.location.search);
  }
  return sessionStorage.getItem('reslens-token');
}

async function call(path, body) {
  const headers = {};
  const token = apiToken();
  if (token) headers.Authorization = 'Bearer ' + token;
  const init = body === undefined ? { headers } : { method: 'POST', headers: { ...headers, 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
  const r = await fetch(path, init);
  let j;
  try {
    j = await r.json();
  } catch {
    j = { error: `HTTP ${r.status}` };
  }
  if (!r.ok) throw new Error(j.error || `HTTP ${r.status}`);
  return j;
}

// Asks the server to cancel a job nobody waits for any more (DELETE /api/jobs/ID), so the next
// request does not queue behind it. Fire and forget: a job that finished meanwhile answers 409,
// and no answer of this call concerns the request that took over.
function cancelJob(job) {
  const headers = {};
  const token = apiToken();
  if (token) headers.Authorization = 'Bearer ' + token;
  fetch('/api/jobs/' + encodeURIComponent(job), { method: 'DELETE', headers }).catch(() => {});
}

// Cancels a job of a page that is going away (closed, reloaded, navigated from), with a request the
// browser still sends once the page is gone. navigator.sendBeacon is made for that, but it can only
// POST and set no header: it sends POST /api/jobs/ID/cancel with no body, which the server honours
// without the token (the job's 128-bit id is the credential; docs/report.md, "Cancelling a job").
// fetch(..., {keepalive: true}) sends the same request where sendBeacon is missing or refuses.
const leftJobs = new Set();  // jobs cancelled because the page went away
function cancelOnLeave(job) {
  leftJobs.add(job);
  const url = '/api/jobs/' + encodeURIComponent(job) + '/cancel';
  try {
    if (navigator.sendBeacon && navigator.sendBeacon(url)) return;
  } catch {
    // a browser that refuses the beacon: the fetch below
  }
  fetch(url, { method: 'POST', keepalive: true }).catch(() => {});
}

// Submits a request as a job and polls it: onSteps gets an answer's explained steps that are new
// since the last poll (?from=K asks only for those), onProgress every status document, onJob the
// job's id once it is queued. It stops polling, and returns null, as soon as live() is false (a
// newer request took over the page and cancels the job; one superseded before its id came back is
// cancelled here).
async function runJob(path, body, { onProgress, onSteps = () => {}, onJob = () => {}, live = () => true }) {
  const { job } = await call(path + '?async=1', body);
  if (!live()) {
    cancelJob(job);
    return null;
  }
  onJob(job);
  let from = 0;  // the steps already handed to onSteps
  for (let delay = 80; ; delay = Math.min(400, delay * 1.5)) {
    if (!live()) return null;
    const s = await call('/api/jobs/' + encodeURIComponent(job) + '?from=' + from);
    if (!live()) return null;
    if (s.steps && s.steps.length) {
      from = s.steps_done;
      onSteps(s.steps);
    }
    onProgress(s);
    if (s.state === 'done') return s.result;
    if (s.state === 'failed') throw new Error(s.error || 'the job failed');
    if (s.state === 'cancelled') {
      // A page restored from the back/forward cache comes back to a job its leaving cancelled.
      throw new Error(leftJobs.has(job) ? 'the request was cancelled when the page was left: press Explain to ask again' : 'the request was cancelled');
    }
    await sleep(delay);
  }
}

function parseToken(v) {
  v = v.trim() === '' ? '' : v;
  if (v === '') return undefined;
  if (/^#?\d+$/.test(v.trim())) return Number(v.trim().replace('#', ''));
  return v;
}

export function startExplorer(app) {
  document.title = 'reslens explorer';
  app.innerHTML = `
    <header class="topbar"><div class="brand">res<span>lens</span> explorer</div><div class="model-line" data-part="model">loading the model summary…</div></header>
    <main class="page">
      <section class="card" data-part="ask">
        <form class="ask" data-part="form" autocomplete="off">
          <label>prompt<input name="prompt" placeholder="Type a prompt, e.g. Once upon a time" required></label>
          <label>target<input name="target" placeholder="top prediction" title="a token's text (' Paris') or id (#1234); empty: the top prediction"></label>
          <label>foil<input name="foil" placeholder="none" title="a contrast token: scores become log p(target) − log p(foil)"></label>
          <label>position<input name="position" placeholder="last" title="the position to explain (0-based, or −1 for the last)"></label>
          <label>answer<input name="generate" placeholder="next token" title="a number N: generate up to N tokens and explain every one; other text (' Paris.'): explain that answer after the prompt, token by token. The answer shows as a token strip while it is explained. Empty: the next token only"></label>
          <button class="btn" type="submit" data-part="go">Explain</button>
        </form>
        <div class="status" data-part="status"></div>
        <div class="preds" data-part="preds"></div>
      </section>
      <div data-part="report"><p class="hint">Type a prompt and press Explain. Then click a head in the heatmap for its source positions, or a neuron for its vocabulary tokens, its query neurons and an ablation.</p></div>
    </main>`;
  const $ = (s) => app.querySelector(s);
  const form = $('[data-part="form"]');
  const status = (html, err = false) => {
    const el = $('[data-part="status"]');
    el.innerHTML = html;
    el.classList.toggle('err', err);
  };

  call('/api/info')
    .then((info) => {
      const m = info.model;
      $('[data-part="model"]').innerHTML = `<code>${esc(m.path)}</code> · ${esc(m.architecture)} · ${m.n_layers} layers × ${m.n_heads} heads · d_model ${m.d_model} · vocab ${m.d_vocab}` +
        (info.chat ? ` · prompts laid out as <code>${esc(info.chat)}</code> chat turns` : '');
      if (info.example_prompt && !form.prompt.value) form.prompt.placeholder = info.example_prompt;
    })
    .catch((e) => status(esc(e.message), true));

  // Each request takes the page over: `seq` counts them, and a request whose number is no longer
  // current stops polling and draws nothing more (no stale steps mixed into the new page). Its job,
  // if still queued or running (`streaming`), is cancelled first: the single worker is then free for
  // the new request instead of finishing an answer nobody reads.
  let seq = 0;
  let streaming = null;  // the current request's job id while it is queued or running
  async function explain(req) {
    const mine = ++seq;
    if (streaming) cancelJob(streaming);
    streaming = null;
    let stream = null;  // an answer's strip, while its steps stream
    const t0 = performance.now();
    $('[data-part="go"]').disabled = true;
    status('<span class="spinner"></span>predicting…');
    try {
      const pred = await call('/api/predict', { prompt: req.prompt, top_k: 10 });
      if (mine !== seq) return;
      $('[data-part="preds"]').innerHTML =
        '<span class="muted" style="align-self:center;font-size:12px">next token:</span>' +
        pred.top
          .map((t) => `<button class="pred" type="button" data-id="${t.id}" title="explain this token (id ${t.id})">${tokenHtml(t.text)}<span class="p">${pct(t.prob)}</span></button>`)
          .join('');
      // An answer's steps as the server explains them: the strip appears with the first one. The
      // button is free again meanwhile, so a new request can take over from a long answer.
      const result = await runJob('/api/explain', req, {
        live: () => mine === seq,
        onJob: (job) => (streaming = job),
        onSteps: (steps) => {
          if (!stream) {
            stream = streamTarget($('[data-part="report"]'));
            $('[data-part="go"]').disabled = false;
          }
          stream.add(steps);
        },
        onProgress: (s) => {
          const where = s.state === 'queued' ? `queued (${s.queue_position} ahead)` : stream && s.state === 'running' ? stream.progress() : esc(s.stage || s.state);
          status(`<span class="spinner"></span>${where} · ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        },
      });
      if (mine !== seq) return;
      if (window.reslens) window.reslens.data = result;
      if (result.kind === 'target') {
        // A whole answer: its token strip, the summed scores and each token's report (offline views).
        if (stream) stream.finish(result);
        else renderTarget($('[data-part="report"]'), result, {});
        const notes = (result.notes || []).map((n) => `<br><span class="muted">${esc(n)}</span>`).join('');
        status(`explained the answer ${tokenHtml(result.target.text)} (${result.target.tokens.length} tokens) in ${((performance.now() - t0) / 1000).toFixed(1)} s${notes}`);
        app.dataset.explained = String(mine);
        return;
      }
      const circuitCtx = { prompt: req.prompt, target: result.target.id, position: result.position };  // /api/graph takes no foil
      const ctx = { ...circuitCtx };
      if (result.foil) ctx.foil = result.foil.id;
      const viaHead = result.top_heads.length ? [result.top_heads[0].layer, result.top_heads[0].head] : null;
      const shown = renderReport($('[data-part="report"]'), result, {
        graph: null,  // the circuit section, filled when /api/graph answers
        graphApi: (shares) => call('/api/graph', { ...circuitCtx, ...shares }),
        api: {
          head: (layer, head) => call('/api/head', { ...ctx, layer, head }),
          neuron: (kind, e) => {
            const body = kind === 'attn'
              ? { ...ctx, layer: e.layer, head: e.head, dim: e.dim, pos: e.pos }
              : { ...ctx, layer: e.layer, neuron: e.neuron };
            if (kind === 'ffn' && e.coef === undefined && viaHead) body.via_head = viaHead;
            return call('/api/neuron', body);
          },
        },
      });
      // The circuit of the same prediction, after the report is on screen (it explains once more),
      // with the server's default pruning; its controls ask again with other shares.
      shown.loadCircuit({});
      const notes = (result.notes || []).map((n) => `<br><span class="muted">${esc(n)}</span>`).join('');
      status(`explained position ${result.position} → ${tokenHtml(result.target.text)} in ${((performance.now() - t0) / 1000).toFixed(1)} s${notes}`);
      app.dataset.explained = String(mine);
    } catch (e) {
      if (mine === seq) {
        status(esc(e.message), true);
        if (stream) stream.fail(e.message);  // the steps explained before the error stay
      }
    } finally {
      if (mine === seq) {
        streaming = null;  // finished (or failed): nothing left to cancel
        $('[data-part="go"]').disabled = false;
      }
    }
  }

  // Leaving the page cancels the job it still waits for, as a new request does, so the next visitor
  // does not wait behind an answer nobody reads. pagehide fires when the tab is closed, reloaded or
  // navigated away from, in every browser (also when the page goes into the back/forward cache,
  // whence it may come back: its poll then reads the job cancelled and says so); unload does not
  // fire reliably and keeps the page out of that cache. A tab merely hidden (visibilitychange) is
  // not left: its answer goes on streaming for when it is looked at again.
  window.addEventListener('pagehide', () => {
    if (streaming) cancelOnLeave(streaming);
  });

  function request() {
    const req = { prompt: form.prompt.value };
    const t = parseToken(form.target.value);
    const f = parseToken(form.foil.value);
    const p = form.position.value.trim();
    if (t !== undefined) req.target = t;
    if (f !== undefined) req.foil = f;
    if (p !== '') req.position = Number(p);
    // The answer: digits ask for that many generated tokens; any other text is the answer itself.
    const a = form.generate.value;
    if (/^\s*\d+\s*$/.test(a)) req.generate = Number(a.trim());
    else if (a.trim() !== '') req.continuation = a;
    return req;
  }
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!form.prompt.value && form.prompt.placeholder.startsWith('Type')) return;
    if (!form.prompt.value) form.prompt.value = form.prompt.placeholder;
    const req = request();
    history.replaceState(null, '', '#' + new URLSearchParams(Object.entries(req).map(([k, v]) => [k, String(v)])).toString());
    explain(req);
  });
  $('[data-part="preds"]').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-id]');
    if (!b) return;
    form.target.value = '#' + b.dataset.id;
    form.requestSubmit();
  });

  // A link with #prompt=...&target=... explains at once.
  const h = new URLSearchParams(location.hash.slice(1));
  if (h.get('prompt')) {
    form.prompt.value = h.get('prompt');
    if (h.get('target')) form.target.value = /^\d+$/.test(h.get('target')) ? '#' + h.get('target') : h.get('target');
    if (h.get('foil')) form.foil.value = /^\d+$/.test(h.get('foil')) ? '#' + h.get('foil') : h.get('foil');
    if (h.get('position')) form.position.value = h.get('position');
    if (h.get('generate') || h.get('continuation')) form.generate.value = h.get('generate') || h.get('continuation');
    form.requestSubmit();
  }
}
