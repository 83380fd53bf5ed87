// VerifiedUploads: an Uppy plugin that makes stock @uppy/aws-s3 (companion mode, against this
// service's Companion routes) upload *verified*: before each file uploads, it hashes the file in
// a Web Worker (hash-worker.js, hash-wasm's SHA-256; the page's main thread only relays
// progress) and declares the digest as the file's `sha256` metadata, so the session is created
// with it (`expected_sha256` on the record) and the service compares the object it completes
// with the user's file instead of just recording what arrived. It also sets the `size` metadata
// that sizes the session (each part URL then signs its exact length).
//
//   import Uppy from '@uppy/core'
//   import AwsS3 from '@uppy/aws-s3'
//   import VerifiedUploads from '@verified-uploads/uppy'
//   new Uppy().use(VerifiedUploads).use(AwsS3, { companionEndpoint: API })
//
// What it cannot do with @uppy/aws-s3 6.x in companion mode: get each part's SHA-256 signed into
// its URL (its Companion client signs a part with `GET /s3/multipart/{id}/{n}?key=` alone, never
// shows a hook the part's body, and sends the PUT with no headers of the signer's), nor send the
// part states at completion (its complete carries only `PartNumber` and `ETag`).
import { BasePlugin } from '@uppy/core';

const MIB = 1024 * 1024;

export default class VerifiedUploads extends BasePlugin {
  static VERSION = '0.1.0';

  // Options: `workerUrl` (hash-worker.js; by default beside this module), `hashWasmUrl`
  // (hash-wasm's dist/sha256.umd.min.js; by default beside the worker), `chunkSize` (bytes
  // read at a time, 8 MiB).
  constructor(uppy, opts) {
    super(uppy, {
      workerUrl: new URL('./hash-worker.js', import.meta.url),
      hashWasmUrl: null,
      chunkSize: 8 * MIB,
      ...opts,
    });
    this.id = this.opts.id || 'VerifiedUploads';
    this.type = 'modifier';
  }

  install() {
    this.uppy.addPreProcessor(this.prepare);
  }

  uninstall() {
    this.uppy.removePreProcessor(this.prepare);
  }

  // Uppy runs preprocessors after `upload()` and before any uploader: hash each file, one at a
  // time, then declare what was hashed.
  prepare = async (fileIDs) => {
    for (const id of fileIDs) {
      const file = this.uppy.getFile(id);
      if (!file || file.isRemote || !(file.data instanceof Blob)) continue;
      const meta = { size: file.data.size };
      // A digest the app declared (say, one published beside the download) is kept: the
      // service then compares the upload with that one.
      const declared = file.meta.sha256 ?? file.meta.SHA256;
      if (!declared) {
        meta.sha256 = await this.hash(file);
        this.uppy.emit('verified-uploads:hashed', this.uppy.getFile(id), meta.sha256);
      }
      this.uppy.setFileMeta(id, meta);
      this.uppy.emit('preprocess-complete', this.uppy.getFile(id));
    }
  };

  // The file's SHA-256 (hex), computed in a worker.
  hash(file) {
    const url = new URL(this.opts.workerUrl, location.href);
    if (this.opts.hashWasmUrl) url.searchParams.set('hashwasm', new URL(this.opts.hashWasmUrl, location.href).href);
    const { chunkSize } = this.opts;
    const blob = file.data;
    const count = Math.max(1, Math.ceil(blob.size / chunkSize));
    return new Promise((resolve, reject) => {
      const worker = new Worker(url);
      const done = (f) => (x) => { worker.terminate(); this.uppy.off('file-removed', removed); f(x); };
      const removed = (f) => {
        if (f.id === file.id) done(reject)(new Error('removed while hashing'));
      };
      this.uppy.on('file-removed', removed);
      worker.onerror = (e) => done(reject)(new Error(`hashing failed: ${e.message || 'the worker failed'}`));
      worker.onmessage = ({ data }) => {
        if (data.type === 'part') {
          this.uppy.emit('preprocess-progress', this.uppy.getFile(file.id), {
            mode: 'determinate',
            message: 'Hashing (SHA-256)…',
            value: blob.size ? data.read / blob.size : 1,
          });
        } else if (data.type === 'done') {
          done(resolve)(data.digest);
        } else if (data.type === 'error') {
          done(reject)(new Error(`hashing failed: ${data.message}`));
        }
      };
      worker.postMessage({ type: 'credit', upto: count });
      worker.postMessage({ type: 'start', file: blob, partSize: chunkSize, count, from: 0, state: null });
    });
  }
}
