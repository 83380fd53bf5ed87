// The upload page: files go to S3 through the API's pre-signed part URLs; the API then proves
// what landed. No framework: one class per file, the DOM from a <template>.

const params = new URLSearchParams(location.search);
// The API this page was deployed with (`<meta name="api-base">`; empty: the page's own origin).
// `?api=` may choose only that API's origin or the page's own: a link must never make the page
// send the user's token, or their files, anywhere else.
const CONFIGURED = (document.querySelector('meta[name="api-base"]')?.content ?? '').replace(/\/+$/, '');
function chooseApi(requested) {
  if (requested == null) return CONFIGURED;
  const allowed = new Set([location.origin, new URL(CONFIGURED || '/', location.href).origin]);
  let url;
  try { url = new URL(requested, location.href); } catch { url = null; }
  if (!url || !allowed.has(url.origin)) {
    console.warn(`ignoring ?api=${requested}: only ${[...allowed].join(' or ')} may be used`);
    return CONFIGURED;
  }
  return url.href.replace(/\/+$/, '');
}
const API = chooseApi(params.get('api'));
const IN_FLIGHT = 4; // parts uploading at once per file
const ATTEMPTS = 5; // per part, with a fresh signature each time
const STORE = 'verified-uploads:'; // localStorage prefix: a file's session, for resuming
// Send each part's SHA-256 chaining value at `complete` (`part_states`), so the service verifies
// in parallel segments. On unless `<meta name="part-states" content="off">` or `?part_states=off`
// (for an API from before it took the field: that one refuses unknown fields).
// For the benchmark only (browser/bench.mjs): `?hashing=off` sends the parts unhashed (no part
// checksums, no declared digest), to measure what hashing costs the upload.
const HASHING = params.get('hashing') !== 'off';
const PART_STATES = ![document.querySelector('meta[name="part-states"]')?.content, params.get('part_states')]
  .includes('off');

// The whole-file SHA-256 state after the last part S3 holds, per file (the same key as the
// session in localStorage), and each part's checksum and chaining value up to it: IndexedDB,
// since the states are bytes and the parts many.
const hashStore = (() => {
  let db = null;
  const open = () => db ?? (db = new Promise((resolve, reject) => {
    const req = indexedDB.open('verified-uploads', 1);
    req.onupgradeneeded = () => {
      req.result.createObjectStore('states');
      req.result.createObjectStore('parts');
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  }));
  const run = async (mode, f) => {
    const tx = (await open()).transaction(['states', 'parts'], mode);
    const out = f(tx.objectStore('states'), tx.objectStore('parts'));
    await new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
    return out.result;
  };
  const partKey = (key, n) => [key, n];
  return {
    load: (key) => run('readonly', (states) => states.get(key)),
    parts: (key, k) => run('readonly', (_, parts) =>
      parts.getAll(IDBKeyRange.bound(partKey(key, 1), partKey(key, Math.max(k, 1))), k)),
    save: (key, saved, entries) => run('readwrite', (states, parts) => {
      for (const { n, checksum, chain } of entries) parts.put({ checksum, chain }, partKey(key, n));
      return states.put(saved, key);
    }),
    forget: (key) => run('readwrite', (states, parts) => {
      parts.delete(IDBKeyRange.bound(partKey(key, 0), partKey(key, Infinity)));
      return states.delete(key);
    }),
  };
})();

class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem ?? {};
  }
}

// Behind the JWT authorizer, the embedding app defines
// `window.verifiedUploadsAuthorization = async () => 'Bearer <token>'`.
async function api(method, path, body, signal) {
  const headers = body ? { 'content-type': 'application/json' } : {};
  const authorization = await globalThis.verifiedUploadsAuthorization?.();
  if (authorization) headers.authorization = authorization;
  const res = await fetch(API + path, {
    method,
    headers,
    body: body ? JSON.stringify(body) : undefined,
    signal,
  });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON: keep the status */ }
  if (!res.ok) throw new ApiError(res.status, json);
  return { status: res.status, body: json };
}

const sleep = (ms, signal) => new Promise((resolve, reject) => {
  const t = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(t); reject(signal.reason); }, { once: true });
});

const toBase64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)));

function formatBytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function formatSeconds(s) {
  if (!Number.isFinite(s)) return '…';
  if (s < 60) return `${Math.ceil(s)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.ceil(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

// PUT with progress: fetch() cannot report upload progress, XMLHttpRequest can.
function put(url, headers, body, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url);
    for (const [k, v] of Object.entries(headers)) {
      // The browser sets Content-Length itself, to exactly the signed value.
      if (k.toLowerCase() !== 'content-length') xhr.setRequestHeader(k, v);
    }
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => resolve({ status: xhr.status, text: xhr.responseText });
    xhr.onerror = () => reject(new Error('network error'));
    const abort = () => { xhr.abort(); reject(signal.reason); };
    if (signal.aborted) return abort();
    signal.addEventListener('abort', abort, { once: true });
    xhr.send(body);
  });
}

// `?hashing=off` (benchmark): what the worker posts, without reading a byte.
function unhashed() {
  const fake = { onmessage: null, onerror: null, terminate() { fake.stopped = true; } };
  let credit = 0;
  let job = null;
  let n = 0;
  const pump = () => {
    while (job && !fake.stopped && n < job.count && n + 1 <= credit) {
      n += 1;
      const size = Math.max(0, Math.min(job.partSize, job.file.size - (n - 1) * job.partSize));
      fake.onmessage?.({ data: { type: 'part', n, size, checksum: null, state: null, chain: null, read: 0 } });
    }
    if (job && n === job.count && !fake.stopped) {
      job = null;
      fake.onmessage?.({ data: { type: 'done', digest: null, read: 0 } });
    }
  };
  fake.postMessage = (m) => {
    if (m.type === 'credit') credit = Math.max(credit, m.upto);
    if (m.type === 'start') { job = m; n = m.from; }
    queueMicrotask(pump);
  };
  return fake;
}

const fingerprint = (f) => `${STORE}${f.name}:${f.size}:${f.lastModified}`;

class Upload {
  constructor(file, expected) {
    this.file = file;
    this.expected = expected || null;
    this.key = fingerprint(file);
    this.el = document.querySelector('#row').content.firstElementChild.cloneNode(true);
    this.el.querySelector('.name').textContent = file.name;
    this.el.querySelector('.size').textContent = formatBytes(file.size);
    this.bar = this.el.querySelector('progress.sent');
    this.bar.setAttribute('aria-label', `Upload progress of ${file.name}`);
    this.hashBar = this.el.querySelector('progress.hashed');
    this.hashBar.setAttribute('aria-label', `Hashing progress of ${file.name}`);
    this.el.querySelector('.pause').addEventListener('click', () => this.pause());
    this.el.querySelector('.resume').addEventListener('click', () => this.run());
    this.el.querySelector('.cancel').addEventListener('click', () => this.cancel());
    for (const b of this.el.querySelectorAll('button')) {
      b.setAttribute('aria-label', `${b.textContent} ${file.name}`);
    }
    document.querySelector('#uploads').prepend(this.el);
    document.querySelector('#empty').hidden = true;
  }

  state(name, message) {
    this.el.dataset.state = name;
    this.el.querySelector('.status').textContent = message;
    const active = ['preparing', 'uploading'].includes(name);
    this.el.querySelector('.pause').hidden = !active;
    this.el.querySelector('.resume').hidden = !['paused', 'error'].includes(name);
    this.el.querySelector('.cancel').hidden = ['verified', 'failed', 'cancelled', 'refused'].includes(name);
  }

  progress() {
    let inFlight = 0;
    for (const n of this.loaded.values()) inFlight += n;
    const sent = this.doneBytes + inFlight;
    const size = this.file.size;
    const pct = size ? (100 * sent) / size : 100;
    this.bar.value = pct;
    const elapsed = (performance.now() - this.started) / 1000;
    const speed = (sent - this.resumedBytes) / Math.max(elapsed, 0.001);
    const left = speed > 0 ? (size - sent) / speed : Infinity;
    const hashed = Math.min(this.hashedBytes ?? 0, size);
    this.hashBar.value = size ? (100 * hashed) / size : 100;
    this.el.querySelector('.stats').textContent =
      `hashed ${formatBytes(hashed)} · sent ${formatBytes(sent)} of ${formatBytes(size)} · ` +
      `${pct.toFixed(0)}% · ${formatBytes(speed)}/s · ${formatSeconds(left)} left`;
  }

  // The session to upload into: the one this file started (resume) or a new one.
  async session(signal) {
    const saved = JSON.parse(localStorage.getItem(this.key) || 'null');
    if (saved) {
      try {
        const { body: r } = await api('GET', `/uploads/${saved.id}`, null, signal);
        if (r.status === 'pending') {
          const { body } = await api('GET', `/uploads/${saved.id}/parts`, null, signal);
          const done = new Map(body.parts.map((p) => [p.part_number, p]));
          this.expected = r.expected_sha256 ?? this.expected;
          return { record: r, done };
        }
        if (r.status === 'verified' || r.status === 'failed') return { record: r, done: null };
      } catch (e) {
        if (e.name === 'AbortError') throw e;
        // Expired, aborted or unknown: start over.
      }
      localStorage.removeItem(this.key);
    }
    const { body: r } = await api('POST', '/uploads', {
      filename: this.file.name,
      size: this.file.size,
      content_type: this.file.type || undefined,
      sha256: this.expected || undefined,
      part_checksums: HASHING,
    }, signal);
    localStorage.setItem(this.key, JSON.stringify({ id: r.upload_id }));
    return { record: r, done: new Map() };
  }

  async run() {
    this.controller = new AbortController();
    const { signal } = this.controller;
    this.loaded = new Map();
    this.doneBytes = 0;
    this.resumedBytes = 0;
    this.started = performance.now();
    try {
      this.state('preparing', 'Starting…');
      const { record, done } = await this.session(signal);
      this.id = record.upload_id;
      this.el.dataset.uploadId = this.id;
      if (!done) return this.finished(record, null);
      await this.sendParts(record, done, signal);
    } catch (e) {
      if (signal.aborted) return;
      // A 4xx will answer the same again (too large, bad name…): say so, offer no retry.
      if (e instanceof ApiError && e.status < 500 && e.status !== 429) {
        localStorage.removeItem(this.key);
        this.state('refused', `Refused: ${e.message}`);
      } else {
        this.state('error', `Stopped: ${e.message}. Resume to continue from the parts already uploaded.`);
      }
    }
  }

  // The hashing runs in a Web Worker (vendor/hash-worker.js, from clients/uppy/), reading the
  // file once, in order, a few parts ahead of the uploads: each part's SHA-256 (which S3 checks
  // on arrival), the whole file's SHA-256, and its state after each part. That state is persisted (IndexedDB) once every part
  // up to it is in S3, so a reload resumes hashing there instead of at byte 0. Parts S3 already
  // holds are skipped (and checked against this file's digests).
  async sendParts(record, done, signal) {
    const { part_size: partSize, part_count: count } = record;
    const file = this.file;
    const sizeOf = (n) => Math.max(0, Math.min(partSize, file.size - (n - 1) * partSize));
    const parts = new Map(); // n → {checksum, chain, state}: what the worker gave
    // Resume: the saved state after part k, if S3 holds parts 1..k as they were hashed.
    let from = 0;
    let state = null;
    const saved = await hashStore.load(this.key).catch(() => null);
    if (saved && saved.id === this.id && saved.k <= count) {
      const prefix = await hashStore.parts(this.key, saved.k).catch(() => []);
      const ok = prefix.length === saved.k && prefix.every((p, i) => {
        const held = done.get(i + 1);
        return held && held.size === sizeOf(i + 1)
          && (!held.checksum_sha256 || held.checksum_sha256 === p.checksum);
      });
      if (ok) {
        from = saved.k;
        state = saved.state;
        prefix.forEach((p, i) => parts.set(i + 1, p));
      }
    }
    this.state('uploading', done.size ? `Resuming: ${done.size} of ${count} parts already in S3` : 'Uploading…');
    this.hashedBytes = from ? Math.min(file.size, from * partSize) : 0;
    this.el.dataset.hashedFrom = String(from);
    this.el.dataset.hashRead = '0';
    for (let n = 1; n <= from; n += 1) this.doneBytes += sizeOf(n);
    this.resumedBytes = this.doneBytes;
    this.progress();

    // The parts finished (held or sent), and the longest prefix of them: its state is persisted.
    const finished = new Set();
    for (let n = 1; n <= from; n += 1) finished.add(n);
    let prefix = from;
    let persisting = Promise.resolve();
    const worker = HASHING ? new Worker(new URL('vendor/hash-worker.js', import.meta.url)) : unhashed();
    const grant = () => worker.postMessage({ type: 'credit', upto: finished.size + IN_FLIGHT + 1 });
    const advance = () => {
      if (!HASHING) return;
      const before = prefix;
      while (finished.has(prefix + 1)) prefix += 1;
      if (prefix === before) return;
      const k = prefix;
      const entries = [];
      for (let n = before + 1; n <= k; n += 1) {
        const { checksum, chain } = parts.get(n);
        entries.push({ n, checksum, chain });
      }
      const { state: kState } = parts.get(k);
      for (let n = before + 1; n < k; n += 1) delete parts.get(n).state;
      persisting = persisting
        .then(() => hashStore.save(this.key, { id: this.id, k, state: kState }, entries))
        .then(() => { this.el.dataset.hashSaved = String(k); })
        .catch(() => { /* no IndexedDB (private mode…): resuming re-hashes from the start */ });
    };
    const finish = (n) => { finished.add(n); advance(); grant(); };

    // The worker's messages, as an async sequence.
    const inbox = [];
    let notify = null;
    worker.onmessage = ({ data }) => { inbox.push(data); notify?.(); };
    worker.onerror = (e) => { inbox.push({ type: 'error', message: e.message || 'the hashing worker failed' }); notify?.(); };
    const next = async () => {
      while (!inbox.length) {
        await new Promise((resolve) => { notify = resolve; });
        notify = null;
      }
      return inbox.shift();
    };
    const stop = () => {
      worker.terminate();
      inbox.push({ type: 'wake' }); // a paused or cancelled upload's loop returns
      notify?.();
    };
    signal.addEventListener('abort', stop, { once: true });

    const running = new Set();
    let failure = null;
    let digest;
    try {
      worker.postMessage({ type: 'start', file, partSize, count, from, state });
      grant();
      for (;;) {
        const msg = await next();
        if (signal.aborted) return;
        if (failure) throw failure;
        if (msg.type === 'error') throw new Error(`hashing failed: ${msg.message}`);
        if (msg.type === 'wake') continue;
        this.el.dataset.hashRead = String(msg.read);
        if (msg.type === 'done') { digest = msg.digest; break; }
        const { n, size, checksum } = msg;
        parts.set(n, { checksum, chain: msg.chain, state: msg.state });
        this.hashedBytes += size;
        const held = done.get(n);
        if (held) {
          // S3 lists each part's checksum (some emulators do not: then the size must do).
          if (held.size !== size || (held.checksum_sha256 && held.checksum_sha256 !== checksum)) {
            throw new Error(`part ${n} in S3 is not this file's; choose the file you started with, or cancel`);
          }
          this.doneBytes += size;
          this.resumedBytes += size;
          this.progress();
          finish(n);
          continue;
        }
        this.progress();
        while (running.size >= IN_FLIGHT) await Promise.race(running);
        if (failure) throw failure;
        const start = (n - 1) * partSize;
        const task = this.sendPart(n, file.slice(start, start + size), checksum, signal)
          .then(() => finish(n), (e) => {
            failure = failure || e;
            inbox.push({ type: 'wake' }); // the loop may be waiting for a part the worker holds back
            notify?.();
          });
        running.add(task);
        task.then(() => running.delete(task));
      }
      await Promise.all(running);
      if (failure) throw failure;
    } finally {
      signal.removeEventListener('abort', stop);
      stop();
    }
    if (signal.aborted) return;
    await persisting;
    if (digest) this.el.querySelector('.digest').textContent = `SHA-256 computed here: ${digest}`;
    this.state('completing', 'Verifying…');
    // part n → the SHA-256 chaining value after parts 1..n (issue 24's `part_states`), for
    // every part but the last (whose state is the digest's), sent only where the API takes them
    // (see PART_STATES), and only when they were computed: with `?hashing=off` there are none
    // (the API refuses a state that is not 64 hex).
    const partStates = PART_STATES && HASHING
      ? Object.fromEntries([...parts].filter(([n]) => n < count).map(([n, p]) => [String(n), p.chain]))
      : null;
    await this.complete(this.expected ? null : digest, signal, partStates);
  }

  async sendPart(n, blob, checksum, signal) {
    let lastError = null;
    let payload = blob;
    let expired = false;
    for (let attempt = 0; attempt < ATTEMPTS; attempt += 1) {
      // An expired URL is signed again at once; anything else waits a little longer each time.
      if (attempt && !expired) await sleep(Math.min(500 * 2 ** attempt, 8000), signal);
      expired = false;
      // Signed per attempt: an expired URL (403) gets a fresh one.
      const { body } = await api('POST', `/uploads/${this.id}/parts`, {
        part_numbers: [n],
        ...(checksum ? { sha256: { [n]: checksum } } : {}),
      }, signal);
      const part = body.parts[0];
      try {
        const res = await put(part.url, part.headers, payload, (bytes) => {
          this.loaded.set(n, bytes);
          this.progress();
        }, signal);
        this.loaded.delete(n);
        if (res.status >= 200 && res.status < 300) {
          this.doneBytes += blob.size;
          this.progress();
          return;
        }
        if (res.status === 400 && /BadDigest|checksum/i.test(res.text)) {
          // S3 got other bytes than the SHA-256 it signed: read the part again. If the file
          // still gives that digest, the bytes were damaged on the way: send the re-read ones.
          const again = await blob.arrayBuffer();
          if (toBase64(await crypto.subtle.digest('SHA-256', again)) !== checksum) {
            throw Object.assign(new Error(`S3 refused part ${n}: the file changed while uploading`), { fatal: true });
          }
          payload = again;
          lastError = new Error(`S3 kept refusing part ${n}: its bytes were damaged on the way`);
          continue;
        }
        // S3's answer to an expired URL: 403 AccessDenied, "Request has expired".
        expired = res.status === 403 && /<Code>AccessDenied<\/Code>/.test(res.text) && /expired/i.test(res.text);
        lastError = new Error(`S3 answered ${res.status} for part ${n}${expired ? ' (the URL expired)' : ''}`);
      } catch (e) {
        this.loaded.delete(n);
        if (signal.aborted || e.fatal) throw e;
        lastError = e;
      }
    }
    throw lastError;
  }

  async complete(sha256, signal, partStates = null) {
    let record;
    try {
      const body = {};
      if (sha256) body.sha256 = sha256;
      if (partStates) body.part_states = partStates;
      const res = await api('POST', `/uploads/${this.id}/complete`, body, signal);
      record = res.body;
      while (record.status === 'verifying' || record.status === 'completing') {
        this.state('completing', `Verifying… ${formatBytes(record.verified_bytes || 0)} checked`);
        await sleep(2000, signal);
        record = (await api('GET', `/uploads/${this.id}`, null, signal)).body;
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 422 && e.problem.upload) {
        record = e.problem.upload;
      } else {
        throw e;
      }
    }
    this.finished(record);
  }

  finished(record) {
    localStorage.removeItem(this.key);
    hashStore.forget(this.key).catch(() => {});
    this.bar.value = 100;
    this.hashBar.value = 100;
    if (record.status === 'verified') {
      this.el.querySelector('.stats').textContent = `${formatBytes(record.size)} in S3 at ${record.key}`;
      this.el.querySelector('.digest').textContent = `SHA-256 ${record.sha256}`;
      this.state('verified', 'Verified: the object in S3 has exactly this SHA-256.');
      this.offerDownload(record.upload_id);
    } else {
      this.state('failed', `Verification failed: ${record.error || record.status}. The object was deleted.`);
    }
  }

  // A link to exactly the verified version (the signed URL names it), never a later write.
  async offerDownload(id) {
    try {
      const { body } = await api('GET', `/uploads/${encodeURIComponent(id)}/object`);
      const link = this.el.querySelector('.download');
      link.href = body.url;
      link.setAttribute('download', body.filename);
      link.setAttribute('aria-label', `Download ${body.filename} (the verified version)`);
      link.hidden = false;
      this.offerReceipt(id, body.filename);
    } catch {
      // The upload stays verified; only the shortcut is missing.
    }
  }

  // The upload's signed receipt, saved beside the file (`verified-uploads check` or any JOSE
  // library checks it offline against /.well-known/jwks.json). None when the service issues none.
  async offerReceipt(id, filename) {
    try {
      const { body } = await api('GET', `/uploads/${encodeURIComponent(id)}/receipt`);
      const link = this.el.querySelector('.receipt');
      link.href = URL.createObjectURL(new Blob([`${body.receipt}\n`], { type: 'application/jwt' }));
      link.setAttribute('download', `${filename}.receipt.jwt`);
      link.setAttribute('aria-label', `Download the receipt of ${filename}`);
      link.hidden = false;
    } catch {
      // Receipts are off (404) or KMS failed: the download stays offered without one.
    }
  }

  pause() {
    this.controller?.abort(new DOMException('paused', 'AbortError'));
    this.loaded = new Map();
    this.state('paused', 'Paused. Resume continues from the parts already uploaded.');
  }

  async cancel() {
    this.controller?.abort(new DOMException('cancelled', 'AbortError'));
    localStorage.removeItem(this.key);
    hashStore.forget(this.key).catch(() => {});
    this.state('cancelled', 'Cancelling…');
    try {
      if (this.id) await api('DELETE', `/uploads/${this.id}`);
      this.state('cancelled', 'Cancelled: the multipart upload was aborted.');
    } catch (e) {
      this.state('cancelled', `Cancelled here, but the service said: ${e.message}`);
    }
  }
}

function addFiles(files) {
  if (!globalThis.crypto?.subtle || !globalThis.Worker || !globalThis.indexedDB) {
    const why = globalThis.crypto?.subtle
      ? 'this browser has no Web Workers or IndexedDB'
      : 'the page must be served over HTTPS (or from localhost) for WebCrypto';
    document.querySelector('#empty').textContent = `Cannot upload: ${why}.`;
    return;
  }
  const input = document.querySelector('#expected');
  const expected = input.value.trim().toLowerCase();
  if (expected && !/^[0-9a-f]{64}$/.test(expected)) {
    input.setCustomValidity('64 hexadecimal digits');
    input.reportValidity();
    return;
  }
  input.setCustomValidity('');
  input.value = '';
  for (const [i, f] of [...files].entries()) {
    new Upload(f, i === 0 ? expected : null).run();
  }
}

const picker = document.querySelector('#files');
picker.addEventListener('change', () => { addFiles(picker.files); picker.value = ''; });
const drop = document.querySelector('#drop');
for (const type of ['dragenter', 'dragover']) {
  document.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add('over'); });
}
document.addEventListener('dragleave', (e) => { if (!e.relatedTarget) drop.classList.remove('over'); });
document.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  if (e.dataTransfer?.files.length) addFiles(e.dataTransfer.files);
});
