import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';

for (const backend of ['webgpu', 'cpu']) {
  describe(`smoke (${backend})`, () => {
    before(async () => {
      await sn.init({ backend });
    });
    it('adds and matmuls', async () => {
      expect(sn.backend()).to.equal(backend);
      const a = sn.tensor([[1, 2], [3, 4]]);
      const b = sn.tensor([[5, 6], [7, 8]]);
      expect(Array.from(await a.add(b).data())).to.deep.equal([6, 8, 10, 12]);
      expect(await a.matmul(b).array()).to.deep.equal([[19, 22], [43, 50]]);
      expect(await a.sum().item()).to.equal(10);
    });
  });
}
