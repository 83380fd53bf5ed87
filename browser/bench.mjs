// What the upload page's hashing costs in Chromium: per part it runs hash-wasm's streaming SHA-256
// (the whole file) and WebCrypto's SHA-256 (the part's checksum). Baselines, same run: WebCrypto's
// one-shot digest of the same bytes, and Node's OpenSSL SHA-256. `make bench` prints these figures.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const MIB = 1024 * 1024;
const TOTAL = Number(process.env.BENCH_MIB ?? 512) * MIB;
const PART = 16 * MIB; // the service's default part size

const hashWasm = readFileSync(join(here, '..', 'web', 'vendor', 'sha256.umd.min.js'));
const server = createServer((req, res) => {
  if (req.url === '/sha256.js') {
    res.writeHead(200, { 'content-type': 'text/javascript' }).end(hashWasm);
  } else {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><script src="/sha256.js"></script>');
  }
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const origin = `http://127.0.0.1:${server.address().port}`; // loopback: a secure context

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const version = browser.version();
const page = await browser.newPage();
await page.goto(origin);
const figures = await page.evaluate(async ([total, part]) => {
  const data = new Uint8Array(total);
  let x = 2463534242;
  for (let i = 0; i < total; i += 4) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; data[i] = x; data[i + 1] = x >> 8; data[i + 2] = x >> 16; data[i + 3] = x >> 24; }
  const time = async (f) => { const t = performance.now(); const out = await f(); return [(performance.now() - t) / 1000, out]; };
  const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');
  const best = async (f) => { let r = null; for (let i = 0; i < 3; i += 1) { const s = await time(f); if (!r || s[0] < r[0]) r = s; } return r; };

  const [oneShot, d1] = await best(async () => hex(await crypto.subtle.digest('SHA-256', data)));
  const [streaming, d2] = await best(async () => {
    const h = await hashwasm.createSHA256();
    h.init();
    for (let o = 0; o < total; o += part) h.update(data.subarray(o, o + part));
    return h.digest('hex');
  });
  const [page, d3] = await best(async () => {
    const h = await hashwasm.createSHA256();
    h.init();
    for (let o = 0; o < total; o += part) {
      const chunk = data.slice(o, o + part); // as the page gets each part from Blob.arrayBuffer()
      h.update(chunk);
      await crypto.subtle.digest('SHA-256', chunk);
    }
    return h.digest('hex');
  });
  return { oneShot, streaming, page, same: d1 === d2 && d2 === d3, digest: d1 };
}, [TOTAL, PART]);
await browser.close();
server.close();

// The same bytes through Node's OpenSSL, for a baseline outside the browser.
const data = new Uint8Array(TOTAL);
let x = 2463534242;
for (let i = 0; i < TOTAL; i += 4) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; data[i] = x; data[i + 1] = x >> 8; data[i + 2] = x >> 16; data[i + 3] = x >> 24; }
let openssl = Infinity;
let nodeDigest = '';
for (let i = 0; i < 3; i += 1) {
  const t = performance.now();
  nodeDigest = createHash('sha256').update(data).digest('hex');
  openssl = Math.min(openssl, (performance.now() - t) / 1000);
}
if (!figures.same || nodeDigest !== figures.digest) throw new Error('the digests disagree');

const mibs = (s) => (TOTAL / MIB / s).toFixed(0);
console.log(`browser hashing, ${TOTAL / MIB} MiB in ${PART / MIB} MiB parts (best of 3, Chromium ${version})`);
console.log(`  WebCrypto one-shot SHA-256 (baseline)     ${mibs(figures.oneShot)} MiB/s`);
console.log(`  Node/OpenSSL SHA-256 (baseline)           ${mibs(openssl)} MiB/s`);
console.log(`  hash-wasm streaming SHA-256 (whole file)  ${mibs(figures.streaming)} MiB/s  = ${(figures.oneShot / figures.streaming).toFixed(2)}x WebCrypto one-shot's speed`);
console.log(`  the page per part: streaming + part digest ${mibs(figures.page)} MiB/s  = ${(figures.oneShot / figures.page).toFixed(2)}x WebCrypto one-shot's speed, ${(openssl / figures.page).toFixed(2)}x OpenSSL's`);
