#!/usr/bin/python3
"""A Vault client library not written here (Debian's python3-hvac) logs in to
tsi-vault and reads a secret, unchanged. Run under hvac_env, which provides
the server, the CA and the JWTs."""
import os
import sys

import hvac
import hvac.exceptions

addr = os.environ["VAULT_ADDR"]
ca = os.environ["VAULT_CACERT"]


def fail(msg):
    print("hvac_client: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


client = hvac.Client(url=addr, verify=ca)
login = client.auth.jwt.jwt_login(role=os.environ["TSI_ROLE"],
                                  jwt=os.environ["TSI_JWT"],
                                  path="trusted-identity")
auth = login["auth"]
if not auth["client_token"].startswith("hvs."):
    fail("unexpected token shape")
if client.token != auth["client_token"]:
    fail("hvac did not adopt the token")
if "medical-records" not in auth["policies"]:
    fail("policies: %r" % auth["policies"])
if auth["metadata"].get("datacenter") != "dal05":
    fail("metadata: %r" % auth["metadata"])
if not client.is_authenticated():
    fail("lookup-self refused the token")

secret = client.secrets.kv.v2.read_secret_version(path="medical/record1",
                                                  mount_point="secret")
if secret["data"]["data"].get("patient") != "HVAC-MEDSECRET":
    fail("secret: %r" % secret["data"])
if secret["data"]["metadata"]["version"] != 1:
    fail("metadata: %r" % secret["data"]["metadata"])

# A missing path the token may read: hvac's InvalidPath (404).
try:
    client.secrets.kv.v2.read_secret_version(path="medical/none",
                                             mount_point="secret")
    fail("missing path was readable")
except hvac.exceptions.InvalidPath:
    pass

# The same image in another datacenter: logs in, but the read is Forbidden.
other = hvac.Client(url=addr, verify=ca)
other.auth.jwt.jwt_login(role=os.environ["TSI_ROLE"],
                         jwt=os.environ["TSI_JWT_ELSEWHERE"],
                         path="trusted-identity")
try:
    other.secrets.kv.v2.read_secret_version(path="medical/record1",
                                            mount_point="secret")
    fail("secret released in the wrong datacenter")
except hvac.exceptions.Forbidden:
    pass

# A garbage JWT: the login itself is Forbidden.
try:
    hvac.Client(url=addr, verify=ca).auth.jwt.jwt_login(
        role="demo", jwt="e30.e30.sig", path="trusted-identity")
    fail("garbage JWT accepted")
except hvac.exceptions.Forbidden:
    pass

# The root token writes and lists through hvac as well.
root = hvac.Client(url=addr, token=os.environ["VAULT_ROOT_TOKEN"], verify=ca)
root.secrets.kv.v2.create_or_update_secret(path="medical/record2",
                                           secret={"patient": "two"},
                                           mount_point="secret")
keys = root.secrets.kv.v2.list_secrets(path="medical",
                                       mount_point="secret")["data"]["keys"]
if keys != ["record1", "record2"]:
    fail("list: %r" % keys)

# The token's own endpoints as hvac calls them: the renewal is refused
# (InvalidRequest, Vault's 400 for a non-renewable token), the revocation is
# honoured (then lookup-self and reads are Forbidden).
try:
    client.auth.token.renew_self()
    fail("a non-renewable token was renewed")
except hvac.exceptions.InvalidRequest as e:
    if "lease is not renewable" not in str(e):
        fail("renew-self error: %s" % e)
if not client.is_authenticated():
    fail("the refused renewal broke the token")
client.auth.token.revoke_self()
if client.is_authenticated():
    fail("revoked token still accepted by lookup-self")
try:
    client.secrets.kv.v2.read_secret_version(path="medical/record1",
                                             mount_point="secret")
    fail("secret released to a revoked token")
except hvac.exceptions.Forbidden:
    pass
# What clients probe before anything else, through hvac's own calls.
seal = client.sys.read_seal_status()
if seal["sealed"] is not False or seal["initialized"] is not True:
    fail("seal-status: %r" % seal)
if client.sys.is_sealed() is not False:
    fail("is_sealed")
if client.sys.is_initialized() is not True:
    fail("is_initialized")
if root.sys.read_leader_status()["ha_enabled"] is not False:
    fail("leader")
health = client.sys.read_health_status(method="GET", active_code=299,
                                       standby_ok=True)
if health.status_code != 299 or health.json()["sealed"] is not False:
    fail("health with activecode: %s" % health.status_code)
# (hvac's HEAD sends no query parameters.)
health = client.sys.read_health_status(method="HEAD")
if health.status_code != 200:
    fail("HEAD health: %s" % health.status_code)
# hvac has no probing of its own: a client asks sys/mounts for the KV
# version of secret/ (hvac's retrieve_mount_option), sets it as hvac's
# default and reads through that version.
version = root.sys.retrieve_mount_option("secret", "version")
if version != "2":
    fail("secret/ is not reported as KV version 2: %r" % version)
if "secret/" not in root.sys.list_mounted_secrets_engines()["data"]:
    fail("sys/mounts lacks secret/")
root.secrets.kv.default_kv_version = version
probed = root.secrets.kv.read_secret_version(path="medical/record2",
                                             mount_point="secret")
if probed["data"]["data"] != {"patient": "two"}:
    fail("read after probing: %r" % probed)

# KV v2 completeness through hvac's secrets.kv.v2 calls.
kv = root.secrets.kv.v2
for i in range(3):
    kv.create_or_update_secret(path="medical/h", secret={"n": str(i + 1)},
                               mount_point="secret")
kv.update_metadata(path="medical/h", max_versions=5, cas_required=False,
                   delete_version_after="2h", mount_point="secret")
meta = kv.read_secret_metadata(path="medical/h", mount_point="secret")["data"]
if (meta["max_versions"] != 5 or meta["delete_version_after"] != "2h0m0s" or
        meta["current_version"] != 3):
    fail("update_metadata: %r" % meta)
kv.delete_secret_versions(path="medical/h", versions=[1, 2],
                          mount_point="secret")
try:
    kv.read_secret_version(path="medical/h", version=1, mount_point="secret")
    fail("a deleted version was readable")
except hvac.exceptions.InvalidPath:
    pass
kv.undelete_secret_versions(path="medical/h", versions=[1],
                            mount_point="secret")
if kv.read_secret_version(path="medical/h", version=1,
                          mount_point="secret")["data"]["data"] != {"n": "1"}:
    fail("undelete")
kv.destroy_secret_versions(path="medical/h", versions=[1],
                           mount_point="secret")
kv.undelete_secret_versions(path="medical/h", versions=[1],
                            mount_point="secret")
meta = kv.read_secret_metadata(path="medical/h", mount_point="secret")["data"]
if meta["versions"]["1"]["destroyed"] is not True:
    fail("destroy: %r" % meta["versions"]["1"])
# hvac's patch reads, merges and writes with cas = the version it read.
kv.patch(path="medical/h", secret={"extra": "x"}, mount_point="secret")
got = kv.read_secret_version(path="medical/h", mount_point="secret")["data"]
if got["data"] != {"n": "3", "extra": "x"} or got["metadata"]["version"] != 4:
    fail("patch: %r" % got)
kv.delete_metadata_and_all_versions(path="medical/h", mount_point="secret")
try:
    kv.read_secret_metadata(path="medical/h", mount_point="secret")
    fail("metadata left after delete_metadata_and_all_versions")
except hvac.exceptions.InvalidPath:
    pass
# The server's own merge patch, as a raw PATCH through hvac's adapter.
kv.create_or_update_secret(path="medical/m", secret={"a": "1", "b": "2"},
                           mount_point="secret")
root.adapter.request("PATCH", "/v1/secret/data/medical/m",
                     json={"data": {"b": None, "c": "3"}},
                     headers={"Content-Type":
                              "application/merge-patch+json"})
got = kv.read_secret_version(path="medical/m", mount_point="secret")["data"]
if got["data"] != {"a": "1", "c": "3"}:
    fail("merge patch: %r" % got)
# custom_metadata (this hvac's update_metadata has no parameter for it:
# through its adapter) shows in data reads and metadata reads.
root.adapter.post("/v1/secret/metadata/medical/m",
                  json={"custom_metadata": {"owner": "team-a"}})
got = kv.read_secret_version(path="medical/m", mount_point="secret")["data"]
if got["metadata"]["custom_metadata"] != {"owner": "team-a"}:
    fail("custom_metadata in a data read: %r" % got["metadata"])
meta = kv.read_secret_metadata(path="medical/m", mount_point="secret")["data"]
if meta["custom_metadata"] != {"owner": "team-a"}:
    fail("custom_metadata in a metadata read: %r" % meta)
# The mount's settings through hvac's configure / read_configuration.
kv.configure(max_versions=7, cas_required=False, delete_version_after="3h",
             mount_point="secret")
conf = kv.read_configuration(mount_point="secret")["data"]
if (conf["max_versions"] != 7 or conf["cas_required"] is not False or
        conf["delete_version_after"] != "3h0m0s"):
    fail("configure: %r" % conf)
# delete_version_after schedules the deletion a read shows.
kv.create_or_update_secret(path="medical/t", secret={"a": "1"},
                           mount_point="secret")
got = kv.read_secret_version(path="medical/t", mount_point="secret")["data"]
if not got["metadata"]["deletion_time"]:
    fail("delete_version_after not shown: %r" % got["metadata"])
kv.configure(max_versions=10, delete_version_after="0s", mount_point="secret")
print("hvac_client: ok (hvac login, read, 404, 403, write, list, "
      "renew-self refused, revoke-self, seal-status, init, leader, "
      "health codes, mount probing, update_metadata, delete/undelete/"
      "destroy_secret_versions, patch, delete_metadata_and_all_versions, "
      "custom_metadata, configure, read_configuration)")
