#!/usr/bin/python3
"""Regenerates the derived AdmissionReview data files from
pod-annotated-create.json with the built tsi-injector (run from the source
tree after a build: tests/data/admission/regen.py build/bin/tsi-injector).
The UPDATE cases need an injected pod as oldObject; it is made here by
applying the injector's own patch with python3-jsonpatch."""
import base64, copy, json, os, subprocess, sys, tempfile
import jsonpatch

here = os.path.dirname(os.path.abspath(__file__))
prog = sys.argv[1]
conf = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)
conf.write('tls_cert = "/dev/null";\ntls_key = "/dev/null";\n'
           'sidecar_image = "registry.example/tsi-sidecar:0.1.0";\n'
           'vault_addr = "https://tsi-vault.tsi-system.svc:8200";\n')
conf.close()


def save(doc, name):
    with open(os.path.join(here, name), "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


src = json.load(open(os.path.join(here, "pod-annotated-create.json")))
out = subprocess.run([prog, "--config", conf.name, "review"], input=json.dumps(src).encode(),
                     capture_output=True, check=True).stdout
os.unlink(conf.name)
patch = json.loads(base64.b64decode(json.loads(out)["response"]["patch"]))
pod = jsonpatch.apply_patch(src["request"]["object"], patch)
pod["metadata"].update(uid="3c1f9a2e-7b4d-4e8f-a1b2-c3d4e5f6a7b8", resourceVersion="48213",
                       creationTimestamp="2026-11-22T10:00:00Z")
pod["spec"]["nodeName"] = "node-a"


def update(uid, new, name):
    r = copy.deepcopy(src)
    q = r["request"]
    q.update(uid=uid, operation="UPDATE", object=new, oldObject=pod,
             options={"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"},
             userInfo={"username": "mallory", "groups": ["system:authenticated"]})
    save(r, name)


n = copy.deepcopy(pod)
n["metadata"]["annotations"]["tsi.secrets"] = \
    '[{"name":"all","path":"secret/data/medical/everything","dest":"/tsi-secrets/all"}]'
update("e5a1c0de-0001-4c3b-9a11-000000000001", n, "pod-update-annotation-changed.json")
n = copy.deepcopy(pod)
n["spec"]["initContainers"][0]["image"] = "registry.example/evil-sidecar:latest"
update("e5a1c0de-0002-4c3b-9a11-000000000002", n, "pod-update-sidecar-image-changed.json")
n = copy.deepcopy(pod)
n["metadata"]["labels"]["release"] = "2026-11"
update("e5a1c0de-0003-4c3b-9a11-000000000003", n, "pod-update-label-allowed.json")

r = copy.deepcopy(src)
q = r["request"]
q.update(uid="a7c3e9f1-0004-4d2e-8b5a-000000000004", name="medical-refresh")
o = q["object"]
o["metadata"]["name"] = "medical-refresh"
o["metadata"]["annotations"]["tsi.refresh"] = "true"
del o["spec"]["volumes"]
del o["spec"]["containers"][0]["volumeMounts"]
o["spec"]["initContainers"] = [{"name": "migrate", "image": "registry.example/migrate:3",
                                "command": ["/migrate"]}]
save(r, "pod-refresh-create.json")

r = copy.deepcopy(src)
r["request"]["uid"] = "a7c3e9f1-0005-4d2e-8b5a-000000000005"
r["request"]["object"]["metadata"]["annotations"]["tsi.secrets"] = \
    '[{"name":"x","path":"secret/data/../../sys/raw","dest":"/tsi-secrets/x"}]'
save(r, "pod-bad-secrets-create.json")
