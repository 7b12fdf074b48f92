#!/usr/bin/python3
"""Tokens minted by libtsi verify with Debian's PyJWT (key from x5c[0]), and
tokens minted by PyJWT verify with `tsi token verify`: the JWS is standard,
not merely self-consistent."""
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

BIN = os.environ["TSI_BIN_DIR"]
TBIN = os.environ["TSI_TEST_BIN_DIR"]
TSI = os.path.join(BIN, "tsi")
MINT = os.path.join(TBIN, "tsi_test_mint")


def run(args, stdin=None, ok=(0,)):
    p = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=30)
    if p.returncode not in ok:
        sys.exit("FAIL: %s -> %d\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def thumbprint(pub):
    n = pub.public_numbers()
    jwk = '{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}' % (
        b64url(n.x.to_bytes(32, "big")), b64url(n.y.to_bytes(32, "big")))
    return b64url(hashlib.sha256(jwk.encode()).digest())


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
    print("ok:", what)


tmp = tempfile.mkdtemp(prefix="tsi-pyjwt-")
try:
    ca = os.path.join(tmp, "ca")
    run([TSI, "ca", "init", "--out", ca, "--cn", "interop CA", "--days", "30"])

    node_key = ec.generate_private_key(ec.SECP256R1())
    keyf = os.path.join(tmp, "node.key")
    with open(keyf, "wb") as f:
        f.write(node_key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    csr_pem = run([MINT, "csr", "--key", keyf, "--cn", "node-1"]).stdout
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    check(csr.is_signature_valid, "CSR made through the signer bridge has a valid self-signature")

    node_pem = run([TSI, "ca", "sign", "--ca", ca, "--cluster-name", "hipaaCluster",
                    "--region", "eu-de", "--datacenter", "dal05", "--node", "node-1",
                    "--days", "10", "-"], stdin=csr_pem).stdout
    nodef = os.path.join(tmp, "node.pem")
    with open(nodef, "w") as f:
        f.write(node_pem)
    node = x509.load_pem_x509_certificate(node_pem.encode())
    ca_cert = x509.load_pem_x509_certificate(open(os.path.join(ca, "ca.pem"), "rb").read())
    ca_cert.public_key().verify(node.signature, node.tbs_certificate_bytes,
                                ec.ECDSA(node.signature_hash_algorithm))
    sans = node.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    check(sorted(sans.get_values_for_type(x509.UniformResourceIdentifier)) ==
          sorted(["tsi:cluster-name:hipaaCluster", "tsi:region:eu-de",
                  "tsi:datacenter:dal05", "tsi:node:node-1"]), "node certificate SANs")
    bc = node.extensions.get_extension_for_class(x509.BasicConstraints)
    check(bc.critical and bc.value.ca and bc.value.path_length == 0, "node cert CA:TRUE pathlen:0")
    ku = node.extensions.get_extension_for_class(x509.KeyUsage).value
    check(ku.digital_signature and ku.key_cert_sign and not ku.crl_sign, "node cert key usage")

    now = int(time.time())
    claims = {"iss": "tsi-issuer", "sub": "spiffe://tsi.example/ns/default/sa/app",
              "aud": "tsi-vault", "iat": now, "nbf": now, "exp": now + 300,
              "jti": "00112233445566778899aabbccddeeff",
              "images": ["sha256:" + "ab" * 32], "cluster-name": "hipaaCluster",
              "region": "eu-de", "datacenter": "dal05", "node": "node-1"}

    for mode, extra in (("node-only", []), ("session", ["--session-ttl", "600"])):
        tok = run([MINT, "mint", "--key", keyf, "--chain", nodef,
                   "--claims", json.dumps(claims)] + extra).stdout.strip()
        hdr = jwt.get_unverified_header(tok)
        check(hdr["alg"] == "ES256" and hdr["typ"] == "JWT", mode + ": header alg/typ")
        check(len(hdr["x5c"]) == (2 if mode == "session" else 1), mode + ": x5c length")
        leaf = x509.load_der_x509_certificate(base64.b64decode(hdr["x5c"][0], validate=True))
        pub = leaf.public_key()
        check(hdr["kid"] == thumbprint(pub), mode + ": kid is the RFC 7638 thumbprint of x5c[0]")
        if mode == "session":
            node.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes,
                                     ec.ECDSA(leaf.signature_hash_algorithm))
            check(x509.load_der_x509_certificate(base64.b64decode(hdr["x5c"][1])) == node,
                  "session: x5c[1] is the node certificate")
            sbc = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
            check(not sbc.ca, "session: certificate is CA:FALSE")
        got = jwt.decode(tok, pub, algorithms=["ES256"], audience="tsi-vault",
                         options={"require": ["exp", "iat", "aud"]})
        check(got == claims, mode + ": PyJWT verifies signature, aud and exp")
        try:
            jwt.decode(tok, pub, algorithms=["ES256"], audience="other")
            sys.exit("FAIL: PyJWT accepted a wrong audience")
        except jwt.InvalidAudienceError:
            print("ok:", mode + ": PyJWT refuses another audience")
        h, c, s = tok.split(".")
        forged = h + "." + b64url(json.dumps(dict(claims, node="node-2")).encode()) + "." + s
        try:
            jwt.decode(forged, pub, algorithms=["ES256"], audience="tsi-vault")
            sys.exit("FAIL: PyJWT accepted tampered claims")
        except jwt.InvalidSignatureError:
            print("ok:", mode + ": PyJWT refuses tampered claims")
        out = run([TSI, "token", "verify", "--ca", os.path.join(ca, "ca.pem"), tok]).stdout
        check(json.loads(out) == claims, mode + ": tsi token verify prints the claims")

    # Expired: PyJWT and tsi agree.
    old = dict(claims, iat=now - 900, nbf=now - 900, exp=now - 600)
    tok = run([MINT, "mint", "--key", keyf, "--chain", nodef,
               "--claims", json.dumps(old)]).stdout.strip()
    try:
        jwt.decode(tok, node.public_key(), algorithms=["ES256"], audience="tsi-vault")
        sys.exit("FAIL: PyJWT accepted an expired token")
    except jwt.ExpiredSignatureError:
        print("ok: PyJWT refuses the expired token")
    p = run([TSI, "token", "verify", "--ca", os.path.join(ca, "ca.pem"), tok], ok=(1,))
    check("expired" in p.stderr, "tsi token verify refuses the expired token")

    # The other direction: PyJWT mints with the node key, tsi verifies.
    der = node.public_bytes(serialization.Encoding.DER)
    tok = jwt.encode(claims, node_key, algorithm="ES256",
                     headers={"kid": thumbprint(node_key.public_key()),
                              "x5c": [base64.b64encode(der).decode()]})
    out = run([TSI, "token", "verify", "--ca", os.path.join(ca, "ca.pem"), tok]).stdout
    check(json.loads(out) == claims, "a PyJWT-minted ES256 token verifies with tsi")
    # Algorithm confusion built by hand (PyJWT itself refuses to do it).
    import hmac
    hh = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": thumbprint(node_key.public_key()),
                            "x5c": [base64.b64encode(der).decode()]}).encode())
    cc = b64url(json.dumps(claims).encode())
    pem_pub = node_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    mac = hmac.new(pem_pub, (hh + "." + cc).encode(), hashlib.sha256).digest()
    p = run([TSI, "token", "verify", "--ca", os.path.join(ca, "ca.pem"),
             hh + "." + cc + "." + b64url(mac)], ok=(1,))
    check("bad_alg" in p.stderr, "HS256 keyed with the public key is refused (bad_alg)")
finally:
    shutil.rmtree(tmp)
print("PASS")
