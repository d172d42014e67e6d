// The engine's worker where a Content-Security-Policy forbids compiling
// WebAssembly (served with `script-src 'self'`, see web-test-runner.config.mjs).
import '../dist/worker.js';
