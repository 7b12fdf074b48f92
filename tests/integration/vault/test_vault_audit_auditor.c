/*
 * An auditor's questions against the real server (issue 19, "Auditors"):
 * GET /v1/sys/audit/releases refuses unknown parameters (400 naming
 * them), takes relative times, op and status filters, format=csv, and
 * answers a cursor a poller resumes from; records carry the role; a
 * refused login keeps the caller's unverified claims; and the two
 * questions of docs/audit.md ("which workloads received secret X last
 * week, from which datacenter", "all denials for cluster Y as CSV") are
 * answered by the documented `tsi audit list` commands.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

struct st {
	struct vfx f;
	struct vfx_node dal, fra;
	char img[72];
	char *tok;     /* demo workload in dal05 */
	char *tok_fra; /* demo workload in fra02 */
};

static const char policy_fmt[] =
    "roles = ( { name = \"demo\"; rules = [ \"medical\" ]; token_ttl = 300; } "
    ");\n"
    "rules = ( { name = \"medical\"; paths = [ \"secret/data/medical/*\" ];\n"
    "    capabilities = [ \"read\" ]; match = { images = [ \"%s\" ]; }; } );\n";

static int
setup(void **state)
{
	struct st *s = calloc(1, sizeof(*s));
	char policy[1024];
	long status = 0;

	assert_non_null(s);
	vfx_image("image-x", s->img);
	snprintf(policy, sizeof(policy), policy_fmt, s->img);
	assert_int_equal(vfx_init(&s->f, policy, NULL), 0);
	assert_int_equal(vfx_node_new(&s->f, "hipaaCluster", "us-south",
	                     "dal05", "node-a", &s->dal),
	    0);
	assert_int_equal(vfx_node_new(&s->f, "euCluster", "eu-de", "fra02",
	                     "node-b", &s->fra),
	    0);
	assert_int_equal(vfx_start(&s->f), 0);
	assert_int_equal(vfx_kv_put(&s->f, s->f.root, "medical/r1",
	                     "{\"data\":{\"patient\":\"one\"}}"),
	    200);
	assert_int_equal(vfx_kv_put(&s->f, s->f.root, "medical/r2",
	                     "{\"data\":{\"patient\":\"two\"}}"),
	    200);
	s->tok = vfx_login_as(&s->f, &s->dal, s->img, "prod", "demo", &status);
	assert_non_null(s->tok);
	s->tok_fra =
	    vfx_login_as(&s->f, &s->fra, s->img, "web", "demo", &status);
	assert_non_null(s->tok_fra);
	/* Received: dal05 and fra02 read r1; dal05 read r2. */
	assert_int_equal(vfx_kv_get(&s->f, s->tok, "medical/r1", NULL), 200);
	assert_int_equal(vfx_kv_get(&s->f, s->tok_fra, "medical/r1", NULL),
	    200);
	assert_int_equal(vfx_kv_get(&s->f, s->tok, "medical/r2", NULL), 200);
	/* Denied: a write (no capability) from each cluster. */
	assert_int_equal(vfx_kv_put(&s->f, s->tok, "medical/r1",
	                     "{\"data\":{\"x\":1}}"),
	    403);
	assert_int_equal(vfx_kv_put(&s->f, s->tok_fra, "medical/r1",
	                     "{\"data\":{\"x\":1}}"),
	    403);
	*state = s;
	return 0;
}

static int
teardown(void **state)
{
	struct st *s = *state;

	assert_int_equal(vfx_stop(&s->f), 0);
	free(s->tok);
	free(s->tok_fra);
	vfx_node_free(&s->dal);
	vfx_node_free(&s->fra);
	vfx_cleanup(&s->f);
	free(s);
	return 0;
}

static json_t *
records(struct vresp *r)
{
	return json_object_get(json_object_get(r->json, "data"), "records");
}

static void
get(struct st *s, const char *path, struct vresp *r)
{
	assert_int_equal(vfx_http(&s->f, NULL, "GET", path, s->f.root, NULL, r),
	    0);
}

static void
test_http_unknown_parameter(void **state)
{
	struct st *s = *state;
	struct vresp r;

	get(s, "/v1/sys/audit/releases?datacentre=dal05", &r);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "datacentre"));
	vresp_clear(&r);
	get(s, "/v1/sys/audit/releases?datacenter=dal05&limt=5", &r);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "'limt'"));
	vresp_clear(&r);
	get(s, "/v1/sys/audit/releases?datacenter=dal05&op=read", &r);
	assert_int_equal(r.status, 200);
	vresp_clear(&r);
}

static void
test_http_relative_time_op_status(void **state)
{
	struct st *s = *state;
	struct vresp r;
	json_t *e;
	size_t i;

	/* everything of the last 7 days: this test's records */
	get(s,
	    "/v1/sys/audit/releases?since=7d&op=read&decision=allow&"
	    "path=secret/data/medical/",
	    &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(records(&r)), 3);
	json_array_foreach (records(&r), i, e) {
		assert_string_equal(json_string_value(json_object_get(e, "op")),
		    "read");
		assert_string_equal(json_string_value(
		                        json_object_get(e, "role")),
		    "demo");
	}
	vresp_clear(&r);
	/* nothing is in the future */
	get(s, "/v1/sys/audit/releases?until=30m&op=read", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(records(&r)), 0);
	vresp_clear(&r);
	get(s, "/v1/sys/audit/releases?since=7x", &r);
	assert_int_equal(r.status, 400);
	vresp_clear(&r);
	get(s, "/v1/sys/audit/releases?status=403&path=secret/", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(records(&r)), 2);
	json_array_foreach (records(&r), i, e)
		assert_int_equal(json_integer_value(
		                     json_object_get(e, "status")),
		    403);
	vresp_clear(&r);
	get(s, "/v1/sys/audit/releases?status=abc", &r);
	assert_int_equal(r.status, 400);
	vresp_clear(&r);
	/* the login records name the role asked for */
	get(s, "/v1/sys/audit/releases?op=login&decision=allow", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(records(&r)), 2);
	json_array_foreach (records(&r), i, e)
		assert_string_equal(json_string_value(
		                        json_object_get(e, "role")),
		    "demo");
	vresp_clear(&r);
}

static void
test_http_csv(void **state)
{
	struct st *s = *state;
	struct vresp r;
	char *line, *save = NULL;
	int rows = 0;

	get(s,
	    "/v1/sys/audit/releases?format=csv&op=read&decision=allow&"
	    "path=secret/data/medical/r1",
	    &r);
	assert_int_equal(r.status, 200);
	assert_true(strncmp(r.body, "seq,time,op,path,", 17) == 0);
	assert_non_null(strstr(r.body, ",role,display_name\n"));
	for (line = strtok_r(r.body, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save), rows++)
		if (rows > 0) {
			assert_non_null(
			    strstr(line, ",read,secret/data/medical/r1,"));
			assert_true(strstr(line, ",dal05,") != NULL ||
			    strstr(line, ",fra02,") != NULL);
			assert_non_null(strstr(line, ",app-0,default,"));
			assert_non_null(strstr(line, ",demo,"));
		}
	assert_int_equal(rows, 3); /* header and two reads */
	vresp_clear(&r);
	get(s, "/v1/sys/audit/releases?format=xml", &r);
	assert_int_equal(r.status, 400);
	vresp_clear(&r);
}

/* A poller: resumes from the answer's cursor and sees each record once. */
static void
test_http_cursor(void **state)
{
	struct st *s = *state;
	struct vresp r;
	char path[256], cur[32];
	const char *c;
	json_t *e;
	size_t i;
	int seen = 0;

	get(s, "/v1/sys/audit/releases?op=read&limit=1000", &r);
	assert_int_equal(r.status, 200);
	c = json_string_value(
	    json_object_get(json_object_get(r.json, "data"), "cursor"));
	assert_non_null(c);
	assert_true(strtoull(c, NULL, 10) > 0);
	snprintf(cur, sizeof(cur), "%s", c);
	vresp_clear(&r);
	/* nothing new matches: the cursor moves to the head, never back */
	snprintf(path, sizeof(path), "/v1/sys/audit/releases?op=read&after=%s",
	    cur);
	get(s, path, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(records(&r)), 0);
	c = json_string_value(
	    json_object_get(json_object_get(r.json, "data"), "cursor"));
	assert_non_null(c);
	/* the first query's own audit.query record lies past its cursor */
	assert_true(strtoull(c, NULL, 10) > strtoull(cur, NULL, 10));
	snprintf(cur, sizeof(cur), "%s", c);
	vresp_clear(&r);
	assert_int_equal(vfx_kv_get(&s->f, s->tok, "medical/r2", NULL), 200);
	/* paged by one: the new read only, then nothing */
	snprintf(path, sizeof(path),
	    "/v1/sys/audit/releases?op=read&after=%s&limit=1", cur);
	get(s, path, &r);
	assert_int_equal(r.status, 200);
	json_array_foreach (records(&r), i, e) {
		assert_string_equal(json_string_value(
		                        json_object_get(e, "path")),
		    "secret/data/medical/r2");
		seen++;
	}
	assert_int_equal(seen, 1);
	snprintf(cur, sizeof(cur), "%s",
	    json_string_value(
	        json_object_get(json_object_get(r.json, "data"), "cursor")));
	vresp_clear(&r);
	snprintf(path, sizeof(path), "/v1/sys/audit/releases?op=read&after=%s",
	    cur);
	get(s, path, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(records(&r)), 0);
	vresp_clear(&r);
}

/* A forged or broken JWT: refused, and the record says who it claimed to
 * be, marked unverified, and nothing is trusted as its claims. */
static void
test_refused_login_unverified(void **state)
{
	struct st *s = *state;
	struct vresp r;
	char *jwt = vfx_jwt(&s->fra, s->img, "intruder", NULL, 300), *tok;
	json_t *e, *uc;
	size_t n;
	long status = 0;

	assert_non_null(jwt);
	n = strlen(jwt);
	/* a changed signature byte: the claims are readable, not provable */
	jwt[n - 2] = jwt[n - 2] == 'A' ? 'B' : 'A';
	tok = vfx_login(&s->f, "demo", jwt, &status);
	assert_null(tok);
	assert_int_equal(status, 403);
	free(jwt);
	get(s, "/v1/sys/audit/releases?op=login&decision=deny", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(records(&r)), 1);
	e = json_array_get(records(&r), 0);
	assert_string_equal(json_string_value(json_object_get(e, "role")),
	    "demo");
	assert_int_equal(json_object_size(json_object_get(e, "claims")), 0);
	uc = json_object_get(e, "claims_unverified");
	assert_non_null(uc);
	assert_string_equal(json_string_value(json_object_get(uc, "namespace")),
	    "intruder");
	assert_string_equal(json_string_value(
	                        json_object_get(uc, "datacenter")),
	    "fra02");
	assert_non_null(strstr(json_string_value(json_object_get(uc, "sub")),
	    "/ns/intruder/"));
	vresp_clear(&r);
}

/*
 * Runs `tsi audit ARGS...` (NULL-terminated); stdout into out. Returns
 * the exit code (-1: did not exit).
 */
static int
tsi_audit(char *out, size_t outlen, ...)
{
	char exe[512], o_t[] = "/tmp/tsi-au-o.XXXXXX";
	const char *bin = getenv("TSI_BIN_DIR");
	const char *argv[24];
	int ofd = mkstemp(o_t), st, n = 0;
	va_list ap;
	pid_t pid;
	ssize_t got;

	assert_true(ofd >= 0);
	snprintf(exe, sizeof(exe), "%s/tsi", bin ? bin : "build/bin");
	argv[n++] = exe;
	argv[n++] = "audit";
	va_start(ap, outlen);
	while (n < 23 && (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(ofd, 1);
		execv(exe, (char *const *)argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	lseek(ofd, 0, SEEK_SET);
	got = read(ofd, out, outlen - 1);
	out[got > 0 ? got : 0] = '\0';
	close(ofd);
	unlink(o_t);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* docs/audit.md: "Which workloads received secret X last week, from
 * which datacenter?" */
static void
test_cli_question_received(void **state)
{
	struct st *s = *state;
	char out[16384], *line, *save = NULL;
	int rows = 0, dal = 0, fra = 0;

	assert_int_equal(tsi_audit(out, sizeof(out), "list", "--data-dir",
	                     s->f.data_dir, "--since", "7d", "--op", "read",
	                     "--decision", "allow", "--path",
	                     "secret/data/medical/r1", "--columns", "identity",
	                     (const char *)NULL),
	    0);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save), rows++) {
		if (rows == 0) {
			assert_non_null(strstr(line, "DC"));
			assert_non_null(strstr(line, "POD"));
			assert_non_null(strstr(line, "SERVICE-ACCOUNT"));
			assert_non_null(strstr(line, "ROLE"));
			assert_non_null(strstr(line, "IMAGES"));
			continue;
		}
		assert_non_null(strstr(line, "secret/data/medical/r1"));
		assert_non_null(strstr(line, " app-0 "));
		assert_non_null(strstr(line, " demo "));
		assert_non_null(strstr(line, s->img));
		dal += strstr(line, " dal05 ") != NULL;
		fra += strstr(line, " fra02 ") != NULL;
	}
	assert_int_equal(rows, 3);
	assert_int_equal(dal, 1);
	assert_int_equal(fra, 1);
}

/* docs/audit.md: "All denials for cluster Y, as CSV." */
static void
test_cli_question_denials_csv(void **state)
{
	struct st *s = *state;
	char out[16384], *line, *save = NULL;
	int rows = 0;

	assert_int_equal(tsi_audit(out, sizeof(out), "list", "--data-dir",
	                     s->f.data_dir, "--decision", "deny",
	                     "--cluster-name", "hipaaCluster", "--limit", "0",
	                     "--format", "csv", (const char *)NULL),
	    0);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save), rows++) {
		if (rows == 0) {
			assert_string_equal(line,
			    "seq,time,op,path,version,"
			    "decision,rule,reason,status,accessor,remote,"
			    "request_id,cluster_name,datacenter,namespace,"
			    "images,"
			    "hash,sub,pod,service_account,node,region,role,"
			    "display_name");
			continue;
		}
		assert_non_null(strstr(line, ",deny,"));
		assert_non_null(strstr(line, ",hipaaCluster,dal05,prod,"));
		assert_null(strstr(line, "euCluster"));
		assert_non_null(strstr(line, ",demo,"));
	}
	/* header, the write's decision record */
	assert_int_equal(rows, 2);
	/* --op and --status narrow the same question */
	assert_int_equal(tsi_audit(out, sizeof(out), "list", "--data-dir",
	                     s->f.data_dir, "--op", "login", "--status", "200",
	                     "--format", "csv", (const char *)NULL),
	    0);
	rows = 0;
	save = NULL;
	for (line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save))
		rows++;
	assert_int_equal(rows, 3);
	assert_int_equal(tsi_audit(out, sizeof(out), "list", "--data-dir",
	                     s->f.data_dir, "--status", "abc",
	                     (const char *)NULL),
	    2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_unknown_parameter),
		cmocka_unit_test(test_http_relative_time_op_status),
		cmocka_unit_test(test_http_csv),
		cmocka_unit_test(test_cli_question_received),
		cmocka_unit_test(test_cli_question_denials_csv),
		cmocka_unit_test(test_http_cursor),
		cmocka_unit_test(test_refused_login_unverified),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, setup, teardown);
}
