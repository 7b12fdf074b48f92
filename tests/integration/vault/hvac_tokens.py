#!/usr/bin/python3
"""hvac's token administration calls against tsi-vault over TLS, unchanged:
auth.token.create (named admin and role tokens), lookup, lookup_accessor,
lookup_self, revoke_accessor; and a response-wrapping request refused. Run
under hvac_env, which provides the server, the CA and the JWTs."""
import os
import sys

import hvac
import hvac.exceptions

addr = os.environ["VAULT_ADDR"]
ca = os.environ["VAULT_CACERT"]


def fail(msg):
    print("hvac_tokens: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


root = hvac.Client(url=addr, token=os.environ["VAULT_ROOT_TOKEN"], verify=ca)

# A named admin token, so that the shared root token can stay in the safe.
created = root.auth.token.create(display_name="alice", policies=["root"],
                                 ttl="1h")
auth = created["auth"]
for k in ("client_token", "accessor", "policies", "token_policies",
          "metadata", "lease_duration", "renewable"):
    if k not in auth:
        fail("create: no %s in %r" % (k, auth))
if auth["policies"] != ["root"] or auth["token_policies"] != ["root"]:
    fail("create policies: %r" % auth)
if auth["lease_duration"] != 3600 or auth["renewable"] is not False:
    fail("create lease: %r" % auth)
alice = hvac.Client(url=addr, token=auth["client_token"], verify=ca)
alice_acc = auth["accessor"]

secret = alice.secrets.kv.v2.read_secret_version(path="medical/record1",
                                                 mount_point="secret")
if secret["data"]["data"].get("patient") != "HVAC-MEDSECRET":
    fail("alice's read: %r" % secret["data"])

me = alice.auth.token.lookup_self()["data"]
if me["display_name"] != "token-alice" or me["accessor"] != alice_acc:
    fail("lookup_self: %r" % me)
looked = root.auth.token.lookup(auth["client_token"])["data"]
if looked["display_name"] != "token-alice" or looked["policies"] != ["root"]:
    fail("lookup: %r" % looked)
if looked["id"] != auth["client_token"] or not 3500 < looked["ttl"] <= 3600:
    fail("lookup id/ttl: %r" % looked)
by_acc = root.auth.token.lookup_accessor(alice_acc)["data"]
if by_acc["display_name"] != "token-alice" or by_acc["id"] != "":
    fail("lookup_accessor: %r" % by_acc)

# A workload logs in; the named admin looks its token up and revokes it.
wl = hvac.Client(url=addr, verify=ca)
wl_auth = wl.auth.jwt.jwt_login(role=os.environ["TSI_ROLE"],
                                jwt=os.environ["TSI_JWT"],
                                path="trusted-identity")["auth"]
info = alice.auth.token.lookup_accessor(wl_auth["accessor"])["data"]
if info["role"] != "demo" or info["path"] != "auth/trusted-identity/login":
    fail("workload lookup: %r" % info)
wl.secrets.kv.v2.read_secret_version(path="medical/record1",
                                     mount_point="secret")
alice.auth.token.revoke_accessor(wl_auth["accessor"])
try:
    wl.secrets.kv.v2.read_secret_version(path="medical/record1",
                                         mount_point="secret")
    fail("secret released to a token revoked by accessor")
except hvac.exceptions.Forbidden:
    pass
try:
    alice.auth.token.revoke_accessor(wl_auth["accessor"])
    fail("a second revoke of the same accessor succeeded")
except hvac.exceptions.InvalidRequest as e:
    if "invalid accessor" not in str(e):
        fail("second revoke: %s" % e)

# A token with a role as its policy: what the role's rules allow, with no
# claims (the demo role's rule binds images, so nothing here).
demo = root.auth.token.create(display_name="demo-reader", policies=["demo"],
                              ttl=600)["auth"]
if demo["policies"] != ["demo"] or demo["lease_duration"] != 600:
    fail("role token: %r" % demo)
try:
    hvac.Client(url=addr, token=demo["client_token"], verify=ca).secrets.kv.\
        v2.read_secret_version(path="medical/record1", mount_point="secret")
    fail("a token without claims satisfied the role's bound images")
except hvac.exceptions.Forbidden:
    pass

# Names that are no role, and options tsi-vault does not offer, are refused.
try:
    root.auth.token.create(policies=["no-such-role"])
    fail("unknown policy accepted")
except hvac.exceptions.InvalidRequest:
    pass
try:
    root.auth.token.create(policies=["root"], wrap_ttl="60s")
    fail("response wrapping accepted")
except hvac.exceptions.InvalidRequest as e:
    if "response wrapping is not supported" not in str(e):
        fail("wrap error: %s" % e)

# The admin token ends when root revokes its accessor.
root.auth.token.revoke_accessor(alice_acc)
if alice.is_authenticated():
    fail("revoked admin token still accepted")
print("hvac_tokens: ok (create, lookup, lookup_accessor, lookup_self, "
      "revoke_accessor, wrapping refused)")
