// Puts the page's third-party scripts in web/vendor (not committed): hash-wasm's SHA-256 as
// published, Redoc's standalone bundle as published (the API reference at /docs), and Uppy
// (core + @uppy/aws-s3, unmodified) bundled into one file for web/uppy.html.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const vendor = join(here, '..', 'web', 'vendor');
mkdirSync(vendor, { recursive: true });
copyFileSync(join(here, 'node_modules/hash-wasm/dist/sha256.umd.min.js'), join(vendor, 'sha256.umd.min.js'));
copyFileSync(join(here, 'node_modules/redoc/bundles/redoc.standalone.js'), join(vendor, 'redoc.standalone.js'));
await build({
  stdin: {
    contents: "export { default as Uppy } from '@uppy/core'; export { default as AwsS3 } from '@uppy/aws-s3';",
    resolveDir: here,
  },
  bundle: true,
  format: 'esm',
  minify: true,
  target: 'es2022',
  outfile: join(vendor, 'uppy.js'),
  logLevel: 'warning',
});
console.log(`browser: vendored scripts in ${vendor}`);
