/*
 * make_v1_log.c - how tests/data/audit/v1/data.mdb was made (kept as a
 * record, not built): compiled against the audit writer as it was before
 * the record format was versioned (format 1, the json_dumps-defined form,
 * the tree at commit dfd90f0) and run once:
 *
 *   cc -I include -I . make_v1_log.c build/lib/libtsi.a -llmdb -ljansson \
 *      -lcrypto -lssl -lconfig -lpthread -o make_v1_log && ./make_v1_log DIR
 *
 * The records hold what format 1 wrote differently from format 2: control
 * characters (jansson escapes them as \u001F, upper case), keys that sort
 * differently by UTF-8 bytes and by UTF-16 code units (U+FB01 and U+1F600),
 * DEL and U+2028 unescaped, reals, integers beyond 2^53, nested claims with
 * index values, and claims serialised once (tsi_audit_claims_new).
 */
#include <stdio.h>
#include <stdint.h>
#include <jansson.h>

#include "tsi/audit.h"
#include "tsi/err.h"

static void
done(void *arg, int rc, uint64_t seq)
{
	(void)seq;
	if (rc != TSI_OK)
		*(int *)arg = 1;
}

static json_t *
rec(int i)
{
	json_t *claims = json_pack("{s:s,s:s,s:s,s:[s,s],s:s}", "datacenter",
	    i % 2 ? "dal05" : "fra02", "cluster-name", "c1", "namespace",
	    "medical", "images", "sha256:aa", "sha256:bb", "sub",
	    "spiffe://tsi.example/ns/medical/sa/web");

	return json_pack("{s:s,s:s,s:i,s:s,s:s,s:s,s:o,s:s,s:s,s:s,s:i}", "op",
	    "read", "path", i % 3 ? "secret/data/a" : "secret/data/b/c",
	    "version", i, "decision", i % 4 ? "allow" : "deny", "rule",
	    "medical-records", "reason", "matched", "claims", claims,
	    "accessor", "acc-1234", "remote", "127.0.0.1", "request_id",
	    "req-1", "status", i % 4 ? 200 : 403);
}

int
main(int argc, char **argv)
{
	struct tsi_audit_opts o = { .map_size = (size_t)1 << 20 };
	struct tsi_audit *a = NULL;
	struct tsi_audit_claims *cl = NULL;
	json_t *r, *c;
	uint64_t seq;
	int i, rc = 1, late = 0;

	if (argc != 2 || tsi_audit_open(argv[1], &o, &a) != TSI_OK)
		return 1;
	for (i = 1; i <= 12; i++) {
		r = rec(i);
		c = json_object_get(r, "claims");
		switch (i) {
		case 2:
			json_object_set_new(r, "reason",
			    json_string("ctl \x01\x1f tab\t nl\n del\x7f "
			                "ls\xe2\x80\xa8 q\" bs\\ /"));
			break;
		case 3:
			/* U+FB01 sorts after U+1F600 by UTF-16, before by bytes */
			json_object_set_new(c, "\xef\xac\x81",
			    json_string("fi"));
			json_object_set_new(c, "\xf0\x9f\x98\x80",
			    json_string("smile"));
			json_object_set_new(c, "\xc3\xa9",
			    json_string("e-acute"));
			break;
		case 4:
			json_object_set_new(c, "ratio", json_real(0.1));
			json_object_set_new(c, "big", json_real(1e300));
			json_object_set_new(c, "whole", json_real(3.0));
			break;
		case 5:
			json_object_set_new(c, "wide", json_integer(INT64_MAX));
			json_object_set_new(c, "neg", json_integer(INT64_MIN));
			break;
		case 6:
			json_object_set_new(c, "nest",
			    json_pack("{s:[i,{s:s,s:n,s:b}],s:{}}", "b", 1, "y",
			        "\x1f", "x", "t", 1, "a"));
			break;
		default: break;
		}
		if (i == 7 || i == 8) {
			if (cl == NULL &&
			    tsi_audit_claims_new(c, &cl) != TSI_OK)
				goto out;
			json_object_del(r, "claims");
			if (tsi_audit_submit_claims(a, r, cl, done, &late) !=
			    TSI_OK)
				goto out;
		} else if (tsi_audit_append(a, r, &seq) != TSI_OK) {
			goto out;
		}
		json_decref(r);
	}
	rc = 0;
out:
	tsi_audit_claims_unref(cl);
	tsi_audit_close(a); /* drains the queue: the callbacks have run */
	return rc || late;
}
