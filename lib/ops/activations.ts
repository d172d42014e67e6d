// Every activation name once: the names Keras layers take (TF.js's
// spelling, and Keras's snake_case where it differs) and which ones the
// matmul kernel can apply in its store (linear's epilogue). Every list of
// activations derives from this table; what each computes on the page is
// lib/layers/core.ts's ACTIVATION_FNS, typed by it. Plain data: the worker
// imports it too.

interface ActivationInfo {
  /**
   * Fused into the matmul's store: 'output' when its derivative follows from
   * the activation's output, 'input' when backward must recompute the
   * pre-activation. Absent: applied as its own op.
   */
  epilogue?: 'output' | 'input';
  /** Keras's snake_case spelling, where it differs. */
  keras?: string;
}

export const ACTIVATIONS = {
  linear: {},
  relu: { epilogue: 'output' },
  sigmoid: { epilogue: 'output' },
  tanh: { epilogue: 'output' },
  // Exact (erf) GELU, as PyTorch's default and TF.js's 'gelu'.
  gelu: { epilogue: 'input' },
  softmax: {},
  logSoftmax: { keras: 'log_softmax' },
  elu: {},
  softplus: {},
  hardSigmoid: { keras: 'hard_sigmoid' },
  selu: {},
  softsign: {},
  swish: {},
  mish: {},
  // TF.js's name for GELU's tanh approximation.
  gelu_new: {},
} as const satisfies Record<string, ActivationInfo>;

type Table = typeof ACTIVATIONS;
/** An activation by its table name (TF.js's spelling). */
export type ActivationKey = keyof Table;
type KerasSpelling = { [K in ActivationKey]: Table[K] extends { keras: infer S extends string } ? S : never }[ActivationKey];

/** An activation's name, in TF.js's or Keras's spelling. */
export type ActivationName = ActivationKey | KerasSpelling;

/** Activations the matmul kernel applies in its store. */
export type Activation = { [K in ActivationKey]: Table[K] extends { epilogue: string } ? K : never }[ActivationKey];

/** Activations whose derivative follows from their output. */
export type OutputDerivedActivation = { [K in ActivationKey]: Table[K] extends { epilogue: 'output' } ? K : never }[ActivationKey];

/** How the matmul kernel's store applies an activation (see ActivationInfo.epilogue). */
export const epilogueOf = (name: ActivationKey): ActivationInfo['epilogue'] => (ACTIVATIONS[name] as ActivationInfo).epilogue;

const BY_NAME = new Map<string, ActivationKey>(
  Object.entries(ACTIVATIONS).flatMap(([name, info]: [string, ActivationInfo]) => [name, ...(info.keras ? [info.keras] : [])].map((spelling) => [spelling, name as ActivationKey] as const)),
);

/** The table's name for an activation in either spelling (undefined: 'linear'); throws listing the valid names. */
export function activationNamed(name: string | undefined): ActivationKey {
  const key = BY_NAME.get(name ?? 'linear');
  if (!key) throw new Error(`unknown activation '${name}'; valid: ${[...BY_NAME.keys()].join(', ')}`);
  return key;
}
