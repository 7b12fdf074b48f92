#!/usr/bin/python3
"""Applies the JSONPatch that tsi-injector returns over HTTPS with an
independent RFC 6902 implementation (python3-jsonpatch) and checks the pod
that results."""
import base64
import copy
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

import jsonpatch

SRC = os.environ.get("TSI_SOURCE_DIR", os.getcwd())
BIN = os.environ.get("TSI_BIN_DIR", os.path.join(SRC, "build", "bin"))
DATA = os.path.join(SRC, "tests", "data", "admission")
IMAGE = "registry.example/tsi-sidecar:0.1.0"
failures = 0
checks = 0


def check(cond, what):
    global failures, checks
    checks += 1
    if not cond:
        failures += 1
        print("FAIL:", what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def post(ctx, url, doc):
    req = urllib.request.Request(url, data=json.dumps(doc).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        return r.status, json.load(r)


def apply(resp, pod):
    if "patch" not in resp:
        return None
    check(resp.get("patchType") == "JSONPatch", "patchType is JSONPatch")
    ops = json.loads(base64.b64decode(resp["patch"]))
    return jsonpatch.JsonPatch(ops).apply(pod)


def mounts(ct):
    return {m["name"]: m for m in ct.get("volumeMounts", [])}


def env(ct):
    return {e["name"]: e["value"] for e in ct.get("env", [])}


def check_injected(before, after, refresh):
    spec, spec0 = after["spec"], before["spec"]
    init = spec["initContainers"][0]
    check(init["name"] == "tsi-sidecar-init", "init container first")
    check(init["image"] == IMAGE and init["args"] == ["--once"], "init runs --once")
    e = env(init)
    ann = before["metadata"]["annotations"]
    check(json.loads(e["TSI_SECRETS"]) == json.loads(ann["tsi.secrets"]),
          "TSI_SECRETS carries the annotation's secrets")
    check(e["TSI_ROLE"] == ann["tsi.role"], "TSI_ROLE from tsi.role")
    check(e["TSI_ISSUER_SOCKET"] == "/run/tsi/issuer.sock", "socket path")
    check(e["VAULT_ADDR"].startswith("https://"), "VAULT_ADDR")
    check(e["TSI_SECRETS_DIR"] == "/tsi-secrets", "TSI_SECRETS_DIR is the tmpfs")
    for s in json.loads(e["TSI_SECRETS"]):
        check(not s["dest"].startswith("/") or s["dest"].startswith("/tsi-secrets/"),
              "dest lies in the secrets tmpfs")
    vols = {v["name"]: v for v in spec["volumes"]}
    check(vols["tsi-secrets"]["emptyDir"]["medium"] == "Memory", "tmpfs secrets")
    check(vols["tsi-issuer"]["hostPath"]["path"] == "/run/tsi", "socket dir hostPath")
    # the original containers are unchanged but for the secrets mount
    apps = [c for c in spec["containers"] if c["name"] != "tsi-sidecar"]
    check(len(apps) == len(spec0["containers"]), "no app container lost")
    for c0, c in zip(spec0["containers"], apps):
        c1 = copy.deepcopy(c)
        m = c1.get("volumeMounts", [])
        check(m and m[-1] == {"name": "tsi-secrets", "mountPath": "/tsi-secrets",
                              "readOnly": True}, c["name"] + " mounts secrets ro")
        m.pop()
        if not m:
            c1.pop("volumeMounts")
        check(c1 == c0, c["name"] + " otherwise unchanged")
    for c in spec["initContainers"] + spec["containers"]:
        ours = c["name"].startswith("tsi-sidecar")
        check(("tsi-issuer" in mounts(c)) == ours,
              c["name"] + ": only the sidecar sees the issuer socket")
        if ours:
            check(mounts(c)["tsi-issuer"].get("readOnly") is True, "socket dir ro")
            sc = c["securityContext"]
            check(sc["runAsNonRoot"] and not sc["allowPrivilegeEscalation"] and
                  sc["capabilities"]["drop"] == ["ALL"] and
                  sc["seccompProfile"]["type"] == "RuntimeDefault",
                  "sidecar meets the restricted pod security standard")
    names = [c["name"] for c in spec["containers"]]
    check(("tsi-sidecar" in names) == refresh, "refresh sidecar only when asked")
    check(after["metadata"]["annotations"]["tsi.injected"] == "true", "marked")
    for k, v in before["metadata"]["annotations"].items():
        check(after["metadata"]["annotations"][k] == v, "annotation kept " + k)


def main():
    tmp = tempfile.mkdtemp(prefix="tsi-injector-py-")
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out",
                    cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    conf = os.path.join(tmp, "injector.conf")
    with open(conf, "w") as f:
        f.write('listen = "127.0.0.1:%d";\ntls_cert = "%s";\ntls_key = "%s";\n'
                'sidecar_image = "%s";\n'
                'vault_addr = "https://tsi-vault.tsi-system.svc:8200";\n'
                % (port, cert, key, IMAGE))
    log = open(os.path.join(tmp, "injector.log"), "w")
    proc = subprocess.Popen([os.path.join(BIN, "tsi-injector"), "--config", conf],
                            stderr=log)
    ctx = ssl.create_default_context(cafile=cert)
    url = "https://127.0.0.1:%d" % port
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(url + "/healthz", context=ctx, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
        for name, expect in [("pod-annotated-create.json", "inject"),
                             ("pod-refresh-create.json", "refresh"),
                             ("pod-plain-create.json", "alone"),
                             ("pod-update-label-allowed.json", "alone"),
                             ("pod-hostpath-escape-create.json", "refuse"),
                             ("pod-update-annotation-changed.json", "refuse"),
                             ("pod-update-sidecar-image-changed.json", "refuse"),
                             ("pod-bad-secrets-create.json", "refuse")]:
            doc = json.load(open(os.path.join(DATA, name)))
            status, out = post(ctx, url + "/mutate", doc)
            resp = out["response"]
            check(status == 200 and resp["uid"] == doc["request"]["uid"], name + ": answered")
            pod = doc["request"]["object"]
            after = apply(resp, pod)
            if expect in ("inject", "refresh"):
                check(resp["allowed"] is True and after is not None, name + ": patched")
                check_injected(pod, after, expect == "refresh")
                # a second admission of the injected pod as an UPDATE of
                # itself is allowed and leaves it alone
                upd = copy.deepcopy(doc)
                upd["request"].update(operation="UPDATE", object=after,
                                      oldObject=after, uid="again-" + name)
                _, again = post(ctx, url + "/mutate", upd)
                check(again["response"]["allowed"] is True and
                      "patch" not in again["response"], name + ": no-op update allowed")
                # the injected pod re-submitted as a CREATE is refused: it
                # names the issuer's host path itself
                cre = copy.deepcopy(doc)
                cre["request"].update(object=after, uid="replay-" + name)
                _, replay = post(ctx, url + "/mutate", cre)
                check(replay["response"]["allowed"] is False,
                      name + ": a pod carrying the issuer hostPath is refused")
            elif expect == "alone":
                check(resp["allowed"] is True and after is None, name + ": untouched")
            else:
                check(resp["allowed"] is False and after is None and
                      resp["status"]["code"] == 403 and resp["status"]["message"],
                      name + ": refused with a reason")
    finally:
        proc.terminate()
        rc = proc.wait(timeout=10)
        log.close()
        subprocess.run(["rm", "-rf", tmp])
    check(rc == 0, "tsi-injector stops cleanly on SIGTERM")
    print("%d passed, %d failed" % (checks - failures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
