import typescript from '@rollup/plugin-typescript';
import { nodeResolve } from '@rollup/plugin-node-resolve';
import { readFileSync } from 'node:fs';

// WGSL files become string exports so the worker bundle is self-contained.
const wgsl = () => ({
  name: 'wgsl',
  load(id) {
    if (!id.endsWith('.wgsl')) return null;
    return `export default ${JSON.stringify(readFileSync(id, 'utf8'))};`;
  },
});

const plugins = () => [wgsl(), nodeResolve({ browser: true }), typescript({ tsconfig: './tsconfig.json', declaration: false, outDir: 'dist', noEmitOnError: true })];

const bundle = (input, file, extra = []) => ({ input, output: { file, format: 'es', sourcemap: true }, plugins: [...plugins(), ...extra] });

// Type declarations come from `tsc --emitDeclarationOnly` (see the build script) into dist/types;
// dist/index.d.ts points at the facade's.
const typesEntry = () => ({
  name: 'types-entry',
  generateBundle() {
    this.emitFile({ type: 'asset', fileName: 'index.d.ts', source: "export * from './types/lib/index.js';\n" });
  },
});

export default [
  bundle('lib/index.ts', 'dist/index.js', [typesEntry()]),
  bundle('worker/index.ts', 'dist/worker.js'),
  // Worker-internal modules that tests exercise directly.
  bundle('test/safetensors-entry.ts', 'dist/test-safetensors.js'),
  bundle('test/checkpoint-store-entry.ts', 'dist/test-checkpoint-store.js'),
];
