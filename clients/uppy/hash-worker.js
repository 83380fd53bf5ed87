// SHA-256 off the main thread, for the upload page (web/app.js) and the Uppy plugin (index.js
// here): a classic Web Worker that loads hash-wasm's UMD build (npm `hash-wasm`,
// dist/sha256.umd.min.js) from `?hashwasm=URL`, by default `sha256.umd.min.js` beside this file
// (both are vendored together into web/vendor by browser/build.mjs). It reads the file once, in
// order, part by part, and for each part posts:
//   - its SHA-256 (base64, as S3's x-amz-checksum-sha256, signed into the part's URL);
//   - the whole file's SHA-256 state after it: hash-wasm's save() bytes (persisted by the page,
//     so that a reload resumes hashing after the last part S3 holds instead of from byte 0) and
//     the SHA-256 chaining value they hold (the `part_states` entry: eight 32-bit words,
//     big-endian, 64 hex digits);
// and, after the last part, the whole file's digest.
//
// Messages in:
//   {type: 'start', file, partSize, count, from, state}   hash parts from+1..count, resuming from
//                                                         `state` (save() bytes after part `from`)
//   {type: 'credit', upto}                                 may hash parts up to `upto`
// Messages out:
//   {type: 'part', n, size, checksum, state, chain, read}  `read`: bytes this worker has read
//   {type: 'done', digest, read}
//   {type: 'error', message}
/* global hashwasm */
importScripts(new URL(self.location.href).searchParams.get('hashwasm') || './sha256.umd.min.js');

// hash-wasm's save() for SHA-256: a 4-byte id of its wasm build, the 64-byte block buffer, the
// byte count (u64, little-endian), the eight state words (u32, little-endian), the digest size.
const WORDS_AT = 4 + 64 + 8;

function chainingValue(saved) {
  const view = new DataView(saved.buffer, saved.byteOffset, saved.byteLength);
  let hex = '';
  for (let i = 0; i < 8; i += 1) hex += view.getUint32(WORDS_AT + 4 * i, true).toString(16).padStart(8, '0');
  return hex;
}

function toBase64(buf) {
  const bytes = new Uint8Array(buf);
  let s = '';
  for (let i = 0; i < bytes.length; i += 1) s += String.fromCharCode(bytes[i]);
  return btoa(s);
}

let credit = 0;
let wake = null;
const allowed = (n) => new Promise((resolve) => {
  if (n <= credit) return resolve();
  wake = () => { if (n <= credit) { wake = null; resolve(); } };
});

async function run({ file, partSize, count, from, state }) {
  const hasher = await hashwasm.createSHA256();
  hasher.init();
  if (state) hasher.load(state);
  let read = 0;
  for (let n = from + 1; n <= count; n += 1) {
    await allowed(n);
    const start = (n - 1) * partSize;
    const buf = await file.slice(start, Math.min(start + partSize, file.size)).arrayBuffer();
    read += buf.byteLength;
    hasher.update(new Uint8Array(buf));
    const checksum = toBase64(await crypto.subtle.digest('SHA-256', buf));
    const saved = hasher.save();
    postMessage({ type: 'part', n, size: buf.byteLength, checksum, state: saved, chain: chainingValue(saved), read });
  }
  postMessage({ type: 'done', digest: hasher.digest('hex'), read });
}

onmessage = ({ data }) => {
  if (data.type === 'credit') {
    credit = Math.max(credit, data.upto);
    wake?.();
  } else if (data.type === 'start') {
    run(data).catch((e) => postMessage({ type: 'error', message: String(e?.message ?? e) }));
  }
};
