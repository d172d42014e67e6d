// Where the engine runs: a Web Worker on the page by default. Other hosts (a
// Node worker_threads worker) install their own factory; the runtime only
// sees a Comlink endpoint, a way to end it, and a signal that it died.

import type * as Comlink from 'comlink';

export interface EngineHost {
  readonly endpoint: Comlink.Endpoint;
  terminate(): void;
  /** Calls back once if the engine dies on its own (an uncaught error, a crash). */
  onFailure(callback: (error: Error) => void): void;
}

/** How the page starts its engine (see `init`). */
export interface HostOptions {
  /**
   * Where the engine's worker script is (shadenet's `dist/worker.js`), for pages that serve
   * it elsewhere. Default: `worker.js` next to the module, or the worker built into
   * `shadenet.js`. Another origin works when that origin allows CORS.
   */
  workerUrl?: string | URL;
}

export type HostFactory = (opts: HostOptions) => EngineHost;

let factory: HostFactory = (opts) => browserHost(opts);

/** Replaces how engines are started (the Node entry does this). */
export function setHostFactory(next: HostFactory) {
  factory = next;
}

export function startHost(opts: HostOptions): EngineHost {
  return factory(opts);
}

// A bundler sees this `new URL(..., import.meta.url)` and ships worker.js as an asset.
let defaultWorkerUrl = (): string | URL => new URL('./worker.js', import.meta.url);

/** Sets where the worker comes from when init() names none (the single-file build does). */
export function setDefaultWorkerUrl(url: () => string | URL) {
  defaultWorkerUrl = url;
}

/**
 * A worker script from another origin cannot be started directly (a SecurityError), but a
 * module worker from a blob: URL, which has the page's origin, may import it under CORS.
 */
function workerScript(url: URL): string | URL {
  if (url.origin === location.origin || url.protocol === 'blob:' || url.protocol === 'data:') return url;
  return URL.createObjectURL(new Blob([`import ${JSON.stringify(url.href)};\n`], { type: 'text/javascript' }));
}

function browserHost(opts: HostOptions): EngineHost {
  const url = new URL(opts.workerUrl ?? defaultWorkerUrl(), location.href);
  const script = workerScript(url);
  const worker = new Worker(script, { type: 'module' });
  // The shim's URL is done with once the engine answers (its first message).
  if (script !== url) worker.addEventListener('message', () => URL.revokeObjectURL(script as string), { once: true });
  return {
    endpoint: worker,
    terminate: () => worker.terminate(),
    onFailure(callback) {
      worker.addEventListener('error', (e) => {
        // Reported through the runtime's promises, not also as an uncaught error on the page.
        e.preventDefault();
        callback(new Error(`shadenet: the engine worker failed (${url.href}): ${e.message || 'it could not be loaded (is the URL right, and does its server allow CORS?)'}`));
      }, { once: true });
    },
  };
}
