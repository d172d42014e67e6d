import * as sn from './dist/index.js';
import uPlot from './vendor/uPlot.esm.js';
import { startEngine, showError, ready } from './common.js';
import { loadDigits, digitsTensor, oneHot, HELD_OUT } from './digits.js';

const $ = (id) => document.getElementById(id);
const EPOCHS = 3, BATCH = 64, CHECKPOINT = 'indexeddb://mnist-demo';
const status = (s) => ($('status').textContent = s);

// The stall meter: a 10 ms timer and the Long Tasks API, both counted only while fit runs.
let meter = null;
setInterval(() => {
  if (!meter?.running) return;
  const now = performance.now();
  meter.worstGap = Math.max(meter.worstGap, now - meter.lastTick);
  meter.lastTick = now;
  $('gap').textContent = meter.worstGap.toFixed(0);
}, 10);
new PerformanceObserver((list) => {
  for (const t of list.getEntries()) {
    // Entries arrive after the fact: keep those that started while fit ran.
    if (!meter || t.startTime < meter.since || t.startTime > (meter.until ?? Infinity)) continue;
    meter.longTasks.push(t.duration);
    $('longtasks').textContent = `${meter.longTasks.length} (longest ${Math.max(...meter.longTasks).toFixed(0)} ms)`;
  }
}).observe({ type: 'longtask' });
function startMeter() {
  const now = performance.now();
  meter = { running: true, since: now, lastTick: now, worstGap: 0, longTasks: [] };
  $('gap').textContent = '0';
  $('longtasks').textContent = '0';
}
/** What the meter saw, for the page and for tests. */
window.stallMeter = () => meter && { worstGap: meter.worstGap, longTasks: [...meter.longTasks] };

// The animation: a ball on a Lissajous path, moved every frame by the page's main thread.
{
  const ctx = $('anim').getContext('2d');
  let frames = 0, since = performance.now();
  const frame = (t) => {
    ctx.clearRect(0, 0, 220, 220);
    const x = 110 + 85 * Math.sin(t / 700), y = 110 + 85 * Math.sin(t / 450);
    ctx.fillStyle = '#2a6';
    ctx.beginPath();
    ctx.arc(x, y, 14, 0, 2 * Math.PI);
    ctx.fill();
    if (++frames && t - since > 1000) {
      $('fps').textContent = ((frames * 1000) / (t - since)).toFixed(0);
      frames = 0;
      since = t;
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}

const points = [[], [], []]; // step, loss, accuracy
const chart = new uPlot({
  width: 560, height: 280, title: 'per batch (running mean within the epoch)',
  scales: { x: { time: false }, acc: { range: [0, 1] } },
  axes: [{ label: 'training step', incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000] }, { label: 'loss', stroke: '#c33' }, { scale: 'acc', side: 1, label: 'accuracy', stroke: '#26a', grid: { show: false } }],
  series: [{ label: 'step' }, { label: 'loss', stroke: '#c33', width: 2 }, { label: 'accuracy', scale: 'acc', stroke: '#26a', width: 2 }],
}, points, $('chart'));
window.chartPoints = () => points[0].length;
window.chartSteps = () => [...points[0]];

let data = null;
let model = null;
let run = null; // { controller, paused: null | { promise, resume } }
let saved = false;

function newModel() {
  const m = sn.sequential([
    sn.layers.dense({ units: 128, activation: 'relu', inputShape: [784] }),
    sn.layers.dense({ units: 10, activation: 'softmax' }),
  ]);
  m.compile({ optimizer: 'adam', loss: 'categorical_crossentropy', metrics: ['accuracy'] });
  return m;
}

function buttons() {
  $('start').disabled = !!run;
  $('pause').disabled = !run;
  $('stop').disabled = !run;
  $('save').disabled = !!run || !model;
  $('load').disabled = !!run || !saved;
  $('pause').textContent = run?.paused ? 'Resume' : 'Pause';
}

async function heldOutAccuracy(m) {
  const { accuracy } = await m.evaluate(data.xTest, data.yTest, { batchSize: 500 });
  return accuracy.toFixed(4);
}

async function train() {
  model ??= newModel();
  $('summary').textContent = model.summary();
  run = { controller: new AbortController(), paused: null };
  buttons();
  const stepsPerEpoch = Math.ceil(data.nTrain / BATCH);
  const first = model.epoch ?? 0;
  // The chart's steps run on across runs (a stopped epoch is run again from its start).
  const stepsBefore = points[0].at(-1) ?? 0;
  let epoch = first, lastBatch = 0;
  const t0 = performance.now();
  startMeter();
  await model.fit(data.xTrain, data.yTrain, {
    epochs: first + EPOCHS, initialEpoch: first, batchSize: BATCH, signal: run.controller.signal,
    callbacks: {
      onEpochBegin: (e) => (epoch = e),
      onBatchEnd: (batch, logs) => {
        lastBatch = batch + 1;
        points[0].push(stepsBefore + (epoch - first) * stepsPerEpoch + batch + 1);
        points[1].push(logs.loss);
        points[2].push(logs.accuracy);
        chart.setData(points);
        if (!run.paused) status(`epoch ${epoch + 1} of ${first + EPOCHS}, batch ${batch + 1} of ${stepsPerEpoch}: loss ${logs.loss.toFixed(4)}, accuracy ${logs.accuracy.toFixed(4)}`);
        // Pausing: the worker waits for this callback's reply before its next batch.
        return run.paused?.promise;
      },
    },
  });
  meter.running = false;
  meter.until = performance.now();
  const seconds = ((performance.now() - t0) / 1000).toFixed(1);
  const stopped = run.controller.signal.aborted;
  run = null;
  buttons();
  if (stopped) {
    status(`Stopped in epoch ${epoch + 1}, after batch ${lastBatch} (${seconds} s). The model keeps what it learned so far: train on or save it.`);
  } else {
    status(`Trained ${EPOCHS} epochs in ${seconds} s. Accuracy on 2,000 held-out digits: ${await heldOutAccuracy(model)}`);
  }
}

function togglePause() {
  if (run.paused) {
    const { resume } = run.paused;
    run.paused = null;
    resume();
    status('Resumed.');
  } else {
    let resume;
    const promise = new Promise((r) => (resume = r));
    run.paused = { promise, resume };
    status('Paused: the worker waits after its current batch.');
  }
  buttons();
}

function stop() {
  run.controller.abort();
  // A paused fit is waiting on its callback: let it see the abort.
  run.paused?.resume();
  status('Stopping…');
}

async function save() {
  const info = await model.save(CHECKPOINT);
  saved = true;
  buttons();
  status(`Saved to IndexedDB as "${info.name}" (${(info.bytes / 1024).toFixed(0)} KB), weights and optimizer state. The draw demo can use it.`);
}

async function load() {
  model = await sn.loadModel(CHECKPOINT);
  $('summary').textContent = model.summary();
  buttons();
  const trained = model.epoch ? `${model.epoch} full epochs trained` : 'saved before its first epoch ended';
  status(`Loaded "${CHECKPOINT}" (${trained}). Accuracy on the held-out digits: ${await heldOutAccuracy(model)}`);
}

const guard = (fn) => () => fn().catch((e) => {
  showError(e);
  run = null;
  if (meter) Object.assign(meter, { running: false, until: performance.now() });
  buttons();
});

try {
  await startEngine();
  const digits = await loadDigits();
  const nTrain = digits.n - HELD_OUT;
  // Built once here, so Start measures training alone.
  data = {
    nTrain,
    xTrain: digitsTensor(digits, 0, nTrain), yTrain: oneHot(digits, 0, nTrain),
    xTest: digitsTensor(digits, nTrain, HELD_OUT), yTest: oneHot(digits, nTrain, HELD_OUT),
  };
  await sn.sync();
  $('start').onclick = guard(train);
  $('pause').onclick = togglePause;
  $('stop').onclick = stop;
  $('save').onclick = guard(save);
  $('load').onclick = guard(load);
  saved = await sn.checkpoints.exists(CHECKPOINT);
  buttons();
  status(`${digits.n.toLocaleString('en')} digits loaded: 8,000 to train on, 2,000 held out. Press Train.`);
  ready();
} catch (e) {
  showError(e);
  status('');
}
