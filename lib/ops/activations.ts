// Activations the matmul kernel applies in its store (linear's epilogue).

export type Activation = 'relu' | 'sigmoid' | 'tanh' | 'gelu';
