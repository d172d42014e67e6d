// Binaries the build compiles from AssemblyScript (see rollup.config.mjs).
declare module '*.wasm' {
  const bytes: Uint8Array<ArrayBuffer>;
  export default bytes;
}
