// The engine's worker as it runs in a browser without WebGPU (imports run in order).
import './nogpu-shim.js';
import '../dist/worker.js';
