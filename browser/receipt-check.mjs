// Runs the JavaScript snippet(s) of docs/receipts.md ("Verify it yourself") on a receipt, exactly
// as the docs show them: each ```js block is read from the markdown and run as an ES module (its
// `import ... from "jose"` resolved from this folder's node_modules) with `receipt` a global
// holding the receipt's text; one line is added after it, `export { claims };`, to read what it
// verified. `https://API`, the docs' placeholder, becomes a loopback server answering the given
// key set at /.well-known/jwks.json. (The Python snippets: scripts/check_receipt_doc.py. Both run in
// tests/it/receipts.rs.)
//
// usage: node browser/receipt-check.mjs JWKS-FILE RECEIPT-FILE
// exit 0 and the claims on stdout: every block accepted it, with the same claims; exit 1: every
// block refused it (the reasons on stderr); exit 2: the blocks disagree, or none was found.

import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const DOC = join(here, '..', 'docs', 'receipts.md');
const SECTION = '## Verify it yourself';
const PLACEHOLDER = 'https://API';

// [line number, code] of each fenced block in `language` under SECTION, in order.
function blocks(path, language) {
  const found = [];
  let inside = false;
  let block = null;
  let start = 0;
  readFileSync(path, 'utf8').split('\n').forEach((line, i) => {
    if (line.startsWith('## ')) { inside = line.trim() === SECTION; return; }
    if (!inside) return;
    if (block === null && new RegExp(`^\`\`\`${language}\\s*$`).test(line)) { block = []; start = i + 2; }
    else if (block !== null && line.trim() === '```') { found.push([start, `${block.join('\n')}\n`]); block = null; }
    else if (block !== null) block.push(line);
  });
  return found;
}

const fail = (code, message) => { console.error(message); process.exit(code); };

const [jwksPath, receiptPath] = process.argv.slice(2);
if (!jwksPath || !receiptPath || process.argv.length !== 4) {
  fail(2, 'usage: node browser/receipt-check.mjs JWKS-FILE RECEIPT-FILE');
}
const jwks = readFileSync(jwksPath);
const receipt = readFileSync(receiptPath, 'utf8').trim();
const found = blocks(DOC, 'js');
if (!found.length) fail(2, `no \`\`\`js block under '${SECTION}' in ${DOC}`);

const server = createServer((req, res) => {
  if (req.url !== '/.well-known/jwks.json') { res.writeHead(404).end(); return; }
  res.writeHead(200, { 'content-type': 'application/json' }).end(jwks);
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

// The blocks run from a folder of their own whose node_modules is this one's (where `jose` is).
const folder = mkdtempSync(join(tmpdir(), 'vu-receipt-doc-'));
symlinkSync(join(here, 'node_modules'), join(folder, 'node_modules'), 'dir');
globalThis.receipt = receipt;
const accepted = [];
const refused = [];
let problem = null; // [exit status, message]: stops the run
try {
  for (const [line, code] of found) {
    const where = `docs/receipts.md:${line}`;
    const file = join(folder, `block-${line}.mjs`);
    writeFileSync(file, `${code.replaceAll(PLACEHOLDER, origin)}export { claims };\n`);
    let claims;
    try {
      ({ claims } = await import(pathToFileURL(file).href));
    } catch (e) {
      if (e?.code === 'ERR_MODULE_NOT_FOUND') { problem = [2, `${where}: ${e.message} (scripts/browser.sh deps installs it)`]; break; }
      refused.push(where);
      console.error(`${where}: refused: ${e?.code ?? e?.name}: ${e?.message}`);
      continue;
    }
    if (!claims || typeof claims !== 'object') { problem = [2, `${where}: ran, but left no \`claims\` object`]; break; }
    accepted.push([where, claims]);
    console.error(`${where}: valid`);
  }
} finally {
  server.closeAllConnections();
  server.close();
  rmSync(folder, { recursive: true, force: true });
}
if (problem) fail(...problem);
if (refused.length && accepted.length) {
  fail(2, `the blocks disagree: ${accepted.map(([w]) => w).join(', ')} accepted, ${refused.join(', ')} refused`);
}
if (refused.length) process.exit(1);
const text = (c) => JSON.stringify(Object.fromEntries(Object.entries(c).sort(([a], [b]) => (a < b ? -1 : 1))));
if (accepted.some(([, c]) => text(c) !== text(accepted[0][1]))) fail(2, 'the blocks read different claims');
console.log(text(accepted[0][1]));
process.exit(0);
