// How every test launches Chromium: Debian's /usr/bin/chromium (or CHROME_PATH),
// headless, with WebGPU on SwiftShader, a software GPU that works on any Linux
// machine. Nothing downloads a browser.
export const executablePath = process.env.CHROME_PATH || '/usr/bin/chromium';

export const chromeArgs = [
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader',
  '--enable-unsafe-swiftshader',
  '--no-sandbox',
  // test/device-loss.test.js crashes the GPU process on purpose. Without these Chromium blocks
  // WebGPU for the origin after the second crash (requestAdapter gives null), and stops
  // restarting the GPU process after a few.
  '--disable-domain-blocking-for-3d-apis',
  '--disable-gpu-process-crash-limit',
  '--js-flags=--expose-gc',
  // This machine has no network: keep Chromium from trying.
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
