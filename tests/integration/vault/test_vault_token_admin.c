/*
 * Client tokens and the trust they came through, and the administrator's
 * token endpoints, over real HTTPS against a running tsi-vault:
 *   - a node certificate written to revocation_file + SIGHUP ends the live
 *     tokens that came through it at once (on a kept-alive connection too),
 *     and leaves other nodes' tokens alone;
 *   - a CA taken out of the trust_ca file + SIGHUP ends the tokens of its
 *     nodes; logins running while the reload lands leave no live token;
 *   - a client token never outlives its JWT (not even one accepted within
 *     the clock skew after its exp);
 *   - auth/token/create (display_name, policies as roles, ttl), lookup,
 *     lookup-accessor, lookup-self, revoke-accessor in Vault's shapes and
 *     status codes, root only, audited with the token's name;
 *   - X-Vault-Wrap-TTL and a non-root X-Vault-Namespace get 400.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <pthread.h>

#include "fixture.h"
#include "tsi/err.h"
#include "tsi/x509.h"

struct st {
	struct vfx f;
	struct vfx_node a, b;
	char img[72];
};

static const char policy_fmt[] =
    "roles = ( { name = \"demo\"; rules = [ \"medical\" ]; token_ttl = 300; "
    "},\n"
    "          { name = \"kv-reader\"; rules = [ \"medical-any\" ]; } );\n"
    "rules = ( { name = \"medical\"; paths = [ \"secret/data/medical/*\" ];\n"
    "    capabilities = [ \"read\" ]; match = { images = [ \"%s\" ]; }; },\n"
    "  { name = \"medical-any\"; paths = [ \"secret/data/medical/*\" ];\n"
    "    capabilities = [ \"read\" ]; } );\n";

static int
setup(void **state)
{
	struct st *s = calloc(1, sizeof(*s));
	char policy[1024];

	assert_non_null(s);
	vfx_image("image-x", s->img);
	snprintf(policy, sizeof(policy), policy_fmt, s->img);
	assert_int_equal(vfx_init(&s->f, policy, NULL), 0);
	assert_int_equal(vfx_node_new(&s->f, "hipaaCluster", "us-south",
	                     "dal05", "node-a", &s->a),
	    0);
	assert_int_equal(vfx_node_new(&s->f, "hipaaCluster", "us-south",
	                     "dal05", "node-b", &s->b),
	    0);
	*state = s;
	return 0;
}

static int
teardown(void **state)
{
	struct st *s = *state;

	/* A clean exit (and, in the sanitizer build, no leak or error). */
	if (s->f.pid > 0) {
		int rc = vfx_stop(&s->f);
		if (rc != 0)
			vfx_dump_log(&s->f);
		assert_int_equal(rc, 0);
	}
	vfx_node_free(&s->a);
	vfx_node_free(&s->b);
	vfx_cleanup(&s->f);
	free(s);
	return 0;
}

static void
start(struct st *s)
{
	assert_int_equal(vfx_start(&s->f), 0);
	assert_int_equal(vfx_kv_put(&s->f, s->f.root, "medical/r1",
	                     "{\"data\":{\"patient\":\"MEDSECRET-1\"}}"),
	    200);
}

static long
call(struct st *s, CURL *c, const char *method, const char *path,
    const char *token, const char *body, struct vresp *out)
{
	struct vresp r;
	long st;

	assert_int_equal(vfx_http(&s->f, c, method, path, token, body, &r), 0);
	st = r.status;
	if (out != NULL)
		*out = r;
	else
		vresp_clear(&r);
	return st;
}

static char *
login_node(struct st *s, struct vfx_node *n)
{
	long status = 0;
	char *tok = vfx_login_as(&s->f, n, s->img, "prod", "demo", &status);

	assert_int_equal(status, 200);
	assert_non_null(tok);
	return tok;
}

/* How many times the server has logged a finished reload. */
static int
reloads_logged(struct st *s)
{
	FILE *fp = fopen(s->f.log, "r");
	char line[4096];
	int n = 0;

	if (fp == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strstr(line, "\"reload.done\"") != NULL)
			n++;
	fclose(fp);
	return n;
}

/* SIGHUP, then waits (bounded) until the server reports the reload done. */
static void
reload_and_wait(struct st *s)
{
	int before = reloads_logged(s), i;

	assert_int_equal(kill(s->f.pid, SIGHUP), 0);
	for (i = 0; i < 3000 && reloads_logged(s) <= before; i++)
		usleep(10 * 1000);
	assert_true(reloads_logged(s) > before);
}

/* A live token of node a keeps working until a's certificate is revoked;
 * then it ends at once, on the connection it was using too; node b's token
 * is untouched. */
static void
test_revoked_node_ends_live_token(void **state)
{
	struct st *s = *state;
	struct vresp r;
	char fp[65], line[100], *ta, *tb;
	CURL *c = curl_easy_init();
	FILE *f;
	long st;

	start(s);
	ta = login_node(s, &s->a);
	tb = login_node(s, &s->b);
	assert_int_equal(call(s, c, "GET", "/v1/secret/data/medical/r1", ta,
	                     NULL, NULL),
	    200);

	assert_int_equal(tsi_x509_fingerprint(s->a.cert, fp), TSI_OK);
	snprintf(line, sizeof(line), "%s\n", fp);
	assert_non_null(f = fopen(s->f.revoked, "a"));
	assert_int_equal(fputs(line, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	reload_and_wait(s);

	/* Same kept-alive connection: no new connect, and refused. */
	st = call(s, c, "GET", "/v1/secret/data/medical/r1", ta, NULL, &r);
	if (st != 403)
		vfx_dump_log(&s->f);
	assert_int_equal(st, 403);
	assert_int_equal(r.connects, 0);
	assert_null(strstr(r.body, "MEDSECRET"));
	vresp_clear(&r);
	assert_int_equal(call(s, NULL, "GET", "/v1/auth/token/lookup-self", ta,
	                     NULL, NULL),
	    403);
	/* Node b's token came through another certificate. */
	assert_int_equal(vfx_kv_get(&s->f, tb, "medical/r1", NULL), 200);
	/* And node a cannot log in again. */
	st = 0;
	free(vfx_login_as(&s->f, &s->a, s->img, "prod", "demo", &st));
	assert_int_equal(st, 403);
	curl_easy_cleanup(c);
	free(ta);
	free(tb);
}

static char *
read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	assert_non_null(f);
	buf = calloc(1, 1 << 16);
	assert_non_null(buf);
	n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void
write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

/* The trust_ca file holds two CAs; a node of the second logs in; taking
 * that CA out of the file (+ SIGHUP) ends its token, and only its. */
static void
test_removed_ca_ends_live_token(void **state)
{
	struct st *s = *state;
	struct vfx other;
	struct vfx_node n2;
	char path[400], *ca1, *ca2, *both, *t1, *t2;
	size_t l1, l2;

	memset(&other, 0, sizeof(other));
	snprintf(other.ca_dir, sizeof(other.ca_dir), "%s/ca2", s->f.dir);
	assert_int_equal(tsi_ca_init(other.ca_dir, "second CA", 30), TSI_OK);
	assert_int_equal(vfx_node_new(&other, "hipaaCluster", "us-south",
	                     "dal05", "node-c", &n2),
	    0);
	snprintf(path, sizeof(path), "%s/ca.pem", s->f.ca_dir);
	ca1 = read_text(path);
	snprintf(path, sizeof(path), "%s/ca.pem", other.ca_dir);
	ca2 = read_text(path);
	l1 = strlen(ca1);
	l2 = strlen(ca2);
	assert_non_null(both = calloc(1, l1 + l2 + 1));
	memcpy(both, ca1, l1);
	memcpy(both + l1, ca2, l2);
	snprintf(path, sizeof(path), "%s/ca.pem", s->f.ca_dir);
	write_text(path, both);

	start(s);
	t1 = login_node(s, &s->a);
	t2 = login_node(s, &n2);
	assert_int_equal(vfx_kv_get(&s->f, t2, "medical/r1", NULL), 200);

	write_text(path, ca1);
	reload_and_wait(s);
	assert_int_equal(vfx_kv_get(&s->f, t2, "medical/r1", NULL), 403);
	assert_int_equal(vfx_kv_get(&s->f, t1, "medical/r1", NULL), 200);
	vfx_node_free(&n2);
	free(ca1);
	free(ca2);
	free(both);
	free(t1);
	free(t2);
}

/* Logins of node a running while its certificate is revoked. */
#define RACE_JWTS 40
#define RACE_MAX 4000

struct race {
	struct st *s;
	char *jwt[RACE_JWTS];
	char *tok[RACE_MAX];
	int ntok;          /* atomic */
	int refused_after; /* atomic: 403s once stop_after was set */
	int stop_after;    /* atomic */
};

static void *
race_main(void *arg)
{
	struct race *r = arg;
	long st;
	int i;

	for (i = 0; i < RACE_MAX; i++) {
		int after = __atomic_load_n(&r->stop_after, __ATOMIC_ACQUIRE);
		char *tok;

		st = 0;
		tok = vfx_login(&r->s->f, "demo", r->jwt[i % RACE_JWTS], &st);
		if (st == 200 && tok != NULL) {
			int n = __atomic_load_n(&r->ntok, __ATOMIC_RELAXED);
			r->tok[n] = tok;
			__atomic_store_n(&r->ntok, n + 1, __ATOMIC_RELEASE);
		} else {
			free(tok);
			if (after && st == 403 &&
			    __atomic_add_fetch(&r->refused_after, 1,
			        __ATOMIC_ACQ_REL) >= 5)
				break;
		}
	}
	return NULL;
}

/* Whatever the interleaving of logins and the reload, no token of the
 * revoked node is alive once the reload is reported done. */
static void
test_logins_during_revocation(void **state)
{
	struct st *s = *state;
	struct race *r = calloc(1, sizeof(*r));
	pthread_t th;
	char fp[65], line[100];
	FILE *f;
	int i, n;

	assert_non_null(r);
	r->s = s;
	start(s);
	for (i = 0; i < RACE_JWTS; i++)
		assert_non_null(
		    r->jwt[i] = vfx_jwt(&s->a, s->img, "prod", NULL, 600));
	assert_int_equal(pthread_create(&th, NULL, race_main, r), 0);
	for (i = 0; i < 3000 && __atomic_load_n(&r->ntok, __ATOMIC_ACQUIRE) < 5;
	     i++)
		usleep(10 * 1000);
	assert_true(__atomic_load_n(&r->ntok, __ATOMIC_ACQUIRE) >= 5);
	assert_int_equal(tsi_x509_fingerprint(s->a.cert, fp), TSI_OK);
	snprintf(line, sizeof(line), "%s\n", fp);
	assert_non_null(f = fopen(s->f.revoked, "a"));
	assert_true(fputs(line, f) >= 0);
	assert_int_equal(fclose(f), 0);
	reload_and_wait(s);
	__atomic_store_n(&r->stop_after, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(r->refused_after >= 5);
	n = r->ntok;
	print_message("%d logins succeeded around the reload\n", n);
	for (i = 0; i < n; i++) {
		assert_int_equal(vfx_kv_get(&s->f, r->tok[i], "medical/r1",
		                     NULL),
		    403);
		free(r->tok[i]);
	}
	for (i = 0; i < RACE_JWTS; i++)
		free(r->jwt[i]);
	free(r);
}

/* Role token_ttl 300, JWT 3 s: the token ends with the JWT. A JWT already
 * past its exp (accepted within the skew) gives no token at all. */
static void
test_token_never_outlives_jwt(void **state)
{
	struct st *s = *state;
	struct vresp r;
	json_t *req;
	char *jwt, *body, *tok;
	time_t exp;
	long lease, st;
	int i;

	start(s);
	exp = time(NULL) + 3;
	jwt = vfx_jwt(&s->a, s->img, "prod", NULL, 3);
	assert_non_null(jwt);
	req = json_pack("{ssss}", "role", "demo", "jwt", jwt);
	body = json_dumps(req, JSON_COMPACT);
	assert_int_equal(call(s, NULL, "POST",
	                     "/v1/auth/trusted-identity/login", NULL, body, &r),
	    200);
	lease = (long)json_integer_value(
	    json_object_get(json_object_get(r.json, "auth"), "lease_duration"));
	assert_true(lease >= 1 && lease <= 3);
	tok = strdup(json_string_value(
	    json_object_get(json_object_get(r.json, "auth"), "client_token")));
	vresp_clear(&r);
	json_decref(req);
	free(body);
	free(jwt);
	assert_int_equal(call(s, NULL, "GET", "/v1/auth/token/lookup-self", tok,
	                     NULL, &r),
	    200);
	assert_true(
	    json_integer_value(json_object_get(json_object_get(r.json, "data"),
	        "ttl")) <= exp - time(NULL) + 1);
	vresp_clear(&r);
	/* Wait for the clock to pass exp (bounded), then the token is dead. */
	for (i = 0; i < 1000 && time(NULL) < exp; i++)
		usleep(10 * 1000);
	assert_true(time(NULL) >= exp);
	assert_int_equal(vfx_kv_get(&s->f, tok, "medical/r1", NULL), 403);
	free(tok);

	/* exp 10 s ago, inside the 60 s skew: no token that outlives it. */
	req = json_pack("{sIsIsI}", "iat", (json_int_t)(time(NULL) - 100),
	    "nbf", (json_int_t)(time(NULL) - 100), "exp",
	    (json_int_t)(time(NULL) - 10));
	jwt = vfx_jwt(&s->a, s->img, "prod", req, 300);
	json_decref(req);
	assert_non_null(jwt);
	st = 0;
	tok = vfx_login(&s->f, "demo", jwt, &st);
	assert_int_equal(st, 403);
	assert_null(tok);
	free(jwt);
}

/* POSTs body to path with token; returns the status, *out the answer. */
static long
post(struct st *s, const char *path, const char *token, const char *body,
    struct vresp *out)
{
	return call(s, NULL, "POST", path, token, body, out);
}

static json_t *
auth_of(struct vresp *r)
{
	return json_object_get(r->json, "auth");
}

static const char *
str_at(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* The audit records of op, newest last. */
static json_t *
records_of(struct st *s, const char *path)
{
	struct vresp r;
	char q[300];
	json_t *all;

	snprintf(q, sizeof(q), "/v1/sys/audit/releases?path=%s&limit=1000",
	    path);
	assert_int_equal(call(s, NULL, "GET", q, s->f.root, NULL, &r), 200);
	all = json_incref(
	    json_object_get(json_object_get(r.json, "data"), "records"));
	assert_true(json_is_array(all));
	vresp_clear(&r);
	return all;
}

static void
test_create_lookup_revoke(void **state)
{
	struct st *s = *state;
	struct vresp r;
	json_t *a, *d, *recs;
	char *tok, *acc, *admin, *wl, body[256];
	size_t i;
	int seen;

	start(s);
	/* Created by root: named, with the kv-reader role, 1 h. */
	assert_int_equal(post(s, "/v1/auth/token/create", s->f.root,
	                     "{\"display_name\":\"alice\",\"policies\":[\"kv-"
	                     "reader\"],"
	                     "\"ttl\":\"1h\",\"no_parent\":false,\"no_default_"
	                     "policy\":false}",
	                     &r),
	    200);
	a = auth_of(&r);
	assert_non_null(a);
	assert_non_null(str_at(a, "client_token"));
	assert_int_equal(strlen(str_at(a, "accessor")), 24);
	assert_string_equal(json_string_value(
	                        json_array_get(json_object_get(a, "policies"),
	                            0)),
	    "kv-reader");
	assert_string_equal(json_string_value(
	                        json_array_get(json_object_get(a,
	                                           "token_policies"),
	                            0)),
	    "kv-reader");
	assert_true(json_is_object(json_object_get(a, "metadata")));
	assert_int_equal(json_integer_value(
	                     json_object_get(a, "lease_duration")),
	    3600);
	assert_true(json_is_false(json_object_get(a, "renewable")));
	tok = strdup(str_at(a, "client_token"));
	acc = strdup(str_at(a, "accessor"));
	vresp_clear(&r);

	/* It reads what the role's rule allows, nothing more. */
	assert_int_equal(vfx_kv_get(&s->f, tok, "medical/r1", NULL), 200);
	assert_int_equal(vfx_kv_put(&s->f, tok, "medical/r2",
	                     "{\"data\":{\"x\":\"1\"}}"),
	    403);
	/* Its records carry its name. */
	recs = records_of(s, "secret/data/medical/r");
	seen = 0;
	for (i = 0; i < json_array_size(recs); i++) {
		json_t *x = json_array_get(recs, i);
		if (str_at(x, "accessor") &&
		    strcmp(str_at(x, "accessor"), acc) == 0) {
			assert_string_equal(str_at(x, "display_name"),
			    "token-alice");
			seen++;
		}
	}
	assert_int_equal(seen, 2);
	json_decref(recs);

	/* lookup by token and by accessor, Vault's shapes. */
	snprintf(body, sizeof(body), "{\"token\":\"%s\"}", tok);
	assert_int_equal(post(s, "/v1/auth/token/lookup", s->f.root, body, &r),
	    200);
	d = json_object_get(r.json, "data");
	assert_string_equal(str_at(d, "accessor"), acc);
	assert_string_equal(str_at(d, "display_name"), "token-alice");
	assert_string_equal(str_at(d, "id"), tok);
	assert_string_equal(str_at(d, "path"), "auth/token/create");
	assert_true(json_integer_value(json_object_get(d, "ttl")) > 3500);
	assert_true(json_is_string(json_object_get(d, "expire_time")));
	vresp_clear(&r);
	snprintf(body, sizeof(body), "{\"accessor\":\"%s\"}", acc);
	assert_int_equal(post(s, "/v1/auth/token/lookup-accessor", s->f.root,
	                     body, &r),
	    200);
	assert_string_equal(str_at(json_object_get(r.json, "data"), "id"), "");
	vresp_clear(&r);
	assert_int_equal(call(s, NULL, "GET", "/v1/auth/token/lookup-self", tok,
	                     NULL, &r),
	    200);
	assert_string_equal(str_at(json_object_get(r.json, "data"),
	                        "display_name"),
	    "token-alice");
	vresp_clear(&r);

	/* Only root tokens administer tokens. */
	wl = login_node(s, &s->a);
	assert_int_equal(post(s, "/v1/auth/token/lookup", wl, body, NULL), 403);
	assert_int_equal(post(s, "/v1/auth/token/revoke-accessor", tok, body,
	                     NULL),
	    403);
	assert_int_equal(post(s, "/v1/auth/token/create", wl, "{}", NULL), 403);
	assert_int_equal(post(s, "/v1/auth/token/create", tok, "{}", NULL),
	    403);
	assert_int_equal(vfx_kv_get(&s->f, tok, "medical/r1", NULL), 200);

	/* Unknown names, refused options, unknown tokens. */
	assert_int_equal(post(s, "/v1/auth/token/create", s->f.root,
	                     "{\"policies\":[\"no-such-role\"]}", &r),
	    400);
	assert_non_null(strstr(r.body, "no-such-role"));
	vresp_clear(&r);
	assert_int_equal(post(s, "/v1/auth/token/create", s->f.root,
	                     "{\"num_uses\":3}", &r),
	    400);
	assert_non_null(strstr(r.body, "num_uses"));
	vresp_clear(&r);
	assert_int_equal(post(s, "/v1/auth/token/lookup", s->f.root,
	                     "{\"token\":\"hvs.nope\"}", &r),
	    403);
	assert_non_null(strstr(r.body, "bad token"));
	vresp_clear(&r);
	assert_int_equal(call(s, NULL, "GET", "/v1/auth/token/create",
	                     s->f.root, NULL, NULL),
	    405);

	/* revoke-accessor: 204, the token ends, a second time 400. */
	assert_int_equal(post(s, "/v1/auth/token/revoke-accessor", s->f.root,
	                     body, &r),
	    204);
	vresp_clear(&r);
	assert_int_equal(vfx_kv_get(&s->f, tok, "medical/r1", NULL), 403);
	assert_int_equal(post(s, "/v1/auth/token/revoke-accessor", s->f.root,
	                     body, &r),
	    400);
	assert_non_null(strstr(r.body, "invalid accessor"));
	vresp_clear(&r);
	recs = records_of(s, "auth/token/revoke-accessor");
	seen = 0;
	for (i = 0; i < json_array_size(recs); i++) {
		json_t *x = json_array_get(recs, i);
		if (json_integer_value(json_object_get(x, "status")) == 204 &&
		    strstr(str_at(x, "reason"), acc) != NULL)
			seen++;
	}
	assert_int_equal(seen, 1);
	json_decref(recs);

	/* A named root token: does what root does, shows its name, and
	 * what it creates never outlives it. */
	assert_int_equal(post(s, "/v1/auth/token/create", s->f.root,
	                     "{\"display_name\":\"bob\",\"policies\":[\"root\"]"
	                     ",\"ttl\":60}",
	                     &r),
	    200);
	admin = strdup(str_at(auth_of(&r), "client_token"));
	vresp_clear(&r);
	assert_int_equal(vfx_kv_put(&s->f, admin, "medical/r3",
	                     "{\"data\":{\"x\":\"1\"}}"),
	    200);
	assert_int_equal(post(s, "/v1/auth/token/create", admin,
	                     "{\"policies\":[\"kv-reader\"],\"ttl\":\"2h\"}",
	                     &r),
	    200);
	assert_true(json_integer_value(
	                json_object_get(auth_of(&r), "lease_duration")) <= 60);
	vresp_clear(&r);
	recs = records_of(s, "secret/data/medical/r3");
	assert_true(json_array_size(recs) >= 1);
	assert_string_equal(str_at(json_array_get(recs, 0), "display_name"),
	    "token-bob");
	json_decref(recs);
	/* The login tokens' lookup by root, too. */
	snprintf(body, sizeof(body), "{\"token\":\"%s\"}", wl);
	assert_int_equal(post(s, "/v1/auth/token/lookup", admin, body, &r),
	    200);
	assert_string_equal(str_at(json_object_get(r.json, "data"), "path"),
	    "auth/trusted-identity/login");
	assert_string_equal(str_at(json_object_get(r.json, "data"), "role"),
	    "demo");
	vresp_clear(&r);
	free(admin);
	free(wl);
	free(tok);
	free(acc);
}

/* One GET with one extra header; returns the status, *body the answer. */
static long
get_with(struct st *s, const char *path, const char *header, char **body)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char url[512], th[256];
	FILE *mem;
	char *buf = NULL;
	size_t len = 0;
	long st = -1;

	snprintf(url, sizeof(url), "%s%s", s->f.addr, path);
	snprintf(th, sizeof(th), "X-Vault-Token: %s", s->f.root);
	h = curl_slist_append(h, th);
	h = curl_slist_append(h, header);
	mem = open_memstream(&buf, &len);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO, s->f.tls_ca);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
	fclose(mem);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	*body = buf;
	return st;
}

static void
test_wrap_and_namespace_refused(void **state)
{
	struct st *s = *state;
	char *b;

	start(s);
	assert_int_equal(get_with(s, "/v1/secret/data/medical/r1",
	                     "X-Vault-Wrap-TTL: 60s", &b),
	    400);
	assert_non_null(strstr(b, "response wrapping is not supported"));
	assert_null(strstr(b, "MEDSECRET"));
	free(b);
	assert_int_equal(get_with(s, "/v1/secret/data/medical/r1",
	                     "X-Vault-Namespace: team-a", &b),
	    400);
	assert_non_null(strstr(b, "namespace"));
	assert_null(strstr(b, "MEDSECRET"));
	free(b);
	assert_int_equal(get_with(s, "/v1/secret/data/medical/r1",
	                     "X-Vault-Namespace: root", &b),
	    200);
	assert_non_null(strstr(b, "MEDSECRET"));
	free(b);
	/* curl sends "X-Vault-Namespace;" as the header with an empty value. */
	assert_int_equal(get_with(s, "/v1/secret/data/medical/r1",
	                     "X-Vault-Namespace;", &b),
	    200);
	free(b);
	assert_int_equal(get_with(s, "/v1/auth/token/lookup-self",
	                     "X-Vault-Wrap-TTL: 5m", &b),
	    400);
	free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_revoked_node_ends_live_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removed_ca_ends_live_token,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_logins_during_revocation,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_never_outlives_jwt,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_lookup_revoke,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrap_and_namespace_refused,
		    setup, teardown),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
