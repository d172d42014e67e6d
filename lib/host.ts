// Where the engine runs: a Web Worker on the page by default. Other hosts (a
// Node worker_threads worker) install their own factory; the runtime only
// sees a Comlink endpoint, a way to end it, and a signal that it died.

import type * as Comlink from 'comlink';
import type { InitOptions } from './protocol.js';

export interface EngineHost {
  readonly endpoint: Comlink.Endpoint;
  terminate(): void;
  /** Calls back once if the engine dies on its own (an uncaught error, a crash). */
  onFailure(callback: (error: Error) => void): void;
}

export type HostFactory = (opts: InitOptions) => EngineHost;

let factory: HostFactory = (opts) => browserHost(opts);

/** Replaces how engines are started (the Node entry does this). */
export function setHostFactory(next: HostFactory) {
  factory = next;
}

export function startHost(opts: InitOptions): EngineHost {
  return factory(opts);
}

function browserHost(_opts: InitOptions): EngineHost {
  const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  return {
    endpoint: worker,
    terminate: () => worker.terminate(),
    onFailure(callback) {
      worker.addEventListener('error', (e) => {
        // Reported through the runtime's promises, not also as an uncaught error on the page.
        e.preventDefault();
        callback(new Error(`shadenet: the engine worker failed: ${e.message || 'it could not be loaded'}`));
      }, { once: true });
    },
  };
}
