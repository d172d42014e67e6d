import typescript from '@rollup/plugin-typescript';
import { nodeResolve } from '@rollup/plugin-node-resolve';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import asc from 'assemblyscript/asc';

// WGSL files become string exports so the worker bundle is self-contained.
const wgsl = () => ({
  name: 'wgsl',
  load(id) {
    if (!id.endsWith('.wgsl')) return null;
    return `export default ${JSON.stringify(readFileSync(id, 'utf8'))};`;
  },
});

// The wasm backend's hand-written kernels: `import bytes from './assembly/kernels.wasm'`
// compiles assembly/kernels.ts with AssemblyScript at build time (kernels-shared.wasm:
// the same code importing a shared memory, for threads) and inlines the bytes.
const assemblyScript = () => ({
  name: 'assemblyscript',
  resolveId(source, importer) {
    return source.endsWith('.wasm') && importer ? join(dirname(importer), source) : null;
  },
  async load(id) {
    if (!id.endsWith('.wasm')) return null;
    const shared = id.endsWith('-shared.wasm');
    const entry = id.replace(/(-shared)?\.wasm$/, '.ts');
    this.addWatchFile(entry);
    let binary = null;
    const stderr = [];
    const { error } = await asc.main([
      entry, '-O3', '--enable', 'simd', '--enable', 'threads', '--runtime', 'stub', '--noAssert', '--use', 'abort=',
      '--importMemory', '--initialMemory', '1', '--maximumMemory', '32768', '--memoryBase', '1024', ...(shared ? ['--sharedMemory'] : []),
      '--outFile', 'kernels.wasm',
    ], {
      writeFile: (name, contents) => { if (name.endsWith('.wasm')) binary = contents; },
      stderr: { write: (s) => stderr.push(String(s)) },
    });
    if (error || !binary) throw new Error(`AssemblyScript failed on ${entry}:\n${stderr.join('')}${error ?? ''}`);
    return `export default Uint8Array.from(atob(${JSON.stringify(Buffer.from(binary).toString('base64'))}), (c) => c.charCodeAt(0));`;
  },
});

const plugins = () => [wgsl(), assemblyScript(), nodeResolve({ browser: true }), typescript({ tsconfig: './tsconfig.json', declaration: false, outDir: 'dist', noEmitOnError: true })];

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
