#!/usr/bin/python3
"""Node enrollment with the chart's own issuer scripts: the issuer ConfigMap
that helm renders (issuer.conf.in and prepare.sh) is run against an swtpm with
the real tsi-issuer and tsi. A node without a certificate gets its CSR printed
and waits; once `tsi ca sign` has signed it and the certificate is in the
node-certs Secret's directory, prepare installs it, tsi-issuer runs with the
rendered configuration, and the DaemonSet's own probe command passes.

Environment: HELM, TSI_SOURCE_DIR, TSI_BIN_DIR.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import yaml

SRC = os.environ.get("TSI_SOURCE_DIR", os.getcwd())
BIN = os.environ.get("TSI_BIN_DIR", os.path.join(SRC, "build", "bin"))
HELM = os.environ["HELM"]
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)
    return cond


def free_port_pair():
    for _ in range(50):
        s1, s2 = socket.socket(), socket.socket()
        try:
            s1.bind(("127.0.0.1", 0))
            p = s1.getsockname()[1]
            s2.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
        finally:
            s1.close()
            s2.close()
    raise RuntimeError("no free port pair")


def wait_port(port):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def main():
    tmp = tempfile.mkdtemp(prefix="tsi-enroll-")
    swtpm = issuer = None
    try:
        r = subprocess.run([HELM, "template", "tsi", os.path.join(SRC, "charts", "tsi"),
                            "-n", "tsi-system", "--set", "issuer.kubelet.port=10250"],
                           capture_output=True, text=True)
        if not check(r.returncode == 0, "helm template: " + r.stderr):
            return 1
        docs = [d for d in yaml.safe_load_all(r.stdout) if d]
        cm = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "tsi-issuer"][0]
        ds = [d for d in docs if d["kind"] == "DaemonSet"][0]
        probe = ds["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["exec"]["command"]

        # The pod's filesystem, under tmp: the same paths, prefixed.
        root = os.path.join(tmp, "pod")
        paths = {"/etc/tsi/": root + "/etc/tsi/", "/run/tsi-config": root + "/run/tsi-config",
                 "/var/lib/tsi-issuer": root + "/var/lib/tsi-issuer", "/run/tsi/": root + "/run/tsi/",
                 "/var/run/secrets/tsi/kubelet/": root + "/kubelet/"}
        for p in ("etc/tsi/node-certs", "run/tsi-config", "var/lib/tsi-issuer", "run/tsi", "kubelet"):
            os.makedirs(os.path.join(root, p))

        def localise(text):
            for a, b in paths.items():
                text = text.replace(a, b)
            return text

        port = free_port_pair()
        tpmdir = os.path.join(tmp, "tpm")
        os.makedirs(tpmdir)
        swtpm = subprocess.Popen(["swtpm", "socket", "--tpm2", "--server",
                                  "type=tcp,port=%d,bindaddr=127.0.0.1" % port, "--ctrl",
                                  "type=tcp,port=%d,bindaddr=127.0.0.1" % (port + 1),
                                  "--tpmstate", "dir=" + tpmdir, "--flags", "not-need-init,startup-clear"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        check(wait_port(port), "swtpm listens")
        conf_in = localise(cm["data"]["issuer.conf.in"]).replace(
            '"device:/dev/tpmrm0"', '"swtpm:host=127.0.0.1,port=%d"' % port)
        with open(root + "/etc/tsi/issuer.conf.in", "w") as f:
            f.write(conf_in)
        with open(root + "/etc/tsi/prepare.sh", "w") as f:
            f.write(localise(cm["data"]["prepare.sh"]))
        # the kubelet credentials the projected volume would hold
        with open(root + "/kubelet/token", "w") as f:
            f.write("test-token\n")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", os.path.join(tmp, "kubelet.key"), "-out", root + "/kubelet/ca.crt",
                        "-days", "2", "-subj", "/CN=kubelet"], check=True, capture_output=True)

        env = dict(os.environ, NODE_NAME="node-a", KUBELET_HOST="10.0.0.5",
                   PATH=BIN + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"))
        prep = ["/bin/sh", root + "/etc/tsi/prepare.sh"]

        # 1. not enrolled: the CSR is printed and the init container fails
        r = subprocess.run(prep, env=env, capture_output=True, text=True)
        check(r.returncode == 1, "prepare fails while the node is not enrolled (rc %d): %s" % (r.returncode, r.stderr[-500:]))
        check("node node-a is not enrolled" in r.stderr and "tsi ca sign" in r.stderr, "prepare says what to do")
        csr = r.stdout[r.stdout.find("-----BEGIN CERTIFICATE REQUEST-----"):]
        check(csr.startswith("-----BEGIN CERTIFICATE REQUEST-----") and
              "-----END CERTIFICATE REQUEST-----" in csr, "prepare prints the node's CSR")
        conf = open(root + "/run/tsi-config/issuer.conf").read()
        check('node_name    = "node-a";' in conf and '"https://10.0.0.5:10250"' in conf and "@" not in conf,
              "the node's configuration is rendered")

        # 2. the operator signs it with the cluster CA and stores it in the Secret
        with open(os.path.join(tmp, "node-a.csr"), "w") as f:
            f.write(csr)
        tsi = os.path.join(BIN, "tsi")
        r = subprocess.run([tsi, "ca", "init", "--out", os.path.join(tmp, "ca")], capture_output=True, text=True)
        check(r.returncode == 0, "tsi ca init: " + r.stderr)
        r = subprocess.run([tsi, "ca", "sign", "--ca", os.path.join(tmp, "ca"), "--cluster-name", "hipaaCluster",
                            "--region", "eu-de", "--datacenter", "dal05", "--node", "node-a",
                            os.path.join(tmp, "node-a.csr")], capture_output=True, text=True)
        check(r.returncode == 0 and "BEGIN CERTIFICATE" in r.stdout, "tsi ca sign: " + r.stderr)
        with open(root + "/etc/tsi/node-certs/node-a.pem", "w") as f:
            f.write(r.stdout)

        # 3. the next try installs it; a restart (TPM key persisted) does too
        for attempt in ("first", "again"):
            r = subprocess.run(prep, env=env, capture_output=True, text=True)
            check(r.returncode == 0, "prepare succeeds once enrolled (%s): %s" % (attempt, r.stderr[-500:]))
        check(open(root + "/var/lib/tsi-issuer/node.pem").read() == open(root + "/etc/tsi/node-certs/node-a.pem").read(),
              "node certificate installed into the state directory")

        # 4. the issuer runs with the rendered configuration; the DaemonSet's probe passes
        log = open(os.path.join(tmp, "issuer.log"), "w")
        issuer = subprocess.Popen([os.path.join(BIN, "tsi-issuer"), "run", "--config",
                                   root + "/run/tsi-config/issuer.conf"], stderr=log, env=env)
        cmd = [localise(a) for a in probe]
        ok = False
        for _ in range(100):
            if issuer.poll() is not None:
                break
            if subprocess.run(cmd, capture_output=True).returncode == 0:
                ok = True
                break
            time.sleep(0.1)
        if not check(ok, "the DaemonSet's probe command passes against the running issuer"):
            log.flush()
            print(open(os.path.join(tmp, "issuer.log")).read()[-2000:])
        r = subprocess.run(cmd[:cmd.index("-o")] + cmd[cmd.index("-o") + 2:], capture_output=True, text=True)
        check('"tpm":"ok"' in r.stdout.replace(" ", "") and "dal05" in r.stdout,
              "health names the TPM and the enrolled location: " + r.stdout)
        issuer.terminate()
        check(issuer.wait(timeout=10) == 0, "tsi-issuer stops cleanly")
        issuer = None
        log.close()

    finally:
        for p in (issuer, swtpm):
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
