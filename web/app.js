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

const fingerprint = (f) => `${STORE}${f.name}:${f.size}:${f.lastModified}`;

class Upload {
  constructor(file, expected) {
    this.file = file;
    this.expected = expected || null;
    this.key = fingerprint(file);
    this.el = document.querySelector('#row').content.firstElementChild.cloneNode(true);
    this.el.querySelector('.name').textContent = file.name;
    this.el.querySelector('.size').textContent = formatBytes(file.size);
    this.bar = this.el.querySelector('progress');
    this.bar.setAttribute('aria-label', `Upload progress of ${file.name}`);
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
    this.el.querySelector('.stats').textContent =
      `${formatBytes(sent)} of ${formatBytes(size)} · ${pct.toFixed(0)}% · ` +
      `${formatBytes(speed)}/s · ${formatSeconds(left)} left`;
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
      part_checksums: true,
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

  // Reads the file once, in order: each part feeds the whole-file SHA-256 and gets its own
  // SHA-256 (which S3 checks on arrival); parts S3 already holds are skipped.
  async sendParts(record, done, signal) {
    const hasher = await hashwasm.createSHA256();
    hasher.init();
    const { part_size: partSize, part_count: count } = record;
    const running = new Set();
    this.state('uploading', done.size ? `Resuming: ${done.size} of ${count} parts already in S3` : 'Uploading…');
    for (let n = 1; n <= count; n += 1) {
      const start = (n - 1) * partSize;
      const blob = this.file.slice(start, Math.min(start + partSize, this.file.size));
      const buf = await blob.arrayBuffer();
      if (signal.aborted) return;
      hasher.update(new Uint8Array(buf));
      const checksum = toBase64(await crypto.subtle.digest('SHA-256', buf));
      const held = done.get(n);
      if (held) {
        // S3 lists each part's checksum (some emulators do not: then the size must do).
        if (held.size !== blob.size || (held.checksum_sha256 && held.checksum_sha256 !== checksum)) {
          throw new Error(`part ${n} in S3 is not this file's; choose the file you started with, or cancel`);
        }
        this.doneBytes += blob.size;
        this.resumedBytes += blob.size;
        this.progress();
        continue;
      }
      while (running.size >= IN_FLIGHT) await Promise.race(running);
      const task = this.sendPart(n, blob, checksum, signal);
      running.add(task);
      task.then(() => running.delete(task), () => {});
    }
    await Promise.all(running);
    const digest = hasher.digest('hex');
    this.el.querySelector('.digest').textContent = `SHA-256 computed here: ${digest}`;
    this.state('completing', 'Verifying…');
    await this.complete(this.expected ? null : digest, signal);
  }

  async sendPart(n, blob, checksum, signal) {
    let lastError = null;
    let payload = blob;
    for (let attempt = 0; attempt < ATTEMPTS; attempt += 1) {
      if (attempt) await sleep(Math.min(500 * 2 ** attempt, 8000), signal);
      // Signed per attempt: an expired URL (403) gets a fresh one.
      const { body } = await api('POST', `/uploads/${this.id}/parts`, {
        part_numbers: [n],
        sha256: { [n]: checksum },
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
        lastError = new Error(`S3 answered ${res.status} for part ${n}`);
      } catch (e) {
        this.loaded.delete(n);
        if (signal.aborted || e.fatal) throw e;
        lastError = e;
      }
    }
    throw lastError;
  }

  async complete(sha256, signal) {
    let record;
    try {
      const res = await api('POST', `/uploads/${this.id}/complete`, sha256 ? { sha256 } : {}, signal);
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
    this.bar.value = 100;
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
  if (!globalThis.crypto?.subtle || !globalThis.hashwasm) {
    const why = globalThis.crypto?.subtle
      ? 'vendor/sha256.umd.min.js is missing (run `make setup`)'
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
