// What every demo page shares: the backend switch (?backend=webgpu|wasm|cpu), the bar that
// says which backend runs, and errors shown on the page in words.
import * as sn from './dist/index.js';

const errors = () => document.getElementById('errors') ?? document.body.insertBefore(Object.assign(document.createElement('div'), { id: 'errors' }), document.body.firstChild);

/** Shows an error on the page (and in the console, for tests and developers). */
export function showError(e) {
  const message = e instanceof Error ? e.message : String(e?.reason ?? e?.message ?? e);
  console.error(e);
  const line = document.createElement('p');
  line.textContent = `Something went wrong: ${message}`;
  errors().append(line);
}

addEventListener('error', (e) => showError(e.error ?? e.message));
addEventListener('unhandledrejection', (e) => showError(e.reason));

const BACKENDS = { webgpu: 'WebGPU', wasm: 'WebAssembly', cpu: 'CPU' };

/** The backend asked for in the address (?backend=webgpu|wasm|cpu), else 'auto'. */
export function requestedBackend() {
  const b = new URLSearchParams(location.search).get('backend');
  return b in BACKENDS ? b : 'auto';
}

/** Why the engine runs where it does, from sn.backendInfo(). */
function backendReason() {
  const info = sn.backendInfo();
  return [info.reason, info.threads > 1 && `${info.threads} threads`].filter(Boolean).join(', ');
}

/** A link to `page` that keeps the chosen backend. */
export const withBackend = (page, backend = requestedBackend()) => (backend === 'auto' ? page : `${page}?backend=${backend}`);

/**
 * Fills the page's <nav id="bar"> (a link home, the backend and why, a backend switch) and starts
 * the engine on the chosen backend. Resolves once it runs; shows why on the page when it cannot.
 */
export async function startEngine() {
  const bar = document.getElementById('bar');
  const chosen = requestedBackend();
  const page = location.pathname.split('/').pop() || 'index.html';
  bar.innerHTML = `<a href="${withBackend('./')}">shadenet demos</a>
    <span>backend: <b id="backend">starting…</b> <span class="muted" id="backend-reason"></span></span>
    <span class="switch">run on
      ${Object.entries(BACKENDS).map(([b, name]) => `<a href="${page}?backend=${b}" data-backend="${b}">${name}</a>`).join('')}</span>`;
  const label = document.getElementById('backend');
  try {
    await sn.init({ backend: chosen });
  } catch (e) {
    label.textContent = 'none';
    throw new Error(chosen === 'webgpu'
      ? `WebGPU could not start in this browser (${e.message}). Switch to WebAssembly or CPU above.`
      : `the engine could not start: ${e.message}`);
  }
  label.textContent = sn.backend();
  document.getElementById('backend-reason').textContent = `(${backendReason()})`;
  for (const a of bar.querySelectorAll('[data-backend]')) a.classList.toggle('on', a.dataset.backend === sn.backend());
  return sn.backend();
}

/** Marks the page ready for a reader (and for the tests, which wait for it). */
export function ready() {
  document.body.dataset.ready = 'true';
}

/**
 * Runs `work` one call at a time: calls that come while it runs fold into one more run after it,
 * so a burst of input events never queues work on the worker. `settled()` is true once the run
 * that saw the latest call has finished. Errors are shown on the page.
 */
export function latestOnly(work) {
  let busy = false, again = false;
  const run = async () => {
    if (busy) return void (again = true);
    busy = true;
    try {
      do {
        again = false;
        await work();
      } while (again);
    } catch (e) {
      showError(e);
    } finally {
      busy = false;
    }
  };
  run.settled = () => !busy && !again;
  return run;
}
