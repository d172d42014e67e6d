// Environment for Dawn (the `webgpu` package) to find a software GPU:
// SwiftShader's Vulkan ICD and the Vulkan loader that Debian's chromium
// package installs beside Chromium. Dawn reads them when the process starts,
// so test and bench runners pass this to the Node processes they spawn.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** {} when VK_ICD_FILENAMES is already set (a real driver, or the caller's choice) or no chromium is installed. */
export function swiftShaderEnv() {
  if (process.env.VK_ICD_FILENAMES) return {};
  let icd = '/usr/lib/chromium/vk_swiftshader_icd.json';
  if (!existsSync(icd)) {
    try {
      icd = execFileSync('dpkg', ['-L', 'chromium'], { encoding: 'utf8' }).split('\n').find((l) => l.endsWith('vk_swiftshader_icd.json')) ?? '';
    } catch {
      return {};
    }
  }
  if (!icd) return {};
  const dir = icd.slice(0, icd.lastIndexOf('/'));
  return { VK_ICD_FILENAMES: icd, LD_LIBRARY_PATH: [dir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') };
}
