// `reslens serve` under bounded concurrent load on loopback: 16 clients x 10 requests over every
// endpoint (synchronous and as polled jobs), each answer compared with the answer the same request
// got alone; bad requests (over the size limit, malformed JSON, unknown fields, out-of-range
// indices) mixed in get a 4xx JSON error; the server answers throughout and stops cleanly. Bounded
// in count (176 requests + polls) and time (each request 120 s, the whole test 240 s). No browser.
import { sharedPath, check, main, startServer, api } from './lib.mjs';

let server = null;

const P1 = 'Once upon a time';
const P2 = 'Lily and Tom went to the park';
const P3 = 'The little dog';

// The mixed workload: [endpoint, body].
const GOOD = [
  ['predict', { prompt: P1 }],
  ['predict', { prompt: P2, top_k: 5 }],
  ['explain', { prompt: P1, top: 10 }],
  ['explain', { prompt: P2, top: 10 }],
  ['explain', { prompt: P3, position: 2, top: 10 }],
  ['explain', { prompt: P1, target: ' there', foil: ',', top: 10 }],
  ['head', { prompt: P2, layer: 2, head: 3 }],
  ['head', { prompt: P1, layer: 4, head: 0, k: 5 }],
  ['neuron', { prompt: P1, layer: 1, neuron: 101 }],
  ['neuron', { prompt: P2, layer: 2, head: 6, dim: 6, pos: 3 }],
  ['ablate', { prompt: P1, heads: [[1, 0], [2, 5]] }],
  ['ablate', { prompt: P3, level: 'activation', attn: [[2, 1, 3, 1]], ffn: [[0, 5]] }],
];

const BAD = [
  ['too large', 'predict', { raw: JSON.stringify({ prompt: 'x'.repeat(70 * 1024) }) }, 413],
  ['malformed JSON', 'explain', { raw: '{"prompt": "Once' }, 400],
  ['unknown field', 'explain', { body: { prompt: P1, temperature: 2 } }, 400],
  ['layer out of range', 'head', { body: { prompt: P1, layer: 5, head: 0 } }, 400],
  ['neuron out of range', 'neuron', { body: { prompt: P1, layer: 0, neuron: 172 } }, 400],
  ['source position after P', 'neuron', { body: { prompt: P3, layer: 0, head: 0, dim: 0, pos: 7 } }, 400],
  ['wrong type', 'ablate', { body: { prompt: P1, heads: 'all' } }, 400],
  ['no such endpoint', 'nothing', { body: {} }, 404],
];

// Strips nothing: answers must be identical, bit for bit, to the single-request answers.
async function ask(endpoint, body, asJob) {
  if (!asJob) return api(server.url, '/api/' + endpoint, body);
  const sub = await api(server.url, `/api/${endpoint}?async=1`, body);
  if (sub.status !== 202) return sub;
  const url = `/api/jobs/${sub.json.job}`;
  for (let i = 0; i < 2400; ++i) {
    const s = await api(server.url, url);
    if (s.status !== 200) return s;
    if (s.json.state === 'done') return { status: 200, json: s.json.result, text: JSON.stringify(s.json.result) };
    if (s.json.state === 'failed') return { status: s.json.status, json: { error: s.json.error }, text: '' };
    await new Promise((r) => setTimeout(r, 50));
  }
  return { status: 0, json: null, text: 'job never finished' };
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

main(
  async () => {
    server = await startServer(['--model', sharedPath('models/stories260K/stories260K.gguf')]);
    console.log(`server on ${server.url}`);

    // The answers alone, one at a time.
    const expected = [];
    for (const [ep, body] of GOOD) {
      const r = await api(server.url, '/api/' + ep, body);
      if (!check(r.status === 200, `alone: ${ep} ${JSON.stringify(body).slice(0, 60)}`, r.text.slice(0, 200))) return;
      expected.push(r.json);
    }

    // 16 clients x 10 requests, mixed endpoints, some as polled jobs, bad requests in between.
    const CLIENTS = 16;
    const EACH = 10;
    const t0 = Date.now();
    const results = await Promise.all(
      Array.from({ length: CLIENTS }, async (_, c) => {
        const out = { ok: 0, wrong: [], badOk: 0, badWrong: [] };
        for (let i = 0; i < EACH; ++i) {
          const k = (c * 5 + i * 7) % GOOD.length;
          const r = await ask(GOOD[k][0], GOOD[k][1], (c + i) % 3 === 0);
          if (r.status === 200 && same(r.json, expected[k])) out.ok++;
          else out.wrong.push(`${GOOD[k][0]}#${k}: ${r.status} ${String(r.text).slice(0, 120)}`);
          if (i % 5 === 2) {
            const [what, ep, req, status] = BAD[(c + i) % BAD.length];
            const b = await api(server.url, '/api/' + ep, req.body, { raw: req.raw ?? null });
            if (b.status === status && b.json && typeof b.json.error === 'string') out.badOk++;
            else out.badWrong.push(`${what}: ${b.status} ${b.text.slice(0, 120)}`);
          }
        }
        return out;
      }),
    );
    const secs = (Date.now() - t0) / 1000;
    const ok = results.reduce((a, r) => a + r.ok, 0);
    const wrong = results.flatMap((r) => r.wrong);
    const badOk = results.reduce((a, r) => a + r.badOk, 0);
    const badWrong = results.flatMap((r) => r.badWrong);
    console.log(`  ${CLIENTS * EACH} requests and ${badOk + badWrong.length} bad ones in ${secs.toFixed(1)} s`);
    check(ok === CLIENTS * EACH, `all ${CLIENTS * EACH} concurrent answers equal the single-request answers`, wrong.slice(0, 5).join(' | '));
    check(badWrong.length === 0 && badOk === CLIENTS * 2, `all ${CLIENTS * 2} bad requests got their 4xx JSON error`, badWrong.slice(0, 5).join(' | '));

    // Every kind of bad request once more, then the server still answers correctly.
    for (const [what, ep, req, status] of BAD) {
      const b = await api(server.url, '/api/' + ep, req.body, { raw: req.raw ?? null });
      check(b.status === status && b.json && typeof b.json.error === 'string', `${what} -> ${status} {"error": ...}`, `${b.status} ${b.text.slice(0, 160)}`);
    }
    const again = await api(server.url, '/api/explain', GOOD[2][1]);
    check(again.status === 200 && same(again.json, expected[2]), 'after all that, an explanation is still right');
    check(server.alive(), 'the server is still running');
  },
  async () => {
    if (server) {
      const r = await server.stop();
      check(r.code === 0, 'the server stops cleanly on SIGTERM', JSON.stringify(r) + ' ' + server.stderr());
    }
  },
);
