// sn.data: datasets and the DataLoader.

export { TensorDataset, type Dataset } from './dataset.js';
export { DataLoader, defaultCollate, type DataLoaderOptions, type Collated } from './dataloader.js';
