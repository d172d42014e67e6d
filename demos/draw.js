import * as sn from './dist/index.js';
import { startEngine, showError, ready, latestOnly } from './common.js';
import { loadBaseModel, classify } from './digits.js';
import { toMnist, canvasInk, drawPixels, drawingPad } from './stroke.js';
import { probabilityBars } from './bars.js';

const $ = (id) => document.getElementById(id);
const MNIST_DEMO = 'indexeddb://mnist-demo';

const showProbabilities = probabilityBars($('bars'));

const models = {};
let current = 'base';

/** Classifies what is on the pad; while the worker is busy, remembers to run once more after. */
const update = latestOnly(async () => {
  const image = toMnist(canvasInk($('pad')), $('pad').width, $('pad').height);
  drawPixels($('pixels'), image);
  if (!image) return;
  const model = models[current];
  // The Keras model ends in softmax; DigitNet gives logits.
  const probs = current === 'base' ? await classify(model, image) : Array.from(await model.predict(sn.tensor(image, [1, 784])).data());
  const digit = showProbabilities(probs);
  window.lastPrediction = { digit, probs };
  $('status').textContent = `It looks like a ${digit} (${(probs[digit] * 100).toFixed(0)}% sure).`;
});

try {
  await startEngine();
  models.base = await loadBaseModel();
  if (await sn.checkpoints.exists(MNIST_DEMO)) {
    $('model').append(new Option('the model you saved on the MNIST page', 'mnist'));
  }
  $('model').onchange = async () => {
    try {
      const choice = $('model').value;
      models[choice] ??= await sn.loadModel(MNIST_DEMO);
      // Switch only once the model is there, so a stroke drawn meanwhile uses the old one.
      current = choice;
      $('status').textContent = `Using ${$('model').selectedOptions[0].text}.`;
      update();
    } catch (e) {
      showError(e);
    }
  };
  const clear = drawingPad($('pad'), update);
  $('clear').onclick = () => {
    clear();
    drawPixels($('pixels'), null);
    showProbabilities(null);
    $('status').textContent = 'Draw a digit.';
  };
  $('status').textContent = 'Draw a digit.';
  ready();
} catch (e) {
  showError(e);
  $('status').textContent = 'Not running: see the message above.';
}
