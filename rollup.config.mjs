import typescript from '@rollup/plugin-typescript';
import { nodeResolve } from '@rollup/plugin-node-resolve';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
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

// The worker bundle as a string, for dist/shadenet.js. Rollup builds the configs below in
// order, so dist/worker.js is fresh when this reads it. Its source map comment is dropped:
// it would resolve against a blob: URL.
const WORKER_SOURCE = 'shadenet:worker-source';
const inlineWorker = () => ({
  name: 'inline-worker',
  resolveId: (id) => (id === WORKER_SOURCE ? '\0' + WORKER_SOURCE : null),
  load(id) {
    if (id !== '\0' + WORKER_SOURCE) return null;
    const source = readFileSync('dist/worker.js', 'utf8').replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n');
    return `export default ${JSON.stringify(source)};`;
  },
});

const plugins = (outDir, browser = true) => [wgsl(), assemblyScript(), nodeResolve({ browser }), typescript({ tsconfig: './tsconfig.json', declaration: false, outDir, noEmitOnError: true })];

// The TypeScript plugin's source paths come out a directory too high (relative to its
// outDir, then resolved from the source file); climb down until the file is found.
const sourcemapPathTransform = (source, mapPath) => {
  while (source.startsWith('../') && !existsSync(resolve(dirname(mapPath), source))) source = source.slice(3);
  return source;
};

// Source maps embed their sources (rollup's default), so the package needs no .ts files.
const bundle = (input, file, extra = []) => ({
  input,
  output: { file, format: 'es', sourcemap: true, sourcemapPathTransform },
  plugins: [...plugins(dirname(file)), ...extra],
});

// Node entries: Node's built-ins and the optional `webgpu` package stay imports.
const nodeBundle = (input, file, extra = []) => ({
  input,
  output: { file, format: 'es', sourcemap: true, sourcemapPathTransform },
  external: (id) => id.startsWith('node:') || id === 'webgpu',
  plugins: [...plugins(dirname(file), false), ...extra],
});

// Type declarations come from `tsc -p tsconfig.build.json` (see the build script) into
// dist/types; the entry .d.ts files point at the facade's (the Node entry's at its own).
const typesEntries = (fileNames = ['index.d.ts', 'shadenet.d.ts'], entry = 'index') => ({
  name: 'types-entries',
  generateBundle() {
    for (const fileName of fileNames) this.emitFile({ type: 'asset', fileName, source: `export * from './types/lib/${entry}.js';\n` });
  },
});

export default [
  bundle('lib/index.ts', 'dist/index.js', [typesEntries()]),
  bundle('worker/index.ts', 'dist/worker.js'),
  bundle('lib/standalone.ts', 'dist/shadenet.js', [inlineWorker()]),
  nodeBundle('lib/node.ts', 'dist/node.js', [typesEntries(['node.d.ts'], 'node')]),
  nodeBundle('worker/node.ts', 'dist/node-worker.js'),
  // Worker-internal modules that tests exercise directly: built outside dist/ so they never ship.
  bundle('test/safetensors-entry.ts', 'build/test/safetensors.js'),
  bundle('test/checkpoint-store-entry.ts', 'build/test/checkpoint-store.js'),
];
