// Makes demos/models/digits-base.safetensors, the base model the draw and
// personalization demos ship: DigitNet (digits.js) trained by shadenet itself in
// headless Chromium on the 8,000 training digits. Run once by hand (after
// `npm run build`); the result is committed because it is small (~200 KB) and
// making it needs a browser. Usage: node demos/tools/make-base-model.mjs
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from '../serve.mjs';
import { buildDemoAssets } from '../build.mjs';

await buildDemoAssets();
const server = await serve(0);
const browser = await chromium.launch({
  executablePath: process.env.CHROME_PATH || '/usr/bin/chromium',
  headless: true,
  args: ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-webgpu-adapter=swiftshader', '--enable-unsafe-swiftshader', '--no-sandbox'],
});
try {
  const page = await browser.newPage();
  page.on('console', (m) => console.log(m.text()));
  // Any page of the server's origin will do: the work is in the imported modules.
  await page.goto(`http://127.0.0.1:${server.address().port}/style.css`);
  const bytes = await page.evaluate(async () => {
    const sn = await import('/dist/index.js');
    const { loadDigits, digitsTensor, DigitNet, HELD_OUT } = await import('/digits.js');
    sn.manualSeed(7);
    const digits = await loadDigits();
    const nTrain = digits.n - HELD_OUT;
    const x = digitsTensor(digits, 0, nTrain);
    const y = sn.tensor(new Int32Array(digits.labels.subarray(0, nTrain)), [nTrain], { dtype: 'int32' });
    const model = new DigitNet();
    const lossFn = new sn.nn.CrossEntropyLoss();
    const opt = new sn.optim.Adam(model.parameters(), { lr: 2e-3 });
    const loader = new sn.data.DataLoader(new sn.data.TensorDataset(x, y), { batchSize: 64, shuffle: true });
    for (let epoch = 0; epoch < 8; epoch++) {
      let loss;
      for await (const [xb, yb] of loader) {
        opt.zeroGrad();
        loss = lossFn.forward(model.forward(xb), yb);
        loss.backward();
        opt.step();
      }
      console.log(`epoch ${epoch + 1}: last batch loss ${(await loss.item()).toFixed(4)}`);
    }
    model.eval();
    const xt = digitsTensor(digits, nTrain, HELD_OUT);
    const pred = await sn.noGrad(() => model.forward(xt).argmax(1)).data();
    const truth = digits.labels.subarray(nTrain);
    console.log(`held-out accuracy ${(pred.filter((p, i) => p === truth[i]).length / HELD_OUT).toFixed(4)}`);
    return Array.from(await sn.safetensors.save(model));
  });
  const out = fileURLToPath(new URL('../models/digits-base.safetensors', import.meta.url));
  await writeFile(out, Uint8Array.from(bytes));
  console.log(`wrote ${out} (${bytes.length} bytes)`);
} finally {
  await browser.close();
  server.close();
}
