#!/usr/bin/python3
"""Chart test for charts/tsi: renders the chart with a real helm binary in
several configurations, validates every object against the Kubernetes API
schemas (validate.mjs, ajv validators generated from the Kubernetes OpenAPI
definitions) and against the Kubernetes Python client's models for unknown
fields, checks the restricted Pod Security Standard on the pods that must meet
it and the documented exceptions of the issuer, and runs the real tsi-vault
and tsi-injector with the configuration, certificates and keys the chart
generated.

Environment: HELM, K8S_MODULES (node_modules with kubernetes-models),
TSI_SOURCE_DIR, TSI_BIN_DIR.
"""
import base64
import copy
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

import jsonpatch
import yaml
from kubernetes.client import models as K

SRC = os.environ.get("TSI_SOURCE_DIR", os.getcwd())
BIN = os.environ.get("TSI_BIN_DIR", os.path.join(SRC, "build", "bin"))
HELM = os.environ["HELM"]
MODULES = os.environ["K8S_MODULES"]
CHART = os.path.join(SRC, "charts", "tsi")
HERE = os.path.dirname(os.path.abspath(__file__))
NS = "tsi-system"

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)
    return cond


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def render(tmp, name, args):
    r = run([HELM, "template", "tsi", CHART, "--namespace", NS] + args)
    if not check(r.returncode == 0, "helm template %s: %s" % (name, r.stderr.strip())):
        return []
    path = os.path.join(tmp, name + ".yaml")
    with open(path, "w") as f:
        f.write(r.stdout)
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def find(docs, kind, name=None):
    for d in docs:
        if d["kind"] == kind and (name is None or d["metadata"]["name"] == name):
            return d
    return None


# --- unknown fields: the Kubernetes Python client's models name every field ----

def strict(obj, typ, path, errs):
    if typ in ("str", "int", "bool", "float", "object", "datetime", "date"):
        return
    m = re.match(r"list\[(.*)\]$", typ)
    if m:
        for i, x in enumerate(obj or []):
            strict(x, m.group(1), "%s[%d]" % (path, i), errs)
        return
    m = re.match(r"dict\(str, (.*)\)$", typ)
    if m:
        for k, v in (obj or {}).items():
            strict(v, m.group(1), "%s.%s" % (path, k), errs)
        return
    cls = getattr(K, typ)
    if not isinstance(obj, dict):
        errs.append("%s: expected an object (%s)" % (path, typ))
        return
    names = {v: k for k, v in cls.attribute_map.items()}
    for key, val in obj.items():
        if key not in names:
            errs.append("%s.%s: unknown field of %s" % (path, key, typ))
            continue
        strict(val, cls.openapi_types[names[key]], "%s.%s" % (path, key), errs)


def check_strict(docs, where):
    for d in docs:
        if d["apiVersion"].endswith("cert-manager.io/v1") or not hasattr(K, "V1" + d["kind"]):
            # no Python model (cert-manager, kinds newer than the client): the
            # schema validation covers them
            check(d["kind"] in ("Issuer", "Certificate", "ValidatingAdmissionPolicy",
                                "ValidatingAdmissionPolicyBinding"), "a model for " + d["kind"])
            continue
        errs = []
        strict(d, "V1" + d["kind"], d["kind"], errs)
        check(not errs, "%s %s/%s: %s" % (where, d["kind"], d["metadata"]["name"], errs))


# --- Pod Security Standards --------------------------------------------------

RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}


def check_restricted(spec, where, only=None, allow_volumes=()):
    psc = spec.get("securityContext", {})
    for f in ("hostNetwork", "hostPID", "hostIPC"):
        check(not spec.get(f), "%s: %s" % (where, f))
    for v in spec.get("volumes", []):
        kinds = set(v) - {"name"}
        if v["name"] in allow_volumes:
            continue
        if only is None or v["name"].startswith("tsi-"):
            check(kinds <= RESTRICTED_VOLUMES, "%s: volume %s is %s" % (where, v["name"], kinds))
    for c in spec.get("initContainers", []) + spec["containers"]:
        if only is not None and not c["name"].startswith(only):
            continue
        sc = c.get("securityContext", {})
        w = "%s container %s" % (where, c["name"])
        check(sc.get("allowPrivilegeEscalation") is False, w + ": allowPrivilegeEscalation false")
        check(not sc.get("privileged"), w + ": not privileged")
        caps = sc.get("capabilities", {})
        check("ALL" in caps.get("drop", []), w + ": drops ALL capabilities")
        check(set(caps.get("add", [])) <= {"NET_BIND_SERVICE"}, w + ": adds no capability")
        check(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, w + ": runAsNonRoot")
        check(sc.get("runAsUser", psc.get("runAsUser", 1)) != 0, w + ": not uid 0")
        seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
        check(seccomp in ("RuntimeDefault", "Localhost"), w + ": seccomp " + str(seccomp))
        check(sc.get("readOnlyRootFilesystem") is True, w + ": read-only root filesystem")
        check(not any(p.get("hostPort") for p in c.get("ports", [])), w + ": no hostPort")
        check("resources" in c and "limits" in c["resources"], w + ": has resource limits")


def check_issuer(docs, where, device_plugin, privsep=True):
    ds = find(docs, "DaemonSet")
    spec = ds["spec"]["template"]["spec"]
    check(spec.get("securityContext", {}).get("seccompProfile", {}).get("type") == "RuntimeDefault",
          where + " issuer pod: seccomp RuntimeDefault")
    conf = find(docs, "ConfigMap", "tsi-issuer")["data"]["issuer.conf.in"]
    if privsep:
        check('front_user   = "65534:65534";' in conf and "privsep" not in conf,
              where + " issuer: privilege separated, front end as 65534:65534")
    else:
        check("privsep      = false;" in conf and "front_user" not in conf,
              where + " issuer: one process when privsep is false")
    hostpaths = {v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}
    want = {"/run/tsi", "/var/lib/tsi-issuer"} | (set() if device_plugin else {"/dev/tpmrm0"})
    check(hostpaths == want, "%s issuer hostPaths %s (documented: %s)" % (where, hostpaths, want))
    check(spec.get("hostPID") is True and not spec.get("hostNetwork") and not spec.get("hostIPC"),
          where + " issuer: hostPID only")
    check(spec.get("automountServiceAccountToken") is False, where + " issuer: no automounted token")
    for c in spec["initContainers"] + spec["containers"]:
        sc = c["securityContext"]
        check(sc.get("readOnlyRootFilesystem") is True, where + " issuer read-only root")
        if device_plugin:
            check(not sc.get("privileged") and sc.get("allowPrivilegeEscalation") is False and
                  sc["capabilities"]["drop"] == ["ALL"], where + " issuer unprivileged with a device plugin")
            # The signer keeps only what the front end needs to drop to its user.
            want = ["SETGID", "SETPCAP", "SETUID"] if privsep and c["name"] == "issuer" else None
            check(sc["capabilities"].get("add") == want,
                  "%s issuer %s adds capabilities %s (want %s)" % (
                      where, c["name"], sc["capabilities"].get("add"), want))
        else:
            check(sc.get("privileged") is True, where + " issuer privileged without a device plugin")
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        check(mounts["kubelet-credentials"].get("readOnly") is True, where + " kubelet token read-only")
    main = spec["containers"][0]
    probe = " ".join(main["livenessProbe"]["exec"]["command"])
    check("--unix-socket /run/tsi/issuer.sock" in probe and "/v1/health" in probe,
          where + " issuer probe asks /v1/health on the socket")
    if device_plugin:
        check(main["resources"]["limits"].get("squat.ai/tpmrm0") == "1", where + " TPM resource requested")
    role = find(docs, "ClusterRole")
    rules = [(tuple(r["resources"]), tuple(r["verbs"])) for r in role["rules"]]
    return rules


def pem_of(b64):
    return base64.b64decode(b64).decode()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def tls_get(port, cafile, host, path, body=None):
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            method = "POST" if body is not None else "GET"
            data = body.encode() if body is not None else b""
            s.sendall(("%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                       "Content-Length: %d\r\nConnection: close\r\n\r\n"
                       % (method, path, host, len(data))).encode() + data)
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
    head, _, payload = out.partition(b"\r\n\r\n")
    return int(head.split()[1]), payload.decode()


def wait_ready(port, cafile, host, path, proc):
    for _ in range(100):
        if proc.poll() is not None:
            return False
        try:
            status, _ = tls_get(port, cafile, host, path)
            if status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def stop(proc):
    proc.terminate()
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def run_vault(tmp, docs):
    """tsi-vault with the chart's config, TLS certificate, KV key and policies."""
    d = os.path.join(tmp, "vault")
    for sub in ("tls", "policies", "ca", "kv", "data"):
        os.makedirs(os.path.join(d, sub))
    conf = find(docs, "ConfigMap", "tsi-vault")["data"]["vault.conf"]
    tls = find(docs, "Secret", "tsi-vault-tls")["data"]
    for k in ("tls.crt", "tls.key", "ca.crt"):
        with open(os.path.join(d, "tls", k), "w") as f:
            f.write(pem_of(tls[k]))
    for name, text in find(docs, "ConfigMap", "tsi-policies")["data"].items():
        with open(os.path.join(d, "policies", name), "w") as f:
            f.write(text)
    with open(os.path.join(d, "ca", "ca.pem"), "w") as f:
        f.write(find(docs, "ConfigMap", "tsi-cluster-ca")["data"]["ca.pem"])
    key = base64.b64decode(find(docs, "Secret", "tsi-vault-kv-key")["data"]["kv.key"])
    check(len(key) == 32, "generated KV key is 32 bytes")
    fd = os.open(os.path.join(d, "kv", "kv.key"), os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, key)
    os.close(fd)
    # what the init container does: the TLS key beside the KV key, mode 0600
    init = find(docs, "StatefulSet")["spec"]["template"]["spec"]["initContainers"][0]
    check(init["command"][:3] == ["install", "-m", "0600"] and
          "/etc/tsi-vault/tls/tls.key" in init["command"] and
          init["command"][-1] == "/run/tsi-vault/", "vault init container copies the TLS key 0600")
    check('tls_key         = "/run/tsi-vault/tls.key"' in conf, "vault.conf reads the copied TLS key")
    fd = os.open(os.path.join(d, "kv", "tls.key"), os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, pem_of(tls["tls.key"]).encode())
    os.close(fd)
    # the same key group-readable (as the Secret volume shows it) is refused
    opened = os.path.join(d, "open.key")
    with open(opened, "w") as f:
        f.write(pem_of(tls["tls.key"]))
    os.chmod(opened, 0o640)
    oconf = os.path.join(d, "open.conf")
    with open(oconf, "w") as f:
        f.write(conf.replace("/run/tsi-vault/tls.key", opened)
                .replace("/etc/tsi-vault/tls/", d + "/tls/")
                .replace("/etc/tsi-vault/policies", d + "/policies")
                .replace("/etc/tsi-vault/ca/", d + "/ca/")
                .replace("/run/tsi-vault/", d + "/kv/")
                .replace("/var/lib/tsi-vault", d + "/data"))
    r = run([os.path.join(BIN, "tsi-vault"), "--config", oconf], timeout=30)
    check(r.returncode == 2 and "readable by group or others" in r.stderr,
          "tsi-vault refuses a group-readable TLS key: %d %s" % (r.returncode, r.stderr[-300:]))
    port = free_port()
    conf = (conf.replace("/etc/tsi-vault/tls/", d + "/tls/")
            .replace("/etc/tsi-vault/policies", d + "/policies")
            .replace("/etc/tsi-vault/ca/", d + "/ca/")
            .replace("/run/tsi-vault/", d + "/kv/")
            .replace("/var/lib/tsi-vault", d + "/data")
            .replace('"0.0.0.0:8200"', '"127.0.0.1:%d"' % port))
    check(conf.count(d) >= 6, "vault.conf paths rewritten")
    cpath = os.path.join(d, "vault.conf")
    with open(cpath, "w") as f:
        f.write(conf)
    log = open(os.path.join(d, "vault.log"), "w")
    proc = subprocess.Popen([os.path.join(BIN, "tsi-vault"), "--config", cpath], stderr=log)
    host = "tsi-vault.%s.svc" % NS
    try:
        ok = wait_ready(port, os.path.join(d, "tls", "ca.crt"), host, "/v1/sys/health", proc)
        if not check(ok, "tsi-vault starts with the chart's config and answers "
                     "/v1/sys/health over TLS verified by the chart's CA as " + host):
            log.flush()
            print(open(os.path.join(d, "vault.log")).read()[-2000:])
        else:
            status, body = tls_get(port, os.path.join(d, "tls", "ca.crt"), host, "/v1/sys/health")
            check(status == 200 and json.loads(body).get("initialized") is True, "vault health body")
            st = os.stat(os.path.join(d, "data", "root-token"))
            check(st.st_mode & 0o077 == 0, "root token file created private")
    finally:
        check(stop(proc) == 0, "tsi-vault stops cleanly")
        log.close()


def run_injector(tmp, docs):
    """tsi-injector with the chart's config and webhook certificate; the API
    server's view: the caBundle of the MutatingWebhookConfiguration."""
    d = os.path.join(tmp, "injector")
    os.makedirs(d)
    conf = find(docs, "ConfigMap", "tsi-injector")["data"]["injector.conf"]
    tls = find(docs, "Secret", "tsi-injector-tls")["data"]
    for k in ("tls.crt", "tls.key"):
        fd = os.open(os.path.join(d, k), os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, pem_of(tls[k]).encode())
        os.close(fd)
    dep = find(docs, "Deployment")["spec"]["template"]["spec"]
    init = dep["initContainers"][0]
    check(init["command"] == ["install", "-m", "0600", "/etc/tsi-injector/tls/tls.key",
                              "/run/tsi-injector/tls.key"], "injector init container copies the TLS key 0600")
    check('"/run/tsi-injector/tls.key"' in conf, "injector.conf reads the copied TLS key")
    hook = find(docs, "MutatingWebhookConfiguration")["webhooks"][0]
    with open(os.path.join(d, "bundle.pem"), "w") as f:
        f.write(pem_of(hook["clientConfig"]["caBundle"]))
    port = free_port()
    conf = (conf.replace("/etc/tsi-injector/tls/", d + "/")
            .replace("/run/tsi-injector/", d + "/")
            .replace('"0.0.0.0:8443"', '"127.0.0.1:%d"' % port))
    cpath = os.path.join(d, "injector.conf")
    with open(cpath, "w") as f:
        f.write(conf)
    log = open(os.path.join(d, "injector.log"), "w")
    proc = subprocess.Popen([os.path.join(BIN, "tsi-injector"), "--config", cpath], stderr=log)
    svc = hook["clientConfig"]["service"]
    host = "%s.%s.svc" % (svc["name"], svc["namespace"])
    injected = None
    try:
        ok = wait_ready(port, os.path.join(d, "bundle.pem"), host, "/healthz", proc)
        check(ok, "tsi-injector starts with the chart's config; its certificate verifies "
              "with the webhook's caBundle as " + host)
        if ok:
            review = json.load(open(os.path.join(SRC, "tests", "data", "admission",
                                                 "pod-annotated-create.json")))
            status, body = tls_get(port, os.path.join(d, "bundle.pem"), host, svc["path"],
                                   json.dumps(review))
            resp = json.loads(body)["response"]
            check(status == 200 and resp["allowed"] is True and "patch" in resp, "chart injector patches")
            ops = json.loads(base64.b64decode(resp["patch"]))
            injected = jsonpatch.apply_patch(review["request"]["object"], ops)
            init = injected["spec"]["initContainers"][0]
            env = {e["name"]: e["value"] for e in init["env"]}
            check(env["VAULT_ADDR"] == "https://tsi-vault.%s.svc:8200" % NS, "VAULT_ADDR is the vault Service")
            check(env["VAULT_CACERT"] == "/etc/tsi/vault-ca/ca.crt", "VAULT_CACERT from the CA ConfigMap")
            vols = {v["name"]: v for v in injected["spec"]["volumes"]}
            check(vols["tsi-vault-ca"]["configMap"]["name"] == "tsi-vault-ca", "CA ConfigMap volume")
            # the state directory is protected too (extra_protected_paths)
            bad = copy.deepcopy(review)
            bad["request"]["object"]["spec"]["volumes"].append(
                {"name": "keys", "hostPath": {"path": "/var/lib"}})
            status, body = tls_get(port, os.path.join(d, "bundle.pem"), host, svc["path"], json.dumps(bad))
            check(json.loads(body)["response"]["allowed"] is False, "hostPath above the issuer state dir refused")
    finally:
        check(stop(proc) == 0, "tsi-injector stops cleanly")
        log.close()
    return injected


def check_pod_guard(tmp, docs, pod):
    """The ValidatingAdmissionPolicy, evaluated with a CEL implementation on
    the injected pod and on pods that break one rule each."""
    policy = find(docs, "ValidatingAdmissionPolicy")
    binding = find(docs, "ValidatingAdmissionPolicyBinding")
    if not check(policy is not None and binding is not None, "pod guard rendered"):
        return
    check(binding["spec"]["validationActions"] == ["Deny"] and
          binding["spec"]["policyName"] == policy["metadata"]["name"], "pod guard binding denies")
    check("pods/ephemeralcontainers" in policy["spec"]["matchConstraints"]["resourceRules"][0]["resources"],
          "pod guard covers ephemeral containers")

    def variant(name, expect, message, change):
        p = copy.deepcopy(pod)
        change(p)
        return {"name": name, "object": p, "expect": expect, "message": message}

    def app(p):
        return [c for c in p["spec"]["containers"] if c["name"] == "app"][0]

    def sidecar_mounts(p):
        return p["spec"]["initContainers"][0]["volumeMounts"]

    cases = [
        {"name": "injected pod", "object": pod, "expect": "allow"},
        variant("another hostPath", "deny", "hostPath", lambda p: p["spec"]["volumes"].append(
            {"name": "logs", "hostPath": {"path": "/var/log"}})),
        variant("tsi-issuer named volume elsewhere", "deny", "hostPath",
                lambda p: [v["hostPath"].update(path="/") for v in p["spec"]["volumes"] if v["name"] == "tsi-issuer"]),
        variant("app mounts the socket dir", "deny", "may mount the issuer socket", lambda p: app(p).setdefault(
            "volumeMounts", []).append({"name": "tsi-issuer", "mountPath": "/x", "readOnly": True})),
        variant("sidecar mounts it writable", "deny", "may mount the issuer socket",
                lambda p: [m.pop("readOnly") for m in sidecar_mounts(p) if m["name"] == "tsi-issuer"]),
        variant("privileged", "deny", "privileged", lambda p: app(p).setdefault(
            "securityContext", {}).update(privileged=True)),
        variant("hostNetwork", "deny", "host namespaces", lambda p: p["spec"].update(hostNetwork=True)),
        variant("hostPID", "deny", "host namespaces", lambda p: p["spec"].update(hostPID=True)),
        variant("SYS_ADMIN", "deny", "capabilities", lambda p: app(p).setdefault(
            "securityContext", {}).setdefault("capabilities", {}).update(add=["SYS_ADMIN"])),
        variant("NET_BIND_SERVICE", "allow", "", lambda p: app(p).setdefault(
            "securityContext", {}).setdefault("capabilities", {}).update(add=["NET_BIND_SERVICE"])),
        variant("hostPort", "deny", "host ports", lambda p: app(p)["ports"][0].update(hostPort=80)),
        variant("seccomp Unconfined", "deny", "Unconfined", lambda p: p["spec"]["securityContext"].update(
            seccompProfile={"type": "Unconfined"})),
        variant("ephemeral privileged", "deny", "privileged", lambda p: p["spec"].update(ephemeralContainers=[
            {"name": "debug", "image": "busybox", "securityContext": {"privileged": True}}])),
        variant("ephemeral mounts the socket dir", "deny", "may mount the issuer socket", lambda p: p["spec"].update(
            ephemeralContainers=[{"name": "debug", "image": "busybox", "volumeMounts": [
                {"name": "tsi-issuer", "mountPath": "/s", "readOnly": True}]}])),
    ]
    pfile, cfile = os.path.join(tmp, "policy.json"), os.path.join(tmp, "cases.json")
    with open(pfile, "w") as f:
        json.dump(policy, f)
    with open(cfile, "w") as f:
        json.dump(cases, f)
    r = run(["node", os.path.join(HERE, "cel_check.mjs"), MODULES, pfile, cfile])
    check(r.returncode == 0, "pod guard CEL cases:\n" + r.stdout + r.stderr)
    check(("%d passed, 0 failed" % len(cases)) in r.stdout, "every pod guard case ran")


def key_algorithm(pem):
    r = run(["openssl", "x509", "-noout", "-text"], input=pem)
    m = re.search(r"Public Key Algorithm: (\S+)", r.stdout)
    return m.group(1) if m else None


def check_network(default, full, tmp):
    """Chart defaults of the NetworkPolicies and certificates (issue "Hardening
    II", item 10): the issuer reaches only kubelet addresses, never 0.0.0.0/0;
    tsi-vault admits the release's namespace, the listed and the labelled ones,
    not every namespace; the generated certificates are ECDSA."""
    for name, docs in (("default", default), ("full", full)):
        text = yaml.safe_dump_all(docs)
        check("0.0.0.0/0" not in text and "::/0" not in text, name + ": no 0.0.0.0/0 anywhere")
        iss = find(docs, "NetworkPolicy", "tsi-issuer")["spec"]
        check(iss["ingress"] == [], name + ": issuer takes no ingress")
        vp = find(docs, "NetworkPolicy", "tsi-vault")["spec"]
        froms = vp["ingress"][0]["from"]
        check(all(f.get("namespaceSelector") for f in froms) and
              {} not in [f.get("namespaceSelector") for f in froms],
              name + ": vault ingress never admits every namespace")
        check(froms[1]["namespaceSelector"] == {"matchLabels": {"tsi.example/vault-client": "enabled"}},
              name + ": labelled namespaces are admitted")
        for sec in ("tsi-vault-tls", "tsi-injector-tls"):
            data = find(docs, "Secret", sec)["data"]
            for k in ("tls.crt", "ca.crt"):
                check(key_algorithm(pem_of(data[k])) == "id-ecPublicKey",
                      "%s: %s %s is ECDSA" % (name, sec, k))
            check("BEGIN EC PRIVATE KEY" in pem_of(data["tls.key"]) or
                  "BEGIN PRIVATE KEY" in pem_of(data["tls.key"]), name + ": " + sec + " key PEM")
    # Without a cluster (no node to look up) and no kubeletCIDRs: no egress at all.
    check(find(default, "NetworkPolicy", "tsi-issuer")["spec"]["egress"] == [],
          "default without nodes: the issuer gets no egress")
    names = find(default, "NetworkPolicy", "tsi-vault")["spec"]["ingress"][0]["from"][0]
    check(names["namespaceSelector"]["matchExpressions"][0]["values"] == [NS],
          "default: vault admits its own namespace by name")
    names = find(full, "NetworkPolicy", "tsi-vault")["spec"]["ingress"][0]["from"][0]
    check(sorted(names["namespaceSelector"]["matchExpressions"][0]["values"]) ==
          sorted([NS, "hipaa", "eu-apps"]), "full: and the vaultCANamespaces")
    cidr = render(tmp, "cidr", ["--set", "networkPolicy.kubeletCIDRs={10.0.0.0/24,fd00::/64}",
                                "--set", "vault.networkPolicy.namespaces={apps}",
                                "--set", "vault.networkPolicy.namespaceSelector=null"])
    eg = find(cidr, "NetworkPolicy", "tsi-issuer")["spec"]["egress"]
    check(len(eg) == 1 and [t["ipBlock"]["cidr"] for t in eg[0]["to"]] == ["10.0.0.0/24", "fd00::/64"] and
          eg[0]["ports"] == [{"port": 10250, "protocol": "TCP"}], "kubeletCIDRs: only those, kubelet port")
    froms = find(cidr, "NetworkPolicy", "tsi-vault")["spec"]["ingress"][0]["from"]
    check(len(froms) == 1 and froms[0]["namespaceSelector"]["matchExpressions"][0]["values"] == [NS, "apps"],
          "vault.networkPolicy.namespaces, label selector off")
    for bad in ("0.0.0.0/0", "::/0"):
        r = run([HELM, "template", "tsi", CHART, "--set", "networkPolicy.kubeletCIDRs={%s}" % bad])
        check(r.returncode != 0, "values schema refuses kubeletCIDRs " + bad)


def main():
    tmp = tempfile.mkdtemp(prefix="tsi-chart-")
    try:
        # a cluster CA, as `tsi ca init` would make it (only the certificate is used)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", os.path.join(tmp, "ca.key"),
                        "-out", os.path.join(tmp, "ca.pem"), "-days", "2", "-subj", "/CN=tsi test CA"],
                       check=True, capture_output=True)
        policies = {}
        pdir = os.path.join(SRC, "policies")
        for n in sorted(os.listdir(pdir)):
            if n.endswith(".conf"):
                policies[n] = open(os.path.join(pdir, n)).read()
        values = {"ca": {"certificate": open(os.path.join(tmp, "ca.pem")).read()},
                  "vault": {"policies": policies},
                  "issuer": {"sidecarImageDigests": ["sha256:" + "ab" * 32]},
                  "injector": {"vaultCANamespaces": ["hipaa", "eu-apps"]}}
        vfile = os.path.join(tmp, "values-full.yaml")
        with open(vfile, "w") as f:
            yaml.safe_dump(values, f)

        for args, name in (([], "default"), (["-f", vfile], "full")):
            r = run([HELM, "lint", "--strict", CHART, "--namespace", NS] + args)
            check(r.returncode == 0, "helm lint --strict (%s): %s%s" % (name, r.stdout[-1500:], r.stderr))

        default = render(tmp, "default", [])
        full = render(tmp, "full", ["-f", vfile])
        alt = render(tmp, "alt", ["-f", vfile, "--set", "injector.certManager.enabled=true",
                                  "--set", "issuer.tpm.resourceName=squat.ai/tpmrm0",
                                  "--set", "issuer.rbac.kubeletProxyFallback=true",
                                  "--set", "networkPolicy.enabled=false"])
        # values.schema.json: a typo or a value out of range fails before rendering
        for bad, why in ((["--set", "injector.failurPolicy=Fail"], "additional properties"),
                         (["--set", "injector.failurePolicy=Sometimes"], "one of"),
                         (["--set", "issuer.tokenTTL=7200"], "maximum"),
                         (["--set", "issuer.socketMode=rw"], "pattern"),
                         (["--set", "issuer.sidecarImageDigests={latest}"], "pattern"),
                         (["--set", "issuer.frontUser=root"], "frontUser"),
                         (["--set", "issuer.frontUser=0:0"], "frontUser"),
                         (["--set", "issuer.frontUser=1000:0"], "frontUser"),
                         (["--set", "issuer.privsep=maybe"], "privsep")):
            r = run([HELM, "template", "tsi", CHART] + bad)
            check(r.returncode != 0 and why in r.stderr, "values schema refuses %s: %s" % (bad, r.stderr[-300:]))
        r = run([HELM, "template", "tsi", CHART, "--set", "vault.policies.roles=x"])
        check(r.returncode != 0 and "must end in .conf" in r.stderr, "a policy file not ending in .conf is refused")

        kinds = sorted(d["kind"] for d in full)
        for k in ("DaemonSet", "StatefulSet", "Deployment", "MutatingWebhookConfiguration",
                  "ClusterRole", "ClusterRoleBinding", "NetworkPolicy", "Service", "Secret", "ConfigMap"):
            check(k in kinds, "full render has a " + k)
        check(find(alt, "Certificate") is not None and find(alt, "Issuer") is not None,
              "cert-manager option renders Issuer and Certificate")
        hook_alt = find(alt, "MutatingWebhookConfiguration")
        check("caBundle" not in hook_alt["webhooks"][0]["clientConfig"] and
              hook_alt["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == NS + "/tsi-injector",
              "cert-manager injects the caBundle")
        check(find(alt, "NetworkPolicy") is None, "networkPolicy.enabled=false renders none")
        cas = [d for d in full if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "tsi-vault-ca"]
        check(sorted(d["metadata"]["namespace"] for d in cas) == ["eu-apps", "hipaa", NS],
              "vault CA ConfigMap in each listed namespace")

        for name, docs in (("default", default), ("full", full), ("alt", alt)):
            check_strict(docs, name)
            for kind in ("StatefulSet", "Deployment"):
                w = find(docs, kind)
                check_restricted(w["spec"]["template"]["spec"], "%s %s" % (name, kind))
            hook = find(docs, "MutatingWebhookConfiguration")["webhooks"][0]
            expr = hook["namespaceSelector"]["matchExpressions"][0]
            check(expr["operator"] == "NotIn" and NS in expr["values"] and "kube-system" in expr["values"],
                  name + ": the webhook never sees its own namespace")
            check(hook["failurePolicy"] == "Fail" and hook["sideEffects"] == "None" and
                  hook["admissionReviewVersions"] == ["v1"], name + ": webhook fails closed")
            for kind in ("Deployment", "StatefulSet"):
                check(find(docs, kind)["spec"]["template"]["spec"].get("automountServiceAccountToken") is False,
                      name + " " + kind + ": no API token")

        check_network(default, full, tmp)

        rules = check_issuer(full, "full", False)
        check(rules == [(("nodes/pods",), ("get",))], "issuer RBAC is nodes/pods get only: %s" % rules)
        single = render(tmp, "single", ["-f", vfile, "--set", "issuer.tpm.resourceName=squat.ai/tpmrm0",
                                        "--set", "issuer.privsep=false"])
        check_issuer(single, "single-process", True, privsep=False)
        rules = check_issuer(alt, "alt", True)
        check(rules == [(("nodes/pods",), ("get",)), (("nodes/proxy",), ("get",))],
              "nodes/proxy only with the fallback: %s" % rules)
        cm = find(full, "ConfigMap", "tsi-issuer")["data"]
        check('sidecar_images = [ "sha256:' in cm["issuer.conf.in"], "sidecar digests in issuer config")
        check(find(default, "ConfigMap", "tsi-cluster-ca") is None and
              "trust_ca" not in find(default, "ConfigMap", "tsi-vault")["data"]["vault.conf"],
              "no trust_ca without ca.certificate")

        run_vault(tmp, full)
        injected = run_injector(tmp, full)
        extra = []
        if injected is not None:
            pod = {"apiVersion": "v1", "kind": "Pod", **injected}
            # The one documented exception of injected pods: the issuer's socket
            # directory, read-only, in the sidecar containers only.
            check_restricted(pod["spec"], "injected pod", only="tsi-sidecar",
                             allow_volumes=("tsi-issuer",))
            vol = [v for v in pod["spec"]["volumes"] if v["name"] == "tsi-issuer"][0]
            check(vol["hostPath"] == {"path": "/run/tsi", "type": "Directory"}, "socket dir volume")
            for c in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
                m = [x for x in c.get("volumeMounts", []) if x["name"] == "tsi-issuer"]
                check(m == [] if not c["name"].startswith("tsi-sidecar") else
                      (len(m) == 1 and m[0].get("readOnly") is True),
                      "injected pod: %s and the socket directory" % c["name"])
            check_strict([pod], "injected")
            with open(os.path.join(tmp, "injected-pod.yaml"), "w") as f:
                yaml.safe_dump(pod, f)
            extra = [os.path.join(tmp, "injected-pod.yaml")]

        if injected is not None:
            check_pod_guard(tmp, full, pod)

        files = [os.path.join(tmp, n + ".yaml") for n in ("default", "full", "alt")] + extra
        r = run(["node", os.path.join(HERE, "validate.mjs"), MODULES] + files)
        check(r.returncode == 0, "Kubernetes schema validation:\n" + r.stdout[-3000:] + r.stderr)
        m = re.search(r"(\d+) passed, (\d+) failed", r.stdout)
        check(m is not None and int(m.group(1)) >= 60, "schema validation covered the objects: " +
              (m.group(0) if m else "none"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
