// Test-only bundle entry: the codec is worker-internal, so tests reach it through dist/test-safetensors.js.
export * from '../worker/safetensors.js';
