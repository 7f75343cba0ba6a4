// Builds the playground's assets into ../assets, where internal/playground
// embeds them: playground.js and playground.css (minified) and
// THIRD_PARTY_LICENSES.txt, the licences of every package in the bundle
// (found from esbuild's metafile, so it lists exactly what was bundled).
//
//   npm ci && npm run build      (or `make playground` at the root)
import { build } from 'esbuild';
import { readFileSync, readdirSync, writeFileSync, statSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'assets');

// GraphiQL's stylesheet embeds Roboto and Fira Code as data URLs (about
// 350 kB of the 400 kB); drop those @font-face rules (page.css names the
// system fallbacks). Fails the build when there are none to drop, so that an
// upgrade that changes how the fonts come is noticed.
const dropEmbeddedFonts = {
  name: 'drop-embedded-fonts',
  setup(b) {
    b.onLoad({ filter: /graphiql[\\/]dist[\\/]style\.css$/ }, (args) => {
      const css = readFileSync(args.path, 'utf8');
      const faces = css.match(/@font-face\s*\{[^}]*\}/g) || [];
      if (faces.length === 0) throw new Error(`no @font-face in ${args.path}: check build.mjs`);
      const stripped = css.replace(/@font-face\s*\{[^}]*\}/g, '');
      if (stripped.includes('data:font')) throw new Error(`an embedded font is left in ${args.path}`);
      return { contents: stripped, loader: 'css' };
    });
  },
};

const result = await build({
  entryPoints: [join(here, 'main.js')],
  outfile: join(out, 'playground.js'),
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  define: { 'process.env.NODE_ENV': '"production"' },
  // The licences go in THIRD_PARTY_LICENSES.txt instead of the bundle.
  legalComments: 'none',
  banner: {
    js: '/*! Parley playground. Licences of the bundled packages: /playground/licenses.txt */',
    css: '/*! Parley playground. Licences of the bundled packages: /playground/licenses.txt */',
  },
  plugins: [dropEmbeddedFonts],
  metafile: true,
  logLevel: 'warning',
});

// Every package directory under node_modules that contributed an input.
const pkgs = new Map();
for (const input of Object.keys(result.metafile.inputs)) {
  const parts = input.split('/');
  const i = parts.lastIndexOf('node_modules');
  if (i < 0) continue;
  const n = parts[i + 1].startsWith('@') ? 2 : 1;
  const dir = join(here, ...parts.slice(0, i + 1 + n));
  if (!pkgs.has(dir)) pkgs.set(dir, JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')));
}

const licenceFile = (dir) => readdirSync(dir)
  .filter((f) => /^(licen[cs]e|copying|notice)/i.test(f) && statSync(join(dir, f)).isFile())
  .sort();

// A package that ships no licence file is covered by the licence of a
// bundled package from the same repository (the graphiql and react
// monorepos), when there is one; otherwise its package.json's licence and
// author are named.
const repoOf = (pkg) => String((pkg.repository && pkg.repository.url) || pkg.repository || '')
  .replace(/^git\+/, '').replace(/\.git$/, '').replace(/#.*$/, '').toLowerCase();
const licenceText = (dir) => {
  const files = licenceFile(dir);
  return files.length ? files.map((f) => readFileSync(join(dir, f), 'utf8').trim()).join('\n\n') : '';
};
const sections = [...pkgs.entries()]
  .sort(([, a], [, b]) => a.name.localeCompare(b.name))
  .map(([dir, pkg]) => {
    let text = licenceText(dir);
    if (!text) {
      const sibling = [...pkgs.entries()].find(([d, p]) => repoOf(p) && repoOf(p) === repoOf(pkg) && licenceText(d));
      text = sibling
        ? `(the package ships no licence file; it comes from the same repository as ${sibling[1].name}, whose licence follows)\n\n${licenceText(sibling[0])}`
        : `(the package ships no licence file; its package.json says: licence ${pkg.license}` +
          `${pkg.author ? ', author ' + (pkg.author.name || pkg.author) : ''})`;
    }
    return `${pkg.name}@${pkg.version} (${pkg.license})\n${'-'.repeat(72)}\n${text}\n`;
  });
writeFileSync(join(out, 'THIRD_PARTY_LICENSES.txt'),
  `The GraphQL playground served by Parley bundles these npm packages.\n` +
  `Their licences follow, as each package ships them.\n\n` +
  `${[...pkgs.values()].map((p) => `  ${p.name}@${p.version}`).sort().join('\n')}\n\n` +
  `${'='.repeat(72)}\n\n` + sections.join(`\n${'='.repeat(72)}\n\n`));

for (const [file, info] of Object.entries(result.metafile.outputs)) {
  console.log(`${relative(here, file).split(sep).join('/')}: ${info.bytes} bytes`);
}
console.log(`${pkgs.size} packages bundled; licences in ../assets/THIRD_PARTY_LICENSES.txt`);
