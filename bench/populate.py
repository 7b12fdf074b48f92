#!/usr/bin/python3
"""Writes COUNT KV v2 secrets into a tsi-vault (or any Vault) over keep-alive
connections, from THREADS threads, before a benchmark starts.

Usage: populate.py --addr http://127.0.0.1:8200 --token T --prefix bench/s
                   --count N [--threads 8] [--bytes 16] [--cacert PEM]
Secrets are secret/data/<prefix><i> = {"password": <bytes random hex>}.
Exit 0 when every write answered 200 or 204, 1 otherwise (the first failure
is printed), 2 on bad usage.
"""
import argparse
import http.client
import json
import os
import ssl
import sys
import threading
import urllib.parse


def worker(addr, token, prefix, indices, nbytes, errors, cacert):
    u = urllib.parse.urlsplit(addr)
    if u.scheme == "https":
        ctx = ssl.create_default_context(cafile=cacert)
        conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=30,
                                           context=ctx)
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    headers = {"X-Vault-Token": token, "Content-Type": "application/json"}
    try:
        for i in indices:
            body = json.dumps({"data": {"password": os.urandom(nbytes).hex()}})
            conn.request("POST", f"/v1/secret/data/{prefix}{i}", body, headers)
            resp = conn.getresponse()
            data = resp.read()
            if resp.status not in (200, 204):
                errors.append(f"{prefix}{i}: {resp.status} {data[:200]!r}")
                return
    except (OSError, http.client.HTTPException) as e:
        errors.append(f"{e}")
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--bytes", type=int, default=16)
    ap.add_argument("--cacert", help="CA file for an https:// address")
    a = ap.parse_args()
    if a.count < 1 or a.threads < 1:
        ap.error("count and threads must be positive")
    errors = []
    ths = [threading.Thread(target=worker,
                            args=(a.addr, a.token, a.prefix,
                                  range(t, a.count, a.threads), a.bytes, errors,
                                  a.cacert))
           for t in range(min(a.threads, a.count))]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    if errors:
        print(f"populate: {errors[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
