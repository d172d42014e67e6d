// Worker entry: the engine, exposed to the page over Comlink.

import * as Comlink from 'comlink';
import { Engine } from './engine.js';

Comlink.expose(new Engine());
