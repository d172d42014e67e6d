// Entry of dist/shadenet.js: the whole library in one file for a plain
// <script type="module">, with the worker built in (started from a blob: URL,
// so the page needs nothing else from the server).

import workerSource from 'shadenet:worker-source';
import { setDefaultWorkerUrl } from './host.js';

let workerUrl: string | null = null;
setDefaultWorkerUrl(() => (workerUrl ??= URL.createObjectURL(new Blob([workerSource], { type: 'text/javascript' }))));

export * from './index.js';
