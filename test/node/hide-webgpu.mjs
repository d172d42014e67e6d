// Preloaded with --import: makes the optional `webgpu` package unresolvable,
// in this thread and in the engine's worker, as on an install without it.
import { register } from 'node:module';

register('data:text/javascript,' + encodeURIComponent(`
export async function resolve(specifier, context, next) {
  if (specifier === 'webgpu') throw Object.assign(new Error("Cannot find package 'webgpu'"), { code: 'ERR_MODULE_NOT_FOUND' });
  return next(specifier, context);
}`));
