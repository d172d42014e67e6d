import * as sn from './dist/index.js';
import uPlot from './vendor/uPlot.esm.js';
import { startEngine, showError, ready } from './common.js';

const $ = (id) => document.getElementById(id);
const BATCH = 32, MIN_LEN = 12, MAX_LEN = 40, SHOWN = 40, AHEAD = 30;
const status = (s) => ($('status').textContent = s);

/** A wave: frequency, phase and amplitude; value(t) is the clean signal. */
const wave = (rand) => {
  const freq = 0.15 + 0.25 * rand(), phase = 2 * Math.PI * rand(), amp = 0.6 + 0.4 * rand();
  return (t) => amp * Math.sin(freq * t + phase);
};
const noise = (rand) => 0.05 * (rand() + rand() - 1);

/** A padded batch: x [B, T, 1] noisy inputs, y the next clean values, mask 1 on real steps. */
function batch(rand) {
  const lengths = Array.from({ length: BATCH }, () => MIN_LEN + Math.floor(rand() * (MAX_LEN - MIN_LEN + 1)));
  const x = new Float32Array(BATCH * MAX_LEN), y = new Float32Array(BATCH * MAX_LEN), mask = new Float32Array(BATCH * MAX_LEN);
  lengths.forEach((len, b) => {
    const f = wave(rand);
    for (let t = 0; t < len; t++) {
      x[b * MAX_LEN + t] = f(t) + noise(rand);
      y[b * MAX_LEN + t] = f(t + 1);
      mask[b * MAX_LEN + t] = 1;
    }
  });
  const shape = [BATCH, MAX_LEN, 1];
  return { x: sn.tensor(x, shape), y: sn.tensor(y, shape), mask: sn.tensor(mask, shape), lengths };
}

function seeded(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = Math.imul(seed ^ (seed >>> 15), seed | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// The wave on the plot, never trained on.
const shownRand = seeded(99);
const shown = wave(shownRand);
const shownInput = Float32Array.from({ length: SHOWN }, (_, t) => shown(t) + noise(shownRand));
const steps = Array.from({ length: SHOWN + AHEAD }, (_, t) => t);
const plotData = [steps, steps.map((t) => shown(t)), [...shownInput, ...Array(AHEAD).fill(null)], Array(SHOWN + AHEAD).fill(null), Array(SHOWN + AHEAD).fill(null)];
const plot = new uPlot({
  width: 520, height: 260, title: 'a held-out wave',
  scales: { x: { time: false }, y: { range: [-1.3, 1.3] } },
  axes: [{ label: 'time step' }, {}],
  series: [{ label: 't' }, { label: 'truth', stroke: '#26a', width: 2 }, { label: 'noisy input', stroke: '#999', paths: () => null, points: { show: true, size: 4, fill: '#999' } },
    { label: 'predicted next', stroke: '#c33', width: 2 }, { label: 'on its own', stroke: '#c33', width: 2, dash: [6, 4] }],
}, plotData, $('plot'));
const lossData = [[], []];
const lossPlot = new uPlot({
  width: 520, height: 160, scales: { x: { time: false }, y: { distr: 3 } },
  axes: [{ label: 'training step', incrs: [10, 20, 50, 100, 200, 500, 1000, 2000, 5000] }, { label: 'loss (log)' }],
  series: [{ label: 'step' }, { label: 'loss', stroke: '#c33', width: 2 }],
}, lossData, $('lossplot'));
window.plotPoints = () => ({
  predicted: plotData[3].filter((v) => v !== null).length, ahead: plotData[4].filter((v) => v !== null).length,
  losses: lossData[1].length, firstLoss: lossData[1][0], lastLoss: lossData[1].at(-1),
});

/** One-step predictions along the shown wave, then AHEAD steps fed back: all recorded, one read. */
async function drawPredictions(model) {
  const [oneStep, ahead] = sn.noGrad(() => {
    model.eval();
    const [pred, state] = model.forward(sn.tensor(shownInput, [1, SHOWN, 1]));
    const generated = [];
    let next = pred.slice(1, SHOWN - 1, SHOWN), hx = state;
    for (let t = 0; t < AHEAD - 1; t++) {
      generated.push(next);
      [next, hx] = model.forward(next, undefined, hx);
    }
    generated.push(next);
    model.train();
    return [pred.reshape([SHOWN]), sn.cat(generated, 1).reshape([AHEAD])];
  });
  const [a, b] = await Promise.all([oneStep.data(), ahead.data()]);
  // Prediction at t is for t+1.
  plotData[3] = [null, ...a, ...Array(AHEAD - 1).fill(null)];
  plotData[4] = [...Array(SHOWN).fill(null), ...b];
  plot.setData(plotData);
}

let running = null;

async function train({ model, trainStep }) {
  running = { stop: false };
  $('train').disabled = true;
  $('stop').disabled = false;
  const rand = seeded(lossData[0].length + 1);
  let step = lossData[0].length;
  while (!running.stop) {
    const { x, y, mask, lengths } = batch(rand);
    const loss = trainStep(x, y, mask, lengths);
    step++;
    if (step % 10 === 0) {
      const value = await loss.item();
      lossData[0].push(step);
      lossData[1].push(value);
      lossPlot.setData(lossData);
      await drawPredictions(model);
      status(`step ${step}: loss ${value.toFixed(5)}`);
    }
  }
  status(`Stopped at step ${step}. Train continues from here.`);
  running = null;
  $('train').disabled = false;
  $('stop').disabled = true;
}

try {
  await startEngine();
  const source = await fetch('sequences-model.js').then((r) => r.text());
  $('code').textContent = source;
  sn.manualSeed(1);
  const program = await import('./sequences-model.js');
  $('train').onclick = () => train(program).catch((e) => {
    showError(e);
    running = null;
    $('train').disabled = false;
    $('stop').disabled = true;
  });
  $('stop').onclick = () => (running.stop = true);
  $('train').disabled = false;
  status('Press Train.');
  ready();
} catch (e) {
  showError(e);
}
