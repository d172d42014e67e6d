// `npm start`: serves the demos at / (this folder), the built SDK at /dist/, and the
// rest of the repository under its own paths (the bench page uses them). The demos
// themselves only load from demos/ and dist/: copy demos/ with dist/ inside it and
// they run from any static host. No dependencies beyond Node.
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const demos = fileURLToPath(new URL('.', import.meta.url));
const types = {
  '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.json': 'application/json', '.map': 'application/json',
  '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png', '.bin': 'application/octet-stream', '.safetensors': 'application/octet-stream',
  '.wasm': 'application/wasm',
};
/** Cross-origin isolation (opt-in): lets wasm backends (ours and TF.js's) run threads on shared memory. */
const isolation = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };

async function resolveFile(base, path) {
  let file = normalize(join(base, path));
  if (!file.startsWith(base)) return null;
  try {
    if ((await stat(file)).isDirectory()) file = join(file, 'index.html');
    await stat(file);
    return file;
  } catch {
    return null;
  }
}

/**
 * Serves demos/ at / (falling back to the repository root), or else the folders `bases` in
 * that order, on loopback `port` (0: any free one); resolves with the server once listening.
 * Any origin may load from it (CORS), as from a CDN. `isolated` adds the COOP/COEP headers
 * that make pages cross-origin isolated.
 */
export function serve(port, { isolated = false, bases = [demos, root] } = {}) {
  bases = bases.map((b) => join(b, sep));
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (path.split('/').includes('..')) return res.writeHead(403).end();
    let file = null;
    for (const base of bases) if ((file = await resolveFile(base, path))) break;
    if (!file) return res.writeHead(404).end('not found');
    const headers = { 'content-type': types[extname(file)] ?? 'application/octet-stream', 'access-control-allow-origin': '*', ...(isolated ? isolation : {}) };
    res.writeHead(200, headers).end(await readFile(file));
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = Number(process.env.PORT ?? 8080);
  // Isolated, so the WebAssembly backend can compute on several threads.
  await serve(port, { isolated: true });
  console.log(`shadenet demos: http://localhost:${port}/`);
}
