// What the import map calls "barcode-detector": the browser's own BarcodeDetector where it
// has one, else the vendored zxing-wasm polyfill, told to load its binary from this build.
// Left alone, the polyfill fetches the binary from a public CDN, which fails offline and
// leaks every scan session to a third party.
import { BarcodeDetector as Polyfill, setZXingModuleOverrides } from '../../vendor/barcode-detector/ponyfill.mjs';

const wasmUrl = new URL('../../vendor/zxing-wasm/zxing_reader.wasm', import.meta.url).href;

setZXingModuleOverrides({
  locateFile: (path, prefix) => (path.endsWith('.wasm') ? wasmUrl : prefix + path),
});

export const BarcodeDetector = globalThis.BarcodeDetector ?? Polyfill;
