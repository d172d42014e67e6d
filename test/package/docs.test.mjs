// The API reference builds from the doc comments (`npm run docs` runs the same
// TypeDoc configuration, typedoc.json), and the public types hold no `any`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Application } from 'typedoc';

const repo = fileURLToPath(new URL('../..', import.meta.url));
let tmp, app, project;

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'shadenet-docs-'));
  process.chdir(repo);
  app = await Application.bootstrapWithPlugins({ options: join(repo, 'typedoc.json'), out: join(tmp, 'docs'), logLevel: 'Error' });
  project = await app.convert();
});

after(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test('TypeDoc converts the public surface without errors and writes the reference', { timeout: 180_000 }, async () => {
  assert.ok(project, 'TypeDoc converted the project');
  await app.generateDocs(project, join(tmp, 'docs'));
  assert.equal(app.logger.hasErrors(), false);
  const index = await readFile(join(tmp, 'docs', 'index.html'), 'utf8');
  assert.match(index, /Use it in your app/, 'the README is the reference front page');
  const fitOptions = await readFile(join(tmp, 'docs', 'interfaces', 'FitOptions.html'), 'utf8');
  assert.match(fitOptions, /Aborting stops training after the current batch/);
});

test('no public type is `any`', () => {
  const found = [];
  const walk = (node, path) => {
    if (Array.isArray(node)) return node.forEach((n) => walk(n, path));
    if (!node || typeof node !== 'object') return;
    if (node.type === 'intrinsic' && node.name === 'any') found.push(path.join('.'));
    // TypeScript's own Iterable<T, TReturn = any, TNext = any>: only T is ours.
    if (node.type === 'reference' && /^(Async)?(Iterable|Iterator|IterableIterator|Generator)$/.test(node.name)) return walk(node.typeArguments?.[0], path);
    const here = typeof node.name === 'string' && node.variant !== undefined ? [...path, node.name] : path;
    for (const [k, v] of Object.entries(node)) if (k !== 'sources') walk(v, here);
  };
  walk(app.serializer.projectToObject(project, repo), []);
  assert.deepEqual([...new Set(found)], []);
});
