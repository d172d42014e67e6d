import * as sn from './dist/index.js';
import { startEngine, showError, ready, latestOnly } from './common.js';
import { loadBaseModel, classify, DigitNet } from './digits.js';
import { toMnist, canvasInk, drawPixels, drawingPad } from './stroke.js';
import { probabilityBars } from './bars.js';

const $ = (id) => document.getElementById(id);
const CHECKPOINT = 'indexeddb://personal-digits';
const STEPS_PER_ROUND = 30;
const status = (s) => ($('status').textContent = s);

let model, optimizer;
let round = 0;
const examples = []; // { image: Float32Array(784), label }

const showProbabilities = probabilityBars($('bars'));

function showExamples() {
  $('examples').replaceChildren(...examples.map(({ image, label }) => {
    const fig = document.createElement('figure');
    const c = Object.assign(document.createElement('canvas'), { width: 28, height: 28 });
    drawPixels(c, image);
    fig.append(c, label);
    return fig;
  }));
  const digits = new Set(examples.map((e) => e.label)).size;
  $('count').textContent = examples.length ? `(${examples.length}; ${digits} ${digits === 1 ? 'digit' : 'digits'})` : '(none yet)';
  $('train').disabled = examples.length === 0;
}

const current = () => toMnist(canvasInk($('pad')), $('pad').width, $('pad').height);

const predict = latestOnly(async () => {
  const image = current();
  if (!image) return;
  model.eval();
  const probs = await classify(model, image);
  const digit = showProbabilities(probs);
  window.lastPrediction = { digit, probs };
});
/** True when the bars show the ink as it is now (for tests). */
window.predictionSettled = predict.settled;

function fresh(base) {
  model = base;
  optimizer = new sn.optim.Adam(model.parameters(), { lr: 5e-4 });
  round = 0;
}

async function restore() {
  if (!(await sn.checkpoints.exists(CHECKPOINT))) return false;
  const saved = await sn.load(CHECKPOINT);
  model = new DigitNet();
  model.loadStateDict(saved.model);
  optimizer = new sn.optim.Adam(model.parameters(), { lr: 5e-4 });
  optimizer.loadStateDict(saved.optimizer);
  round = saved.round;
  const pixels = await saved.images.data();
  saved.labels.forEach((label, i) => examples.push({ image: pixels.slice(i * 784, (i + 1) * 784), label }));
  return true;
}

/** Fine-tunes on every example so far, then saves model, optimizer and examples on this device. */
async function trainRound() {
  $('train').disabled = true;
  const n = examples.length;
  const x = sn.tensor(Float32Array.from(examples.flatMap((e) => Array.from(e.image))), [n, 784]);
  const y = sn.tensor(Int32Array.from(examples.map((e) => e.label)), [n], { dtype: 'int32' });
  const lossFn = new sn.nn.CrossEntropyLoss();
  model.train();
  let first, loss;
  for (let step = 0; step < STEPS_PER_ROUND; step++) {
    optimizer.zeroGrad();
    loss = lossFn.forward(model.forward(x), y);
    loss.backward();
    optimizer.step();
    if (step === 0) first = loss.item();
  }
  const [before, after] = [await first, await loss.item()];
  round++;
  const change = `loss on your ${n === 1 ? 'example' : `${n} examples`} ${before.toFixed(3)} → ${after.toFixed(3)}`;
  status(`Round ${round}: ${change}. Saving on this device…`);
  await sn.save({ model, optimizer, round, images: x, labels: examples.map((e) => e.label) }, CHECKPOINT);
  status(`Round ${round} saved on this device: ${change}.`);
  $('train').disabled = false;
  await predict();
}

async function forget() {
  await sn.checkpoints.delete(CHECKPOINT);
  examples.length = 0;
  fresh(baseModel());
  showExamples();
  status('Forgotten: your examples and your model are deleted from this device. Back to the base model.');
  await predict();
}

// The shipped checkpoint is fetched once, while the page loads, and copied for every fresh start.
let baseState;
function baseModel() {
  const m = new DigitNet();
  m.loadStateDict(baseState);
  return m;
}

const guard = (fn) => () => fn().catch((e) => {
  showError(e);
  $('train').disabled = examples.length === 0;
});

try {
  await startEngine();
  baseState = (await loadBaseModel()).stateDict();
  if (await restore()) {
    status(`Welcome back: your model from round ${round} and your ${examples.length} examples were restored from this device.`);
  } else {
    fresh(baseModel());
    status('Using the base model. Draw a digit, then say which one it is.');
  }
  showExamples();
  const clearInk = drawingPad($('pad'), predict);
  const clear = () => {
    clearInk();
    showProbabilities(null);
  };
  $('clear').onclick = clear;
  $('labels').append(...Array.from({ length: 10 }, (_, d) => {
    const b = Object.assign(document.createElement('button'), { textContent: d, title: `add this drawing as a ${d}` });
    b.dataset.label = d;
    b.onclick = () => {
      const image = current();
      if (!image) return status('Draw the digit first.');
      examples.push({ image, label: d });
      clear();
      showExamples();
      status(`Added a ${d}. ${examples.length} examples; train a round when you like.`);
    };
    return b;
  }));
  $('train').onclick = guard(trainRound);
  $('forget').onclick = guard(forget);
  ready();
} catch (e) {
  showError(e);
  status('Not running: see the message above.');
}
