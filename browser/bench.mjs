// What the upload page's hashing costs in Chromium: per part it runs hash-wasm's streaming SHA-256
// (the whole file) and WebCrypto's SHA-256 (the part's checksum), in a Web Worker
// (clients/uppy/hash-worker.js). Baselines, same run: WebCrypto's one-shot digest of the same
// bytes, and Node's OpenSSL SHA-256. With BENCH_API_URL (an API serving the page, `make bench`
// starts one against its S3 server), also the page's end-to-end upload of a BENCH_UPLOAD_MIB
// (1024) file, hashing on vs off (`?hashing=off`), interleaved, best of BENCH_RUNS (2), and the
// longest main-thread task during the hashed uploads, and each upload's CPU-seconds: Chromium's
// (its whole process tree) and those of the processes named in BENCH_PIDS ("s3-server=PID api=PID
// …", set by scripts/bench.sh), utime+stime from /proc. BENCH_UPLOAD_ONLY=1: the upload alone,
// without the hashing figures. `make bench` prints these figures.

import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const MIB = 1024 * 1024;
// 256 MiB: at 512 MiB Chromium could not read back the in-memory Blob of the data (NotReadableError).
const TOTAL = Number(process.env.BENCH_MIB ?? 256) * MIB;
const PART = 16 * MIB; // the service's default part size

const hashWasm = readFileSync(join(here, '..', 'web', 'vendor', 'sha256.umd.min.js'));
const hashWorker = readFileSync(join(here, '..', 'clients', 'uppy', 'hash-worker.js'));
const server = createServer((req, res) => {
  if (req.url === '/sha256.js') {
    res.writeHead(200, { 'content-type': 'text/javascript' }).end(hashWasm);
  } else if (req.url.startsWith('/hash-worker.js')) {
    res.writeHead(200, { 'content-type': 'text/javascript' }).end(hashWorker);
  } else {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><script src="/sha256.js"></script>');
  }
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const origin = `http://127.0.0.1:${server.address().port}`; // loopback: a secure context

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync',
    // The page's upload: the benchmark's S3 server (tests/examples/s3_server.rs) answers no CORS
    // preflight, so this browser does not ask for one (the same requests, minus the OPTIONS).
    ...(process.env.BENCH_API_URL ? ['--disable-web-security'] : [])],
});
const version = browser.version();
const uploadOnly = Boolean(process.env.BENCH_API_URL) && process.env.BENCH_UPLOAD_ONLY === '1';
const page = await browser.newPage();
await page.goto(origin);
const figures = uploadOnly ? null : await page.evaluate(async ([total, part]) => {
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
  // The page's hashing as it runs now: the worker, reading a Blob part by part.
  const blob = new Blob([data]);
  const [worker, d4] = await best(() => new Promise((resolve, reject) => {
    const w = new Worker('/hash-worker.js?hashwasm=/sha256.js');
    const count = Math.ceil(total / part);
    w.onmessage = ({ data: m }) => {
      if (m.type === 'done') { w.terminate(); resolve(m.digest); }
      if (m.type === 'error') reject(new Error(m.message));
    };
    w.onerror = (e) => reject(new Error(e.message));
    w.postMessage({ type: 'credit', upto: count });
    w.postMessage({ type: 'start', file: blob, partSize: part, count, from: 0, state: null });
  }));
  return { oneShot, streaming, page, worker, same: d1 === d2 && d2 === d3 && d3 === d4, digest: d1 };
}, [TOTAL, PART]);

// CPU-seconds so far of a process and every descendant (utime+stime+cutime+cstime from /proc: a
// descendant that exited, once reaped by its parent, counts in that parent's cutime+cstime).
const TICK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) || 100;
const procStat = (pid) => {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) };
  } catch { return null; } // exited
};
const treeCpu = (root) => {
  const children = new Map();
  for (const d of readdirSync('/proc')) {
    const st = /^\d+$/.test(d) ? procStat(d) : null;
    if (st) children.set(st.ppid, [...(children.get(st.ppid) ?? []), [Number(d), st.ticks]]);
  }
  let ticks = procStat(root)?.ticks ?? 0;
  for (let todo = [root]; todo.length;) {
    for (const [pid, t] of children.get(todo.pop()) ?? []) { ticks += t; todo.push(pid); }
  }
  return ticks / TICK;
};
// Chromium: the children of this process (playwright's client exposes no pid for a launched
// browser; the browser is the only process this one starts), and the processes of BENCH_PIDS.
const chromiumCpu = () => {
  let s = 0;
  for (const d of readdirSync('/proc')) if (/^\d+$/.test(d) && procStat(d)?.ppid === process.pid) s += treeCpu(Number(d));
  return s;
};
const watched = (process.env.BENCH_PIDS ?? '').split(/\s+/).filter(Boolean).map((w) => w.split('='));
const cpuNow = () => ({ chromium: chromiumCpu(), ...Object.fromEntries(watched.map(([n, pid]) => [n, treeCpu(Number(pid))])) });

// The page end to end: a file on disk uploaded through the API, hashing on and off.
let upload = null;
const API = process.env.BENCH_API_URL?.replace(/\/+$/, '');
if (API) {
  const size = Number(process.env.BENCH_UPLOAD_MIB ?? 1024) * MIB;
  const dir = mkdtempSync(join(tmpdir(), 'vu-bench-'));
  const path = join(dir, 'page-upload.bin');
  const fd = openSync(path, 'w');
  const block = new Uint8Array(MIB);
  let y = 88172645;
  for (let o = 0; o < size; o += MIB) {
    for (let i = 0; i < MIB; i += 4) { y ^= y << 13; y >>>= 0; y ^= y >>> 17; y ^= y << 5; y >>>= 0; block[i] = y; block[i + 1] = y >> 8; block[i + 2] = y >> 16; block[i + 3] = y >> 24; }
    writeSync(fd, block, 0, Math.min(MIB, size - o));
  }
  closeSync(fd);
  const once = async (hashing) => {
    const context = await browser.newContext();
    await context.addInitScript(() => {
      window.longTasks = [];
      new PerformanceObserver((l) => { for (const e of l.getEntries()) window.longTasks.push(e.duration); })
        .observe({ type: 'longtask', buffered: true });
    });
    const p = await context.newPage();
    await p.goto(`${API}/${hashing ? '' : '?hashing=off'}`);
    const before = await p.evaluate(() => window.longTasks.length);
    const cpuBefore = cpuNow();
    const t = performance.now();
    await p.setInputFiles('#files', path);
    await p.locator('#uploads li[data-state="verified"]').waitFor({ timeout: 30 * 60_000 });
    const seconds = (performance.now() - t) / 1000;
    const cpuAfter = cpuNow();
    const cpu = Object.fromEntries(Object.keys(cpuAfter).map((n) => [n, cpuAfter[n] - (cpuBefore[n] ?? 0)]));
    const longest = Math.max(0, ...(await p.evaluate((b) => window.longTasks.slice(b), before)));
    await context.close();
    return { seconds, longest, cpu };
  };
  const runs = Number(process.env.BENCH_RUNS ?? 2);
  const on = [];
  const off = [];
  for (let i = 0; i < runs; i += 1) { on.push(await once(true)); off.push(await once(false)); }
  rmSync(dir, { recursive: true, force: true });
  const bestOf = (xs) => Math.min(...xs.map((x) => x.seconds));
  upload = { size, on: bestOf(on), off: bestOf(off), longest: Math.max(...on.map((x) => x.longest)), runs: { on, off } };
}
await browser.close();
server.close();

// The same bytes through Node's OpenSSL, for a baseline outside the browser.
const data = new Uint8Array(figures ? TOTAL : 0);
let x = 2463534242;
for (let i = 0; i < data.length; i += 4) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; data[i] = x; data[i + 1] = x >> 8; data[i + 2] = x >> 16; data[i + 3] = x >> 24; }
let openssl = Infinity;
let nodeDigest = '';
for (let i = 0; i < 3; i += 1) {
  const t = performance.now();
  nodeDigest = createHash('sha256').update(data).digest('hex');
  openssl = Math.min(openssl, (performance.now() - t) / 1000);
}
if (figures && (!figures.same || nodeDigest !== figures.digest)) throw new Error('the digests disagree');

const mibs = (s) => (TOTAL / MIB / s).toFixed(0);
if (figures) {
  console.log(`browser hashing, ${TOTAL / MIB} MiB in ${PART / MIB} MiB parts (best of 3, Chromium ${version})`);
  console.log(`  WebCrypto one-shot SHA-256 (baseline)     ${mibs(figures.oneShot)} MiB/s`);
  console.log(`  Node/OpenSSL SHA-256 (baseline)           ${mibs(openssl)} MiB/s`);
  console.log(`  hash-wasm streaming SHA-256 (whole file)  ${mibs(figures.streaming)} MiB/s  = ${(figures.oneShot / figures.streaming).toFixed(2)}x WebCrypto one-shot's speed`);
  console.log(`  the page per part: streaming + part digest ${mibs(figures.page)} MiB/s  = ${(figures.oneShot / figures.page).toFixed(2)}x WebCrypto one-shot's speed, ${(openssl / figures.page).toFixed(2)}x OpenSSL's`);
  console.log(`  the page's worker (reads a Blob per part)  ${mibs(figures.worker)} MiB/s  = ${(figures.oneShot / figures.worker).toFixed(2)}x WebCrypto one-shot's speed`);
}
if (upload) {
  const rate = (s) => (upload.size / MIB / s).toFixed(0);
  console.log(`the page's upload of ${upload.size / MIB} MiB, to verified (best of ${process.env.BENCH_RUNS ?? 2}, interleaved)`);
  console.log(`  hashing on: ${upload.on.toFixed(1)} s (${rate(upload.on)} MiB/s)   hashing off: ${upload.off.toFixed(1)} s (${rate(upload.off)} MiB/s)   on/off throughput: ${(upload.off / upload.on).toFixed(2)}x (target >= 0.9)`);
  console.log(`  longest main-thread task while hashing: ${upload.longest ? `${upload.longest.toFixed(0)} ms` : 'none over 50 ms'}`);
  // Each run: its wall time and the CPU-seconds each process spent during it (utime+stime).
  const cpuLine = (c) => Object.entries(c).map(([n, s]) => `${n} ${s.toFixed(1)}`).join('  ');
  const cpuRatio = (a, b) => Object.keys(a.cpu).map((n) => `${n} ${(a.cpu[n] / b.cpu[n]).toFixed(2)}x`).join('  ');
  console.log('  per run, CPU-seconds during the upload (chromium: its whole process tree):');
  upload.runs.on.forEach((on, i) => {
    const off = upload.runs.off[i];
    console.log(`  run ${i + 1} hashing on:  ${on.seconds.toFixed(1)} s (${rate(on.seconds)} MiB/s)   CPU-s: ${cpuLine(on.cpu)}`);
    console.log(`  run ${i + 1} hashing off: ${off.seconds.toFixed(1)} s (${rate(off.seconds)} MiB/s)   CPU-s: ${cpuLine(off.cpu)}`);
    console.log(`  run ${i + 1} on/off: throughput ${(off.seconds / on.seconds).toFixed(2)}x   CPU ${cpuRatio(on, off)}`);
  });
}
