"""Runs the Python snippets of docs/receipts.md ("Verify it yourself") on a receipt, exactly as the
docs show them: each ```python block is read from the markdown and executed with `receipt` bound
to the receipt's text. Where a block fetches the keys from `https://API/.well-known/jwks.json`,
that placeholder becomes a loopback server answering the given key set; where it opens
`keys.json`, it runs in a folder holding that key set under that name. (The JavaScript snippet:
browser/receipt-check.mjs. Both run in tests/it/receipts.rs.)

usage: check_receipt_doc.py JWKS-FILE RECEIPT-FILE
exit 0 and the claims on stdout: every block accepted it, with the same claims; exit 1: every
block refused it (the reasons on stderr); exit 2: the blocks disagree, or none was found.
"""
import http.server
import json
import os
import re
import sys
import tempfile
import threading

DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "receipts.md")
SECTION = "## Verify it yourself"
PLACEHOLDER = "https://API"


def blocks(path, language):
    """(line number, code) of each fenced block in `language` under SECTION, in order."""
    with open(path) as f:
        lines = f.read().splitlines()
    found, inside, block, start = [], False, None, 0
    for number, line in enumerate(lines, 1):
        if line.startswith("## "):
            inside = line.strip() == SECTION
            continue
        if not inside:
            continue
        if block is None and re.fullmatch(rf"```{language}\s*", line):
            block, start = [], number + 1
        elif block is not None and line.strip() == "```":
            found.append((start, "\n".join(block) + "\n"))
            block = None
        elif block is not None:
            block.append(line)
    return found


def serve(jwks):
    """A loopback server answering `jwks` at /.well-known/jwks.json; its origin."""

    class Keys(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/.well-known/jwks.json":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(jwks)))
            self.end_headers()
            self.wfile.write(jwks)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip())
    with open(sys.argv[1], "rb") as f:
        jwks = f.read()
    with open(sys.argv[2]) as f:
        receipt = f.read().strip()
    found = blocks(DOC, "python")
    if not found:
        print(f"no ```python block under {SECTION!r} in {DOC}", file=sys.stderr)
        sys.exit(2)
    server, origin = serve(jwks)
    accepted, refused = [], []
    home = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "keys.json"), "wb") as f:
            f.write(jwks)
        os.chdir(folder)
        try:
            for line, code in found:
                where = f"docs/receipts.md:{line}"
                scope = {"receipt": receipt, "__name__": "__doc_snippet__"}
                try:
                    exec(compile(code.replace(PLACEHOLDER, origin), where, "exec"), scope)
                except Exception as e:  # each library raises its own kinds: any is a refusal
                    refused.append(where)
                    print(f"{where}: refused: {type(e).__name__}: {e}", file=sys.stderr)
                    continue
                claims = scope.get("claims")
                if not isinstance(claims, dict):
                    print(f"{where}: ran, but left no `claims` object", file=sys.stderr)
                    sys.exit(2)
                accepted.append((where, claims))
                print(f"{where}: valid", file=sys.stderr)
        finally:
            os.chdir(home)
            server.shutdown()
    if refused and accepted:
        print(f"the blocks disagree: {[w for w, _ in accepted]} accepted, {refused} refused", file=sys.stderr)
        sys.exit(2)
    if refused:
        sys.exit(1)
    if any(claims != accepted[0][1] for _, claims in accepted):
        print(f"the blocks read different claims: {accepted}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(accepted[0][1], sort_keys=True))


if __name__ == "__main__":
    main()
