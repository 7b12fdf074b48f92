#!/usr/bin/python3
"""Independent check of an issuer token with PyJWT and cryptography.

usage: verify_pyjwt.py TOKEN_FILE CA_PEM AUDIENCE
Verifies the x5c chain up to the CA, the kid (RFC 7638 thumbprint of the
leaf key) and the ES256 signature, exp/nbf/iat and aud with PyJWT.
Prints the claims as JSON and exits 0 when valid; exits 1 otherwise.
"""
import base64
import hashlib
import json
import sys

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def main():
    token = open(sys.argv[1]).read().strip()
    ca = x509.load_pem_x509_certificate(open(sys.argv[2], "rb").read())
    aud = sys.argv[3]
    header = jwt.get_unverified_header(token)
    if header.get("alg") != "ES256" or header.get("typ") != "JWT":
        sys.exit("bad header")
    chain = [x509.load_der_x509_certificate(base64.b64decode(c))
             for c in header["x5c"]]
    for child, parent in zip(chain, chain[1:] + [ca]):
        parent.public_key().verify(child.signature, child.tbs_certificate_bytes,
                                   ec.ECDSA(hashes.SHA256()))
    nums = chain[0].public_key().public_numbers()
    jwk = {"crv": "P-256", "kty": "EC",
           "x": b64url(nums.x.to_bytes(32, "big")),
           "y": b64url(nums.y.to_bytes(32, "big"))}
    kid = b64url(hashlib.sha256(json.dumps(jwk, sort_keys=True,
                 separators=(",", ":")).encode()).digest())
    if header.get("kid") != kid:
        sys.exit("kid is not the RFC 7638 thumbprint of the leaf key")
    claims = jwt.decode(token, chain[0].public_key(), algorithms=["ES256"],
                        audience=aud,
                        options={"require": ["exp", "iat", "nbf", "aud"]})
    print(json.dumps({"x5c_len": len(chain), "kid": kid, "claims": claims}))


if __name__ == "__main__":
    main()
