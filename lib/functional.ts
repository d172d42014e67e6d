// Keras's functional API: sn.input() makes placeholders, layer.apply() wires
// layers into a graph, sn.model({ inputs, outputs }) turns the graph into a
// model with every Sequential feature (compile, fit in the worker, evaluate,
// predict, summary, save), with any number of inputs and outputs.

import { Tensor } from './tensor.js';
import { Dense } from './layers/core.js';
import { Layer, SymbolicTensor, fmtLayerShape, type GraphNode, type LayerArgs, type LayerShape } from './layers/layer.js';
import { layerFromConfig } from './layers/registry.js';
import type { Prediction } from './layers/losses.js';
import { LayersModel, registerModelClass } from './model.js';

/** The layer behind sn.input(): it holds the shape and passes its tensor on. */
export class InputLayer extends Layer {
  constructor(readonly args: LayerArgs & { shape: LayerShape; dtype?: 'float32' | 'int32' }) {
    super('InputLayer', { ...args, inputShape: args.shape });
    if (!Array.isArray(args.shape) || args.shape.some((d) => d !== null && (!Number.isInteger(d) || d < 1))) {
      throw new Error(`input: shape must be a list of positive integers (or null for a length known only at run time), got ${JSON.stringify(args.shape)}`);
    }
    this.build(args.shape);
  }
  computeOutputShape(s: LayerShape) { return s; }
  call(x: Tensor) { return x; }
  getConfig() { return { ...this.args }; }
}

/** sn.input({ shape }): a placeholder for a batch of that shape ([batch, ...shape]). */
export function input(args: LayerArgs & { shape: LayerShape; dtype?: 'float32' | 'int32' }): SymbolicTensor {
  const layer = new InputLayer(args);
  const node: GraphNode = { layer, inputs: [], outputs: [] };
  node.outputs = [new SymbolicTensor([null, ...args.shape], node, 0)];
  return node.outputs[0];
}

const asList = <T>(v: T | T[]) => (Array.isArray(v) ? v : [v]);

export class FunctionalModel extends LayersModel {
  /** Every layer once, inputs first, in the order the graph runs them (discovered by Module for parameters()). */
  readonly layers: Layer[];
  private readonly nodes: GraphNode[];
  private readonly inputTensors: SymbolicTensor[];
  private readonly outputTensors: SymbolicTensor[];

  constructor({ inputs, outputs, name = 'model' }: { inputs: SymbolicTensor | SymbolicTensor[]; outputs: SymbolicTensor | SymbolicTensor[]; name?: string }) {
    super(name);
    this.inputTensors = asList(inputs);
    this.outputTensors = asList(outputs);
    for (const [what, list] of [['inputs', this.inputTensors], ['outputs', this.outputTensors]] as const) {
      if (!list.length || list.some((t) => !(t instanceof SymbolicTensor))) throw new TypeError(`model: ${what} must be sn.input() placeholders or what layer.apply() returned on them`);
    }
    if (this.inputTensors.some((t) => !(t.node.layer instanceof InputLayer))) throw new TypeError('model: inputs must come from sn.input()');
    // Depth-first from the outputs: every node after the nodes it reads.
    const order: GraphNode[] = [];
    const seen = new Set<GraphNode>();
    const visit = (n: GraphNode) => {
      if (seen.has(n)) return;
      seen.add(n);
      for (const t of n.inputs) visit(t.node);
      order.push(n);
    };
    this.outputTensors.forEach((t) => visit(t.node));
    const missing = order.find((n) => n.layer instanceof InputLayer && !this.inputTensors.some((t) => t.node === n));
    if (missing) throw new Error(`model: the outputs depend on input '${missing.layer.name}', which is not in inputs`);
    this.nodes = order.filter((n) => !(n.layer instanceof InputLayer));
    const inputLayers = this.inputTensors.map((t) => t.node.layer);
    this.layers = [...inputLayers, ...new Set(this.nodes.map((n) => n.layer))];
  }

  allLayers() { return this.layers; }
  get inputShapes() { return this.inputTensors.map((t) => t.shape.slice(1)); }
  get outputShapes() { return this.outputTensors.map((t) => t.shape.slice(1)); }
  protected inputLayerName(i: number) { return this.inputTensors[i].node.layer.name; }

  protected outputNames() {
    const names = this.outputTensors.map((t) => t.node.layer.name);
    // A layer that gives several outputs (returnState) names them by position.
    return names.map((n, i) => (names.indexOf(n) === names.lastIndexOf(n) ? n : `${n}_${i}`));
  }

  /** Runs the graph: every node once, masks passed along each edge; a Dense output keeps its logits for the losses. */
  protected runAll(xs: Tensor[], training: boolean): Prediction[] {
    const values = new Map<SymbolicTensor, { t: Tensor; mask: Tensor | null }>();
    this.inputTensors.forEach((s, i) => values.set(s, { t: xs[i], mask: null }));
    const logits = new Map<SymbolicTensor, Tensor>();
    for (const node of this.nodes) {
      const ins = node.inputs.map((s) => values.get(s)!);
      const isOutput = node.layer instanceof Dense && this.outputTensors.includes(node.outputs[0]);
      if (isOutput) {
        const dense = node.layer as Dense;
        const l = dense.logits(ins[0].t);
        logits.set(node.outputs[0], l);
        values.set(node.outputs[0], { t: dense.activation(l), mask: ins[0].mask });
        continue;
      }
      const { outputs, mask } = node.layer.invoke(ins.map((v) => v.t), ins.map((v) => v.mask), training);
      node.outputs.forEach((s, i) => values.set(s, { t: outputs[i], mask: i === 0 ? mask : null }));
    }
    return this.outputTensors.map((s) => {
      const l = logits.get(s) ?? null;
      return { pred: values.get(s)!.t, logits: l, activation: l ? (s.node.layer as Dense).activationName : 'linear' };
    });
  }

  summary(): string {
    const rows = this.layers.map((layer) => {
      const nodes = this.nodes.filter((n) => n.layer === layer);
      const shapes = layer instanceof InputLayer ? [layer.args.shape] : nodes[0].outputs.map((o) => o.shape.slice(1));
      const from = nodes.flatMap((n) => n.inputs.map((s) => s.node.layer.name));
      return { layer, shape: shapes.map(fmtLayerShape).join(', '), connectedTo: from.join(', ') };
    });
    return this.table(rows);
  }

  /** Architecture as JSON: the layers, then the graph's calls by index (node i reads [node, output] pairs). */
  toJSON() {
    const inputNodes = this.inputTensors.map((t) => t.node);
    const allNodes = [...inputNodes, ...this.nodes];
    const ref = (s: SymbolicTensor) => [allNodes.indexOf(s.node), s.outputIndex];
    return {
      className: 'Functional',
      config: {
        name: this.modelName,
        layers: this.layers.map((l) => ({ className: l.className, config: { ...l.getConfig(), name: l.name } })),
        nodes: allNodes.map((n) => ({ layer: this.layers.indexOf(n.layer), inputs: n.inputs.map(ref) })),
        inputs: this.inputTensors.map(ref),
        outputs: this.outputTensors.map(ref),
      },
    };
  }
}

/** sn.model({ inputs, outputs, name }): TF.js's tf.model. */
export function model(args: { inputs: SymbolicTensor | SymbolicTensor[]; outputs: SymbolicTensor | SymbolicTensor[]; name?: string }) {
  return new FunctionalModel(args);
}

registerModelClass('Functional', (config) => {
  const c = config as { name: string; layers: { className: string; config: Record<string, unknown> }[]; nodes: { layer: number; inputs: [number, number][] }[]; inputs: [number, number][]; outputs: [number, number][] };
  const layers = c.layers.map((l) => (l.className === 'InputLayer' ? null : layerFromConfig(l.className, l.config)));
  const made: SymbolicTensor[][] = [];
  for (const n of c.nodes) {
    const spec = c.layers[n.layer];
    if (spec.className === 'InputLayer') made.push([input(spec.config as { shape: LayerShape; name?: string })]);
    else made.push(asList(layers[n.layer]!.apply(n.inputs.map(([i, o]) => made[i][o]))));
  }
  const pick = ([i, o]: [number, number]) => made[i][o];
  return new FunctionalModel({ inputs: c.inputs.map(pick), outputs: c.outputs.map(pick), name: c.name });
});
