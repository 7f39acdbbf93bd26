// Bundles the page for embedding: dist/reslens.js (one minified IIFE with Apache ECharts inside),
// dist/reslens.css and dist/template.html. Run by the CMake build as
//   node web/build.mjs --node-modules BUILD/web/node_modules --out BUILD/web/dist
// (the packages come from `npm ci` in the build folder, so the source tree stays clean).
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? path.resolve(process.argv[i + 1]) : dflt;
};
const nodeModules = arg('--node-modules', path.join(here, 'node_modules'));
const out = arg('--out', path.join(here, 'dist'));
const require = createRequire(path.join(nodeModules, 'noop.js'));
const esbuild = require('esbuild');

fs.mkdirSync(out, { recursive: true });
const common = { bundle: true, minify: true, write: false, logLevel: 'warning', legalComments: 'none', nodePaths: [nodeModules] };
const js = await esbuild.build({
  ...common,
  entryPoints: [path.join(here, 'src/main.js')],
  format: 'iife',
  target: ['chrome100', 'firefox100', 'safari15'],
  // ECharts' own dev-mode checks are off in the bundle.
  define: { __DEV__: 'false', 'process.env.NODE_ENV': '"production"' },
});
const css = await esbuild.build({ ...common, entryPoints: [path.join(here, 'src/style.css')], loader: { '.css': 'css' } });
const template = fs.readFileSync(path.join(here, 'src/template.html'), 'utf8');

const jsText = js.outputFiles[0].text;
const cssText = css.outputFiles[0].text;
// The bundle is inlined in <script> and <style>: neither may close its element early, and none may
// hold the template's placeholders.
if (/<\/script/i.test(jsText)) throw new Error('the bundle contains "</script"');
if (/<\/style/i.test(cssText)) throw new Error('the stylesheet contains "</style"');
for (const t of [jsText, cssText]) {
  if (t.includes('@@RESLENS_')) throw new Error('a bundle contains a template placeholder');
}
for (const p of ['@@RESLENS_TITLE@@', '@@RESLENS_STYLE@@', '@@RESLENS_DATA@@', '@@RESLENS_SCRIPT@@']) {
  if (template.split(p).length !== 2) throw new Error(`template.html must hold ${p} exactly once`);
}
const write = (name, text) => {
  const f = path.join(out, name);
  if (!fs.existsSync(f) || fs.readFileSync(f, 'utf8') !== text) fs.writeFileSync(f, text);
};
write('reslens.js', jsText);
write('reslens.css', cssText);
write('template.html', template);
console.log(`web bundle: reslens.js ${(jsText.length / 1024).toFixed(0)} KiB, reslens.css ${(cssText.length / 1024).toFixed(1)} KiB`);
