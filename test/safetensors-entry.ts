// Test-only bundle entry: the codec is worker-internal, so tests reach it through build/test/safetensors.js.
export * from '../worker/safetensors.js';
