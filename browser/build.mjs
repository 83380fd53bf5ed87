// Puts the page's third-party scripts in web/vendor (not committed): hash-wasm's SHA-256 as
// published, and beside it the hashing worker (clients/uppy/hash-worker.js, which loads it),
// Redoc's standalone bundle as published (the API reference at /docs), and Uppy (core +
// @uppy/aws-s3, unmodified) with our plugin (clients/uppy/index.js) bundled into one file for
// web/uppy.html (the plugin finds the worker beside that file).
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const vendor = join(here, '..', 'web', 'vendor');
mkdirSync(vendor, { recursive: true });
copyFileSync(join(here, 'node_modules/hash-wasm/dist/sha256.umd.min.js'), join(vendor, 'sha256.umd.min.js'));
copyFileSync(join(here, '..', 'clients', 'uppy', 'hash-worker.js'), join(vendor, 'hash-worker.js'));
copyFileSync(join(here, 'node_modules/redoc/bundles/redoc.standalone.js'), join(vendor, 'redoc.standalone.js'));
await build({
  stdin: {
    contents: "export { default as Uppy } from '@uppy/core'; export { default as AwsS3 } from '@uppy/aws-s3';"
      + " export { default as VerifiedUploads } from '../clients/uppy/index.js';",
    resolveDir: here,
  },
  // The plugin's `@uppy/core` is the page's (one copy, from browser/node_modules).
  nodePaths: [join(here, 'node_modules')],
  bundle: true,
  format: 'esm',
  minify: true,
  target: 'es2022',
  outfile: join(vendor, 'uppy.js'),
  logLevel: 'warning',
});
console.log(`browser: vendored scripts in ${vendor}`);
