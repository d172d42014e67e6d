// The worker bundle's source text, inlined by rollup.config.mjs into dist/shadenet.js.
declare module 'shadenet:worker-source' {
  const source: string;
  export default source;
}
