// Test bundle entry (built to build/test/checkpoint-store.js): the checkpoint
// store, plus idb-keyval so tests can inspect and damage the raw store.
export * from '../worker/checkpoint-store.js';
export * as idb from 'idb-keyval';
