/// <reference types="node" />
// shadenet for Node (>= 20): the same API, with the engine in a worker_threads
// worker instead of a Web Worker, and checkpoints as files (file:// URLs or
// paths) instead of IndexedDB. The worker only keeps the process alive
// while the page side waits for an answer, so a script exits when it is done
// without having to shut the engine down.

import { Worker } from 'node:worker_threads';
import type * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter';
import { setHostFactory, type EngineHost, type HostOptions } from './host.js';
import { useFileCheckpoints } from './checkpoint.js';

export * from './index.js';

/** Flags about the main script's own source; inherited, they would stop the worker file from loading. */
const SCRIPT_SOURCE_FLAGS = ['--input-type', '-e', '--eval', '-p', '--print'];

/** The worker gets Node's flags (loaders, --import, V8 options) minus those about the main script's source. */
function workerExecArgv(argv: string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (SCRIPT_SOURCE_FLAGS.includes(argv[i])) i++; // and its value
    else if (!argv[i].startsWith('--input-type=') && !argv[i].startsWith('--eval=') && !argv[i].startsWith('--print=')) kept.push(argv[i]);
  }
  return kept;
}

/** `workerUrl` names a Node worker script (shadenet's dist/node-worker.js) elsewhere. */
function nodeHost({ workerUrl }: HostOptions): EngineHost {
  const url = workerUrl ?? new URL('./node-worker.js', import.meta.url);
  const worker = new Worker(url, { execArgv: workerExecArgv(process.execArgv) });
  const base = nodeEndpoint(worker);
  // Comlink tags each request with an id and its answer with the same id.
  const awaited = new Set<string>();
  const settle = () => (awaited.size ? worker.ref() : worker.unref());
  worker.on('message', (msg: { id?: string } | undefined) => {
    if (msg?.id !== undefined && awaited.delete(msg.id)) settle();
  });
  worker.unref();
  const endpoint: Comlink.Endpoint = {
    ...base,
    postMessage(msg: { id?: string } | undefined, transfer?: Transferable[]) {
      if (msg?.id !== undefined) {
        awaited.add(msg.id);
        settle();
      }
      base.postMessage(msg, transfer);
    },
  };
  let ended = false;
  return {
    endpoint,
    terminate() {
      ended = true;
      void worker.terminate();
    },
    onFailure(callback) {
      const fail = (why: string) => {
        if (ended) return;
        ended = true;
        callback(new Error(`shadenet: the engine worker failed: ${why}`));
      };
      worker.on('error', (e: Error) => fail(e.message));
      worker.on('exit', (code) => code !== 0 && fail(`it exited with code ${code}`));
    },
  };
}

setHostFactory(nodeHost);
useFileCheckpoints();
