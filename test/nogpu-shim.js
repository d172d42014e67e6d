// Hides navigator.gpu, as in a browser without WebGPU.
Object.defineProperty(Object.getPrototypeOf(navigator), 'gpu', { get: () => undefined, configurable: true });
