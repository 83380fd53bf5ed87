"""Checks a receipt with jwcrypto, a JOSE library this project did not write: the compact JWS's
ES256 signature against the key its `kid` names in a JSON Web Key Set, and that `kid` is the key's
RFC 7638 thumbprint. The integration tests (tests/it/receipts.rs) run it on every receipt they
check with the CLI, so both must agree.

usage: check_receipt.py JWKS-FILE RECEIPT-FILE
exit 0 and the claims on stdout: valid; exit 1: refused (the reason on stderr).
"""
import json
import sys

from jwcrypto import jwk, jws
from jwcrypto.common import json_decode


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip())
    with open(sys.argv[1]) as f:
        keys = jwk.JWKSet.from_json(f.read())
    with open(sys.argv[2]) as f:
        token = f.read().strip()
    try:
        receipt = jws.JWS()
        receipt.deserialize(token)
        header = receipt.jose_header
        if header.get("alg") != "ES256" or header.get("typ") != "vu-receipt+jwt":
            raise ValueError(f"not a receipt: {header}")
        key = keys.get_key(header["kid"])
        if key is None:
            raise ValueError(f"no key {header['kid']!r} in the key set")
        if key.thumbprint() != header["kid"]:
            raise ValueError("the kid is not the key's RFC 7638 thumbprint")
        receipt.verify(key, alg="ES256")
    except Exception as e:  # jwcrypto raises its own kinds; any of them is a refusal
        print(f"refused: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(json_decode(receipt.payload), sort_keys=True))


if __name__ == "__main__":
    main()
