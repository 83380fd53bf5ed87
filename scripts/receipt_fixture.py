"""Writes a receipt for FILE and the key set that checks it, as the service would issue them
(ES256, `typ` vu-receipt+jwt, `kid` the key's RFC 7638 thumbprint), signed by a fresh key with
jwcrypto: the bench's fixture for `verified-uploads check` (scripts/bench.sh, section 6).

usage: receipt_fixture.py FILE RECEIPT-OUT KEYS-OUT
"""
import hashlib
import json
import os
import sys

from jwcrypto import jwk, jws


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip())
    path, receipt_out, keys_out = sys.argv[1:]
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    key = jwk.JWK.generate(kty="EC", crv="P-256")
    kid = key.thumbprint()
    upload_id = "01JDZ4Q8X6M3V9T2K7R5N1B0CD"
    claims = {
        "iss": "verified-uploads", "sub": upload_id, "iat": 1767225600, "upload_id": upload_id,
        "owner": "bench", "bucket": "bench", "key": f"uploads/{upload_id}/{os.path.basename(path)}",
        "version_id": None, "size": os.path.getsize(path), "sha256": digest.hexdigest(),
        "etag": '"bench"', "verified_at": "2026-01-01T00:00:00.000Z",
    }
    token = jws.JWS(json.dumps(claims))
    token.add_signature(key, alg="ES256", protected={"alg": "ES256", "typ": "vu-receipt+jwt", "kid": kid})
    with open(receipt_out, "w") as f:
        f.write(token.serialize(compact=True) + "\n")
    public = json.loads(key.export_public())
    public.update(kid=kid, alg="ES256", use="sig")
    with open(keys_out, "w") as f:
        json.dump({"keys": [public]}, f)


if __name__ == "__main__":
    main()
