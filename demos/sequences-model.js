// The model and one training step, PyTorch style. This file is what the page shows.
import * as sn from './dist/index.js';

export class SineNet extends sn.nn.Module {
  lstm = new sn.nn.LSTM(1, 32, { batchFirst: true });
  head = new sn.nn.Linear(32, 1);

  // x: [batch, time, 1], padded; lengths: the real length of each sequence
  forward(x, lengths, hx = null) {
    const [out, state] = this.lstm.forward(x, hx, { lengths });
    return [this.head.forward(out), state];
  }
}

export const model = new SineNet();
export const optimizer = new sn.optim.Adam(model.parameters(), { lr: 0.01 });

// Predict every next value; padded steps (mask 0) do not count.
export function trainStep(x, y, mask, lengths) {
  optimizer.zeroGrad();
  const [pred] = model.forward(x, lengths);
  const loss = pred.sub(y).pow(2).mul(mask).sum().div(mask.sum());
  loss.backward();
  optimizer.step();
  return loss;
}
