// Browser tests: headless Chromium (Debian's) driven by playwright-core, against the real API
// binary on API_URL and the emulator behind it, on Node's own runner (node:test). Run by
// `scripts/browser.sh test` from `make test` with the TAP reporter: its closing `# tests`, `# pass`,
// `# fail`, `# cancelled` (timed out) and `# skipped` lines are what `make test` counts.
// By hand (the API and the emulator running, API_URL set; a pattern picks tests by name):
//   node --test-reporter=spec --test-force-exit [--test-name-pattern=PATTERN] browser/tests.mjs

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const API = (process.env.API_URL ?? 'http://127.0.0.1:3000').replace(/\/+$/, '');
// An API whose S3 is the strict one (scripts/strict_s3.sh; LocalStack checks what S3 checks).
const STRICT_API = (process.env.STRICT_API_URL ?? '').replace(/\/+$/, '');
const SHOTS = process.env.SCREENSHOT_DIR ?? join(here, '..', 'docs', 'screenshots');
const PART = 5 * 1024 * 1024; // the API under test runs with DEFAULT_PART_SIZE=5 MiB
const TIMEOUT = 60_000; // each wait for the page
// Each test as a whole (a few seconds when all is well): a hung browser fails the test (reported
// as cancelled) instead of hanging the run; longer than one wait, so that a wait's own message wins.
const TEST_TIMEOUT = 2 * TIMEOUT;
const files = mkdtempSync(join(tmpdir(), 'vu-browser-'));

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

// A file on disk (so that choosing it twice gives the same name, size and mtime).
function makeFile(name, size) {
  const data = randomBytes(size);
  const path = join(files, name);
  writeFileSync(path, data);
  return { path, size, sha256: sha256(data) };
}

async function record(id, api = API) {
  const res = await fetch(`${api}/uploads/${id}`);
  assert.equal(res.status, 200, `GET /uploads/${id}`);
  return res.json();
}

// The item as DynamoDB holds it, read with boto3 beside the API, not through it.
function dynamoItem(id) {
  const py = join(here, '..', '.venv', 'bin', 'python');
  const out = execFileSync(py, ['-c', `
import json, os, sys, boto3
t = boto3.resource("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).Table(os.environ["TABLE_NAME"])
print(json.dumps(t.get_item(Key={"upload_id": sys.argv[1]}).get("Item"), default=str))
`, id]);
  return JSON.parse(out.toString());
}

// PUTs of parts to S3 seen by the page: part numbers, and whether each carried its checksum.
function watchParts(page) {
  const seen = { started: [], finished: [], checksums: 0, lengthSigned: 0 };
  page.on('request', (r) => {
    const url = new URL(r.url());
    const n = url.searchParams.get('partNumber');
    if (r.method() === 'PUT' && n) {
      seen.started.push(Number(n));
      if ((url.searchParams.get('X-Amz-SignedHeaders') ?? '').split(';').includes('content-length')) {
        seen.lengthSigned += 1;
      }
      if (r.headers()['x-amz-checksum-sha256']) seen.checksums += 1;
    }
  });
  page.on('requestfinished', (r) => {
    const n = new URL(r.url()).searchParams.get('partNumber');
    if (r.method() === 'PUT' && n) seen.finished.push(Number(n));
  });
  return seen;
}

// Holds the requests `held(route)` picks until `release()` (or forever): a deterministic
// "mid-upload". `forget()` stops holding new ones; one already held stays held until the page
// drops it.
async function hold(page, match, held = () => true) {
  let release;
  const gate = new Promise((r) => { release = r; });
  let holding = true;
  await page.route(match, async (route) => {
    if (holding && held(route)) await gate;
    await route.continue().catch(() => {});
  });
  return {
    release: async () => {
      release();
      await page.unroute(match);
    },
    forget: () => { holding = false; },
  };
}

// Holds the PUT of `part`.
const holdPart = (page, part) =>
  hold(page, (url) => url.searchParams.get('partNumber') === String(part));

// Holds the request that signs `part` (so its bytes have not left): progress shows the parts
// sent so far, for the mid-upload screenshot.
const holdSigning = (page, part) =>
  hold(page, (url) => url.pathname.endsWith('/parts'), (route) =>
    route.request().method() === 'POST' && route.request().postDataJSON()?.part_numbers?.includes(part));

// Starts uploading a 3-part `file` with part 3's PUT held; returns once parts 1 and 2 are in S3.
async function uploadTwoOfThree(context, file) {
  const page = await openPage(context);
  const parts = watchParts(page);
  const held = await holdPart(page, 3);
  await page.setInputFiles('#files', file.path);
  await until('parts 1 and 2', () => parts.finished.includes(1) && parts.finished.includes(2));
  return { page, parts, held };
}

async function until(what, cond, ms = TIMEOUT) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const row = (page) => page.locator('#uploads li').first();

// Waits for the newest upload row to reach `state`; a timeout says what the row showed.
async function reach(page, state) {
  try {
    await row(page).and(page.locator(`[data-state="${state}"]`)).waitFor();
  } catch (e) {
    const shown = await row(page).textContent().catch(() => '(no row)');
    throw new Error(`the upload never became ${state}; the page showed: ${shown.replace(/\s+/g, ' ')}`);
  }
}

async function openPage(context, path = '/', api = API) {
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on('pageerror', (e) => console.error(`  page error: ${e.message}`));
  await page.goto(`${api}${path}`);
  return page;
}

// One Chromium for every test; each test opens its own context (and closes it when it passes).
let browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}, { timeout: TIMEOUT });
// A test that failed or timed out left its context open, maybe its page still waiting: closed here,
// so nothing of it runs on into the next test.
afterEach(async () => {
  await Promise.all((browser?.contexts() ?? []).map((c) => c.close()));
}, { timeout: TIMEOUT });
after(async () => {
  try {
    await browser?.close();
  } finally {
    rmSync(files, { recursive: true, force: true });
  }
}, { timeout: TIMEOUT });

test('our page uploads a multi-part file, S3 checks each part, the service verifies it', { timeout: TEST_TIMEOUT }, async () => {
  const file = makeFile('three-parts.bin', 3 * PART - 12_345);
  const context = await browser.newContext({ viewport: { width: 900, height: 620 } });
  const page = await openPage(context);
  const parts = watchParts(page);
  const held = await holdSigning(page, 3);
  await page.setInputFiles('#files', file.path);
  await until('parts 1 and 2', () => parts.finished.includes(1) && parts.finished.includes(2));
  await page.waitForFunction(() => document.querySelector('#uploads li progress.sent').value > 60);
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, 'page-uploading.png') });
  await held.release();
  await reach(page, 'verified');
  await page.screenshot({ path: join(SHOTS, 'page-verified.png') });

  const id = await row(page).getAttribute('data-upload-id');
  const r = await record(id);
  assert.equal(r.status, 'verified', 'status');
  assert.equal(r.sha256, file.sha256, 'recorded digest');
  assert.equal(r.size, file.size, 'size');
  assert.equal(r.part_count, 3, 'part count');
  assert.ok((await row(page).locator('.digest').textContent()).includes(file.sha256), 'digest shown');
  assert.equal(parts.started.sort().join(), '1,2,3', 'parts sent');
  assert.equal(parts.checksums, 3, 'PUTs carrying x-amz-checksum-sha256');
  // The page offers the verified version for download, and that link holds the very bytes.
  const link = row(page).locator('a.download');
  await link.waitFor({ state: 'visible' });
  const href = await link.getAttribute('href');
  assert.ok(href.includes(`versionId=${encodeURIComponent(r.version_id)}`), `download names the version: ${href}`);
  const got = await page.request.get(href);
  assert.equal(sha256(await got.body()), file.sha256, 'downloaded digest');
  // Beside it, the upload's signed receipt (scripts/env.sh turns receipts on), naming those bytes.
  const receiptLink = row(page).locator('a.receipt');
  await receiptLink.waitFor({ state: 'visible' });
  assert.equal(await receiptLink.getAttribute('download'), 'three-parts.bin.receipt.jwt', 'receipt file name');
  const receipt = await page.evaluate(async (h) => (await fetch(h)).text(), await receiptLink.getAttribute('href'));
  const claims = JSON.parse(Buffer.from(receipt.trim().split('.')[1], 'base64url').toString());
  assert.equal(claims.upload_id, id, 'receipt of this upload');
  assert.equal(claims.sha256, file.sha256, 'receipt digest');
  assert.equal(claims.size, file.size, 'receipt size');
  await context.close();
});

test('a reload mid-way resumes from the parts S3 holds, sending only the missing one', { timeout: TEST_TIMEOUT }, async () => {
  const file = makeFile('resumed.bin', 2 * PART + 777);
  const context = await browser.newContext();
  const { page, parts, held } = await uploadTwoOfThree(context, file);
  const id = await row(page).getAttribute('data-upload-id');
  // The hash state after part 2 is saved (IndexedDB) once parts 1 and 2 are in S3.
  await row(page).and(page.locator('[data-hash-saved="2"]')).waitFor();
  await held.forget();
  const sentBefore = parts.started.length;
  await page.reload(); // part 3's PUT, still in flight, dies with the page

  await page.setInputFiles('#files', file.path);
  await reach(page, 'verified');
  assert.equal(await row(page).getAttribute('data-upload-id'), id, 'same session after the reload');
  assert.equal(parts.started.slice(sentBefore).join(), '3', 'parts sent after the reload');
  // Hashing resumed after part 2: the worker read part 3's bytes only.
  assert.equal(await row(page).getAttribute('data-hashed-from'), '2', 'hashing resumed after part');
  assert.equal(Number(await row(page).getAttribute('data-hash-read')), file.size - 2 * PART, 'bytes the worker read after the reload');
  const r = await record(id);
  assert.equal(r.status, 'verified', 'status');
  assert.equal(r.sha256, file.sha256, 'recorded digest');
  await context.close();
});

// The SHA-256 chaining value after each 64-byte block, computed here independently of the page
// (FIPS 180-4's compression function), as 64 hex digits: eight 32-bit words, big-endian.
function chainingValues(data, partSize) {
  const K = [0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2];
  const r = (x, n) => (x >>> n) | (x << (32 - n));
  let H = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
  const w = new Array(64);
  const out = {};
  for (let o = 0; o + 64 <= data.length; o += 64) {
    for (let i = 0; i < 16; i += 1) w[i] = data.readUInt32BE(o + 4 * i);
    for (let i = 16; i < 64; i += 1) {
      const s0 = r(w[i - 15], 7) ^ r(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = r(w[i - 2], 17) ^ r(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, h] = H;
    for (let i = 0; i < 64; i += 1) {
      const t1 = (h + (r(e, 6) ^ r(e, 11) ^ r(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((r(a, 2) ^ r(a, 13) ^ r(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      h = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    H = [a, b, c, d, e, f, g, h].map((x, i) => (x + H[i]) >>> 0);
    if ((o + 64) % partSize === 0) out[String((o + 64) / partSize)] = H.map((x) => x.toString(16).padStart(8, '0')).join('');
  }
  return out;
}

test('a large file uploads with hashing in a worker: no main-thread task over 50 ms, hashed and sent shown apart', { timeout: 4 * TIMEOUT }, async () => {
  const file = makeFile('large.bin', 64 * 1024 * 1024); // the API under test allows 64 MiB
  const context = await browser.newContext();
  // Every main-thread task over 50 ms (the Long Tasks API), from the page's first script on.
  await context.addInitScript(() => {
    window.longTasks = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.longTasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
  });
  const page = await openPage(context);
  const parts = watchParts(page);
  const since = await page.evaluate(() => performance.now());
  await page.setInputFiles('#files', file.path);
  // Mid-upload, hashing runs ahead of sending, each on its own bar.
  const seen = [];
  const sample = setInterval(() => {
    page.evaluate(() => [...document.querySelectorAll('#uploads li progress')].map((p) => p.value))
      .then((v) => seen.push(v), () => {});
  }, 100);
  try {
    await row(page).and(page.locator('[data-state="verified"]')).waitFor({ timeout: 3 * TIMEOUT });
  } finally {
    clearInterval(sample);
  }
  // Each long task, and when the first part's PUT started (page time).
  const { tasks, firstPut } = await page.evaluate(() => ({
    tasks: window.longTasks,
    firstPut: Math.min(...performance.getEntriesByType('resource')
      .filter((e) => e.name.includes('partNumber=')).map((e) => e.startTime)),
  }));
  const long = tasks.filter((t) => t.start >= since);
  console.log(`  # long tasks since the file was chosen: ${JSON.stringify(long)}; first PUT at +${(firstPut - since).toFixed(0)} ms`);
  assert.deepEqual(long, [], 'main-thread tasks over 50 ms during the upload');
  assert.ok(seen.some(([hashed, sent]) => hashed > sent && sent > 0 && sent < 100), `hashing ahead of sending on its own bar: ${JSON.stringify(seen.slice(0, 40))}`);
  assert.equal(Number(await row(page).getAttribute('data-hash-read')), file.size, 'the worker read the file once');
  const r = await record(await row(page).getAttribute('data-upload-id'));
  assert.equal(r.status, 'verified', 'status');
  assert.equal(r.sha256, file.sha256, 'recorded digest');
  assert.equal(parts.checksums, Math.ceil(file.size / PART), 'PUTs carrying x-amz-checksum-sha256');
  await context.close();
});

test('complete carries each part boundary\'s SHA-256 chaining value, and the record verifies in as many segments', { timeout: TEST_TIMEOUT }, async () => {
  const file = makeFile('part-states.bin', 3 * PART - 999);
  const context = await browser.newContext();
  const page = await openPage(context);
  const sent = [];
  await page.route((url) => url.pathname.endsWith('/complete'), async (route) => {
    sent.push(route.request().postDataJSON());
    await route.continue();
  });
  await page.setInputFiles('#files', file.path);
  await reach(page, 'verified');
  assert.equal(sent.length, 1, 'complete calls');
  // Parts 1 and 2: the last part's state is the digest's, not sent.
  assert.deepEqual(sent[0].part_states, chainingValues(readFileSync(file.path), PART), 'chaining values after parts 1 and 2');
  const r = await record(await row(page).getAttribute('data-upload-id'));
  assert.equal(r.status, 'verified', 'status');
  assert.equal(r.sha256, file.sha256, 'recorded digest');
  assert.equal(r.segments, 3, 'the verdict rests on three independently hashed segments');
  await context.close();
});

test('with ?hashing=off (the benchmark\'s baseline) the page sends no checksum, digest or part state it did not compute, and the upload verifies', { timeout: TEST_TIMEOUT }, async () => {
  const file = makeFile('unhashed.bin', 3 * PART - 4321);
  const context = await browser.newContext();
  const page = await openPage(context, '/?hashing=off');
  const parts = watchParts(page);
  const bodies = { create: [], sign: [], complete: [] };
  await page.route((url) => url.pathname.startsWith('/uploads'), async (route) => {
    const r = route.request();
    const path = new URL(r.url()).pathname;
    if (r.method() === 'POST') {
      const kind = path === '/uploads' ? 'create' : path.endsWith('/parts') ? 'sign' : path.endsWith('/complete') ? 'complete' : null;
      if (kind) bodies[kind].push(r.postDataJSON() ?? {});
    }
    await route.continue();
  });
  const workers = [];
  page.on('worker', (w) => workers.push(w.url()));
  await page.setInputFiles('#files', file.path);
  await reach(page, 'verified');
  assert.equal(bodies.create.length, 1, 'one session');
  assert.equal(bodies.create[0].part_checksums, false, 'no part checksums asked for');
  assert.equal(bodies.create[0].sha256, undefined, 'no digest declared at creation');
  assert.ok(bodies.sign.length >= 3 && bodies.sign.every((b) => b.sha256 === undefined), `no part digest signed: ${JSON.stringify(bodies.sign)}`);
  assert.equal(parts.checksums, 0, 'PUTs carrying x-amz-checksum-sha256');
  assert.equal(bodies.complete.length, 1, 'complete calls');
  assert.equal(bodies.complete[0].part_states, undefined, `no part_states: ${JSON.stringify(bodies.complete[0])}`);
  assert.equal(bodies.complete[0].sha256, undefined, 'no digest declared at complete');
  assert.deepEqual(workers.filter((u) => u.includes('hash-worker')), [], 'no hashing worker');
  const r = await record(await row(page).getAttribute('data-upload-id'));
  assert.equal(r.status, 'verified', 'status');
  assert.equal(r.sha256, file.sha256, 'the digest the service computed');
  assert.equal(r.segments, 1, 'one sequential stream: no states to cut segments at');
  await context.close();
});

test('two files dropped on the page upload side by side, each verified', { timeout: TEST_TIMEOUT }, async () => {
  const a = makeFile('dropped-a.bin', PART + 100);
  const b = makeFile('dropped-b.txt', 4096);
  const context = await browser.newContext();
  const page = await openPage(context);
  const payload = [a, b].map((f) => ({
    name: f.path.split('/').pop(),
    bytes: readFileSync(f.path).toString('base64'),
  }));
  await page.evaluate((files) => {
    const dt = new DataTransfer();
    for (const f of files) {
      const bin = Uint8Array.from(atob(f.bytes), (c) => c.charCodeAt(0));
      dt.items.add(new File([bin], f.name));
    }
    const zone = document.querySelector('#drop');
    zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
    zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, payload);
  await page.locator('#uploads li[data-state="verified"]').nth(1).waitFor();
  for (const f of [a, b]) {
    const li = page.locator('#uploads li').filter({ hasText: f.path.split('/').pop() });
    const r = await record(await li.getAttribute('data-upload-id'));
    assert.equal(r.sha256, f.sha256, `${f.path} digest`);
    assert.equal(r.status, 'verified', `${f.path} status`);
  }
  await context.close();
});

test('an empty file uploads and verifies', { timeout: TEST_TIMEOUT }, async () => {
  const file = makeFile('empty.txt', 0);
  const context = await browser.newContext();
  const page = await openPage(context);
  await page.setInputFiles('#files', file.path);
  await reach(page, 'verified');
  const r = await record(await row(page).getAttribute('data-upload-id'));
  assert.equal(r.status, 'verified', 'status');
  assert.equal(r.sha256, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'digest of nothing');
  assert.equal(r.size, 0, 'size');
  await context.close();
});

test('a wrong declared digest fails verification, and the page says so', { timeout: TEST_TIMEOUT }, async () => {
  const file = makeFile('wrong-digest.bin', 1024 * 1024 + 5);
  const declared = sha256(Buffer.from('not this file'));
  const context = await browser.newContext();
  const page = await openPage(context);
  await page.locator('summary').click();
  await page.fill('#expected', declared);
  await page.setInputFiles('#files', file.path);
  await reach(page, 'failed');
  const status = await row(page).locator('.status').textContent();
  assert.ok(status.includes('sha256 mismatch') && status.includes(declared), `status shown: ${status}`);
  const r = await record(await row(page).getAttribute('data-upload-id'));
  assert.equal(r.status, 'failed', 'status');
  assert.equal(r.expected_sha256, declared, 'declared digest');
  assert.equal(r.sha256, file.sha256, 'computed digest');
  await context.close();
});

test('a file over the service\'s limit is refused with its reason, nothing sent', { timeout: TEST_TIMEOUT }, async () => {
  const file = makeFile('too-big.bin', 64 * 1024 * 1024 + 1); // the API under test allows 64 MiB
  const context = await browser.newContext();
  const page = await openPage(context);
  const parts = watchParts(page);
  await page.setInputFiles('#files', file.path);
  await reach(page, 'refused');
  const status = await row(page).locator('.status').textContent();
  assert.ok(/exceeds the limit of 67108864 bytes/.test(status), `status shown: ${status}`);
  assert.ok(await row(page).locator('button.resume').isHidden(), 'no resume offered');
  assert.equal(parts.started.length, 0, 'PUTs');
  await context.close();
});

test('an expired part URL (S3 403) is signed again at once and the part retried', { timeout: TEST_TIMEOUT }, async () => {
  const file = makeFile('re-signed.bin', 300_000);
  const context = await browser.newContext();
  const page = await openPage(context);
  let signs = 0;
  const signedAt = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && r.url().endsWith('/parts')) { signs += 1; signedAt.push(Date.now()); }
  });
  let refused = 0;
  let refusedAt = 0;
  const s3Put = (url) => url.searchParams.has('partNumber');
  await page.route(s3Put, async (route) => {
    if (route.request().method() === 'PUT' && refused === 0) {
      refused += 1;
      refusedAt = Date.now();
      return route.fulfill({
        status: 403,
        headers: { 'access-control-allow-origin': '*', 'content-type': 'application/xml' },
        body: '<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>',
      });
    }
    return route.continue();
  });
  await page.setInputFiles('#files', file.path);
  await reach(page, 'verified');
  assert.equal(refused, 1, 'refused PUTs');
  assert.equal(signs, 2, 'signing calls for the one part');
  // S3's expiry code: signed again without the back-off other refusals wait (1 s and more).
  assert.ok(signedAt[1] - refusedAt < 900, `re-signed ${signedAt[1] - refusedAt} ms after the 403`);
  assert.equal((await record(await row(page).getAttribute('data-upload-id'))).sha256, file.sha256, 'digest');
  await context.close();
});

test('pause and resume from the keyboard; cancel aborts the multipart upload', { timeout: TEST_TIMEOUT }, async () => {
  const file = makeFile('paused.bin', 2 * PART + 1);
  const context = await browser.newContext();
  const { page, parts, held } = await uploadTwoOfThree(context, file);
  await row(page).locator('button.pause').focus();
  await page.keyboard.press('Enter');
  await reach(page, 'paused');
  await held.release();
  await row(page).locator('button.resume').focus();
  await page.keyboard.press('Enter');
  await reach(page, 'verified');
  assert.equal(parts.started.filter((n) => n !== 3).sort().join(), '1,2', 'parts 1 and 2 sent once');

  const other = makeFile('cancelled.bin', 2 * PART + 1);
  const held2 = await holdPart(page, 3);
  await page.setInputFiles('#files', other.path);
  await until('a second upload', async () => (await row(page).getAttribute('data-upload-id')) !== null
    && (await row(page).locator('.name').textContent()) === 'cancelled.bin');
  await until('parts of the second upload', () => parts.finished.filter((n) => n === 1).length >= 2);
  await row(page).getByRole('button', { name: 'Cancel cancelled.bin' }).click();
  await page.waitForFunction(() => /aborted/.test(document.querySelector('#uploads li .status').textContent));
  const id = await row(page).getAttribute('data-upload-id');
  assert.equal((await record(id)).status, 'aborted', 'status after cancel');
  await held2.release();
  await context.close();
});

test('stock Uppy (@uppy/aws-s3, companionEndpoint) uploads a multi-part file, verified in DynamoDB', { timeout: TEST_TIMEOUT }, async () => {
  const context = await browser.newContext();
  const page = await openPage(context, '/uppy.html');
  const parts = watchParts(page);
  const size = 2 * PART + 4242;
  // The same bytes in the page and here: a xorshift stream from a fixed seed.
  const bytes = (n) => {
    const out = new Uint8Array(n);
    let x = 2463534242;
    for (let i = 0; i < n; i += 1) {
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
      out[i] = x & 255;
    }
    return out;
  };
  const result = await page.evaluate(async ([n, src]) => {
    const data = (0, eval)(`(${src})`)(n);
    return new Promise((resolve) => {
      window.uppy.once('complete', (r) => resolve({
        ok: r.successful.map((f) => f.response.body),
        failed: r.failed.map((f) => String(f.error?.message ?? f.error)),
      }));
      window.uppy.addFile({ name: 'uppy-multipart.bin', type: 'application/octet-stream', data: new Blob([data]) });
    });
  }, [size, bytes.toString()]);
  assert.equal(result.failed.length, 0, `failed files (${result.failed.join('; ')})`);
  const key = result.ok[0].key;
  const id = key.split('/')[1];
  const expected = sha256(bytes(size));
  const item = dynamoItem(id);
  assert.equal(item.status, 'verified', 'DynamoDB status');
  assert.equal(item.sha256, expected, 'DynamoDB sha256');
  assert.equal(Number(item.size), size, 'DynamoDB size');
  assert.equal(Number(item.part_count), 3, 'DynamoDB part_count');
  assert.equal(item.key, key, 'DynamoDB key');
  assert.equal(parts.finished.sort().join(), '1,2,3', 'parts PUT by Uppy');
  // The page declares the size (Uppy's `size` metadata): each part URL signed its length.
  assert.equal(item.plan_measured, false, 'sized at creation, not measured at completion');
  assert.equal(parts.lengthSigned, 3, 'part URLs signing Content-Length');
  await page.locator(`[data-upload-id="${id}"][data-state="verified"]`).waitFor();
  await context.close();
});

// Uppy on /uppy.html adding `size` bytes (the xorshift stream of `seed`) as `name`; resolves with
// Uppy's `complete` result. `before(page)` runs after the page opened and before the file is added.
async function uppyUpload(page, name, size, seed) {
  return page.evaluate(async ([n, s, fileName]) => {
    const data = new Uint8Array(n);
    let x = s;
    for (let i = 0; i < n; i += 1) {
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
      data[i] = x & 255;
    }
    return new Promise((resolve) => {
      window.uppy.once('complete', (r) => resolve({
        ok: r.successful.map((f) => f.response.body),
        failed: r.failed.map((f) => String(f.error?.message ?? f.error)),
      }));
      window.uppy.addFile({ name: fileName, type: 'application/octet-stream', data: new Blob([data]) });
    });
  }, [size, seed, name]);
}

function xorshiftBytes(n, seed) {
  const out = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i += 1) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = x & 255;
  }
  return out;
}

// The upload id of each `POST /s3/multipart` the page made.
function watchCreates(page) {
  const ids = [];
  page.on('response', async (r) => {
    if (r.request().method() === 'POST' && new URL(r.url()).pathname === '/s3/multipart' && r.ok()) {
      ids.push((await r.json()).uploadId);
    }
  });
  return ids;
}

test('Uppy + the VerifiedUploads plugin: hashed in a worker, the digest declared before completion, verified', { timeout: TEST_TIMEOUT }, async () => {
  const context = await browser.newContext();
  const page = await openPage(context, '/uppy.html?verified=on');
  const workers = [];
  page.on('worker', (w) => workers.push(w.url()));
  const parts = watchParts(page);
  const created = watchCreates(page);
  const size = 2 * PART + 4242;
  const expected = sha256(xorshiftBytes(size, 12345));
  // Completion held: what the record says before it.
  let before = null;
  const held = await hold(page, (url) => url.pathname.endsWith('/complete'), () => true);
  const done = uppyUpload(page, 'uppy-plugin.bin', size, 12345);
  await until('the completion', async () => {
    if (!created.length || before) return Boolean(before);
    const r = await record(created[0]);
    if (parts.finished.length === 3) before = r;
    return Boolean(before);
  });
  await held.release();
  const result = await done;
  assert.equal(result.failed.length, 0, `failed files (${result.failed.join('; ')})`);
  assert.equal(before.status, 'pending', 'status before completion');
  assert.equal(before.expected_sha256, expected, 'declared digest on the record before completion');
  assert.ok(workers.some((u) => u.includes('/vendor/hash-worker.js')), `hashing worker: ${workers.join(', ')}`);
  const r = await record(created[0]);
  assert.equal(r.status, 'verified', 'status');
  assert.equal(r.sha256, expected, 'recorded digest');
  assert.equal(r.expected_sha256, expected, 'compared with the declared digest');
  assert.equal(parts.lengthSigned, 3, 'part URLs signing Content-Length (the plugin sets `size`)');
  await page.locator(`[data-upload-id="${created[0]}"][data-state="verified"]`).waitFor();
  await context.close();
});

test('Uppy + the VerifiedUploads plugin: a part damaged in flight fails against the declared digest', { timeout: TEST_TIMEOUT }, async () => {
  const context = await browser.newContext();
  const page = await openPage(context, '/uppy.html?verified=on');
  const created = watchCreates(page);
  const size = PART + 70_000;
  const bytes = xorshiftBytes(size, 777);
  // Part 2's PUT leaves the browser with one bit flipped: S3 (without a signed checksum, as
  // @uppy/aws-s3 sends it) takes it; the declared digest catches it.
  let corrupted = 0;
  await page.route((url) => url.searchParams.get('partNumber') === '2', async (route) => {
    if (route.request().method() === 'PUT' && corrupted === 0) {
      corrupted += 1;
      const damaged = Buffer.from(bytes.subarray(PART));
      damaged[1234] ^= 0x01;
      return route.continue({ postData: damaged });
    }
    return route.continue();
  });
  const result = await uppyUpload(page, 'uppy-damaged.bin', size, 777);
  assert.equal(corrupted, 1, 'PUTs damaged');
  assert.equal(result.ok.length, 0, 'Uppy reported no success');
  assert.equal(result.failed.length, 1, 'Uppy failed the file');
  const r = await record(created[0]);
  assert.equal(r.status, 'failed', 'status');
  assert.equal(r.expected_sha256, sha256(bytes), 'declared digest');
  assert.notEqual(r.sha256, r.expected_sha256, 'the damaged object\'s digest differs');
  await context.close();
});

test("stock Uppy's single-request path (GET /s3/params, a form POST) is verified too", { timeout: TEST_TIMEOUT }, async () => {
  const context = await browser.newContext();
  const page = await openPage(context, '/uppy.html');
  const file = makeFile('small.txt', 200_000);
  await page.setInputFiles('#files', file.path);
  await page.locator('#uploads li[data-state="verified"]').waitFor();
  const id = await page.locator('#uploads li').first().getAttribute('data-upload-id');
  const item = dynamoItem(id);
  assert.equal(item.kind, 'post', 'DynamoDB kind');
  assert.equal(item.status, 'verified', 'DynamoDB status');
  assert.equal(item.sha256, file.sha256, 'DynamoDB sha256');
  await context.close();
});

// A server on another origin that records whatever reaches it.
async function trap() {
  const { createServer } = await import('node:http');
  const seen = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.writeHead(500).end();
  });
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  return { origin: `http://127.0.0.1:${server.address().port}`, seen, close: () => server.close() };
}

test("a link naming another API (?api=) gets neither the token nor the file", { timeout: TEST_TIMEOUT }, async () => {
  const evil = await trap();
  const context = await browser.newContext();
  await context.addInitScript(() => {
    globalThis.verifiedUploadsAuthorization = async () => 'Bearer secret-token';
  });
  const page = await openPage(context, `/?api=${encodeURIComponent(`${evil.origin}/`)}`);
  const sent = [];
  page.on('request', (r) => sent.push({ url: r.url(), authorization: r.headers().authorization }));
  const file = makeFile('kept.bin', 100_000);
  await page.setInputFiles('#files', file.path);
  await reach(page, 'verified');
  const apiOrigin = new URL(API).origin;
  assert.equal(evil.seen.length, 0, `requests that reached ${evil.origin}`);
  assert.ok(!sent.some((r) => r.url.startsWith(evil.origin)), 'no request went to the other origin');
  const withToken = sent.filter((r) => r.authorization);
  assert.ok(withToken.length > 0, 'the token went to the API');
  for (const r of withToken) assert.equal(new URL(r.url).origin, apiOrigin, `origin of ${r.url} (with the token)`);
  // Everything else the page sent went to S3's signed URLs.
  for (const r of sent.filter((r) => !r.authorization && new URL(r.url).origin !== apiOrigin)) {
    assert.ok(/X-Amz-Signature=/.test(r.url), `unsigned request elsewhere: ${r.url}`);
  }
  // The page's own origin may be named.
  const own = await openPage(context, `/?api=${encodeURIComponent(apiOrigin)}`);
  const again = makeFile('own.bin', 50_000);
  await own.setInputFiles('#files', again.path);
  await reach(own, 'verified');
  await context.close();
  evil.close();
});

test('the API reference at /docs renders the OpenAPI document with every route', { timeout: TEST_TIMEOUT }, async () => {
  const context = await browser.newContext();
  const page = await openPage(context, '/docs');
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // Redoc (vendored) fetched /openapi.json and rendered its title and operations.
  await page.getByRole('heading', { name: /verified-uploads/ }).first().waitFor();
  const doc = await (await fetch(`${API}/openapi.json`)).json();
  const text = await page.locator('body').innerText();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const op of Object.values(item)) {
      assert.ok(text.includes(op.summary), `${op.operationId} (${path}): not rendered`);
    }
  }
  assert.equal(errors.length, 0, `page errors: ${errors.join('; ')}`);
  await context.close();
});

// Skipped (`# SKIP` in the report) when no strict S3 is configured.
test('against a strict S3, a part corrupted in flight is refused (BadDigest), read again, sent again and verified', {
  timeout: TEST_TIMEOUT,
  skip: STRICT_API ? false : 'STRICT_API_URL is not set (`make test` starts a strict S3 and its API)',
}, async () => {
  const file = makeFile('corrupted.bin', PART + 70_000);
  const bytes = readFileSync(file.path);
  const context = await browser.newContext();
  const page = await openPage(context, '/', STRICT_API);
  let signs = 0;
  page.on('request', (r) => {
    if (r.method() === 'POST' && r.url().endsWith('/parts') && r.postDataJSON()?.part_numbers?.includes(2)) signs += 1;
  });
  // S3's answers to the PUTs of part 2, in order.
  const answers = [];
  page.on('response', (r) => {
    const url = new URL(r.url());
    if (r.request().method() === 'PUT' && url.searchParams.get('partNumber') === '2') {
      answers.push(r.text().then((text) => ({ status: r.status(), text, origin: url.origin })));
    }
  });
  // The first PUT of part 2 leaves the browser with one bit flipped, its signed headers intact.
  let corrupted = 0;
  await page.route((url) => url.searchParams.get('partNumber') === '2', async (route) => {
    if (route.request().method() === 'PUT' && corrupted === 0) {
      corrupted += 1;
      const damaged = Buffer.from(bytes.subarray(PART));
      damaged[1234] ^= 0x01;
      return route.continue({ postData: damaged });
    }
    return route.continue();
  });
  await page.setInputFiles('#files', file.path);
  await reach(page, 'verified');
  const seen = await Promise.all(answers);
  assert.equal(corrupted, 1, 'PUTs corrupted');
  assert.equal(seen.map((a) => a.status).join(), '400,200', 'S3 answers to part 2');
  assert.ok(/<Code>BadDigest<\/Code>/.test(seen[0].text), `S3 refused the damaged part with BadDigest: ${seen[0].text}`);
  assert.equal(seen[0].origin, new URL(process.env.STRICT_S3_ENDPOINT ?? STRICT_API).origin, 'the part went to the strict S3');
  assert.equal(signs, 2, 'signing calls for part 2');
  const r = await record(await row(page).getAttribute('data-upload-id'), STRICT_API);
  assert.equal(r.status, 'verified', 'status');
  assert.equal(r.sha256, file.sha256, 'recorded digest');
  assert.equal(r.part_count, 2, 'part count');
  await context.close();
});

test('against a strict S3, a part URL that expired mid-upload (403, "Request has expired") is signed again and the part re-sent', {
  timeout: 3 * TIMEOUT,
  skip: STRICT_API ? false : 'STRICT_API_URL is not set (`make test` starts a strict S3 and its API)',
}, async () => {
  // The strict API signs URLs for 60 s (scripts/browser.sh): part 2's first PUT is held past that.
  const file = makeFile('expired.bin', PART + 50_000);
  const context = await browser.newContext();
  const page = await openPage(context, '/', STRICT_API);
  let signs = 0;
  page.on('request', (r) => {
    if (r.method() === 'POST' && r.url().endsWith('/parts') && r.postDataJSON()?.part_numbers?.includes(2)) signs += 1;
  });
  const answers = [];
  page.on('response', (r) => {
    if (r.request().method() === 'PUT' && new URL(r.url()).searchParams.get('partNumber') === '2') {
      answers.push(r.text().then((text) => ({ status: r.status(), text })));
    }
  });
  let delayed = 0;
  await page.route((url) => url.searchParams.get('partNumber') === '2', async (route) => {
    if (route.request().method() === 'PUT' && delayed === 0) {
      delayed += 1;
      await new Promise((r) => setTimeout(r, 62_000));
    }
    return route.continue();
  });
  await page.setInputFiles('#files', file.path);
  await row(page).and(page.locator('[data-state="verified"]')).waitFor({ timeout: 2 * TIMEOUT });
  const seen = await Promise.all(answers);
  assert.equal(seen.map((a) => a.status).join(), '403,200', 'S3 answers to part 2');
  assert.ok(/<Code>AccessDenied<\/Code>/.test(seen[0].text) && /expired/i.test(seen[0].text), `S3's expiry answer: ${seen[0].text}`);
  assert.equal(signs, 2, 'signing calls for part 2');
  const r = await record(await row(page).getAttribute('data-upload-id'), STRICT_API);
  assert.equal(r.status, 'verified', 'status');
  assert.equal(r.sha256, file.sha256, 'recorded digest');
  await context.close();
});
