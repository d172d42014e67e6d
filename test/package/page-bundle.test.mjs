// The page's bundles hold the facade only: op specs (lib/ops) but no worker
// op code, no kernel IR or codegen and no WGSL; those ship in the worker
// bundles. Run after a build (npm test builds first).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';

const dist = new URL('../../dist/', import.meta.url);
const PAGE_ENTRIES = ['index.js', 'node.js'];
const WGSL = ['@compute', '@group(', 'var<storage', '@workgroup_size'];
// Names only kernel code uses: the elementwise table's WGSL helpers, the codegen's template marks, the random hash.
const KERNEL_CODE = ['sn_relu', 'sn_sigmoid', 'inverseSqrt(', '{{T}}', 'pcgHash', '747796405'];

for (const entry of PAGE_ENTRIES) {
  test(`dist/${entry} bundles no worker, shader or kernel source`, async () => {
    const { sources } = JSON.parse(await readFile(new URL(`${entry}.map`, dist), 'utf8'));
    assert.ok(sources.some((s) => s.endsWith('lib/ops/spec.ts')), 'the op specs are bundled (the source map lists what went in)');
    assert.deepEqual(sources.filter((s) => /(^|\/)(worker|shaders)\//.test(s)), []);
  });

  test(`dist/${entry} contains no WGSL and no kernel code`, async () => {
    const code = await readFile(new URL(entry, dist), 'utf8');
    for (const mark of [...WGSL, ...KERNEL_CODE]) assert.ok(!code.includes(mark), `dist/${entry} contains '${mark}'`);
  });
}

test('the worker bundle is where the kernels are (the marks above are real)', async () => {
  const code = await readFile(new URL('worker.js', dist), 'utf8');
  for (const mark of [...WGSL, ...KERNEL_CODE]) assert.ok(code.includes(mark), `dist/worker.js lacks '${mark}'`);
});
