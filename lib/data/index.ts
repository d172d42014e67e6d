// sn.data: datasets and the DataLoader.

export { TensorDataset, type Dataset } from './dataset.js';
export { DataLoader, type DataLoaderOptions, type Collated } from './dataloader.js';
