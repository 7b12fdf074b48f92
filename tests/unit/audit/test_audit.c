/* Audit store: append, get, queries with every filter, paging, readers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "audit_test.h"
#include "tsi/log.h"

static const char *const dcs[] = { "dal05", "fra02", "lon04" };
static const char *const clusters[] = { "hipaaCluster", "devCluster" };
static const char *const nss[] = { "default", "medical", "billing", "ops" };
static const char *const images[] = {
	"sha256:"
	"1111111111111111111111111111111111111111111111111111111111111111",
	"sha256:"
	"2222222222222222222222222222222222222222222222222222222222222222",
};
static const char *const paths[] = {
	"secret/data/medical/a",
	"secret/data/medical/b",
	"secret/data/billing/x",
	"secret/data/medicalish",
	"auth/trusted-identity/login",
};

struct fixture {
	char *dir;
	struct tsi_audit *a;
	struct tsi_audit_reader *r;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	tsi_log_init("test", TSI_LOG_ERROR);
	assert_non_null(f);
	f->dir = test_tmpdir();
	assert_non_null(f->dir);
	assert_int_equal(tsi_audit_open(f->dir, NULL, &f->a), TSI_OK);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	tsi_audit_reader_close(f->r);
	tsi_audit_close(f->a);
	test_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static uint64_t
append(struct tsi_audit *a, json_t *rec)
{
	uint64_t seq = 0;

	assert_int_equal(tsi_audit_append(a, rec, &seq), TSI_OK);
	json_decref(rec);
	return seq;
}

static void
fill(struct fixture *f, int n)
{
	int i;

	for (i = 0; i < n; i++)
		append(f->a,
		    test_rec(i % 7 == 0 ? "login" : "read", paths[i % 5],
		        i % 3 == 0 ? "deny" : "allow", dcs[i % 3],
		        clusters[i % 2], nss[i % 4], images[(i / 4) % 2]));
}

static void
test_append_get(void **state)
{
	struct fixture *f = *state;
	struct tsi_audit_status st;
	json_t *rec = NULL;
	uint64_t s1, s2, s3;
	const char *t;

	s1 = append(f->a,
	    test_rec("read", "secret/data/a", "allow", "dal05", "c1", "default",
	        images[0]));
	s2 = append(f->a,
	    test_rec("read", "secret/data/b", "deny", "dal05", "c1", "default",
	        images[0]));
	s3 = append(f->a,
	    test_rec("login", "auth/x", "error", "dal05", "c1", "default",
	        images[0]));
	assert_int_equal(s1, 1);
	assert_int_equal(s2, 2);
	assert_int_equal(s3, 3);
	tsi_audit_status(f->a, &st);
	assert_int_equal(st.healthy, 1);
	assert_int_equal(st.committed, 3);
	assert_int_equal(st.failed, 0);
	assert_int_equal(st.last_seq, 3);
	assert_int_equal(st.queue_depth, 0);

	assert_int_equal(tsi_audit_reader_open(f->dir, &f->r), TSI_OK);
	assert_int_equal(tsi_audit_get(f->r, 2, &rec), TSI_OK);
	assert_int_equal(json_integer_value(json_object_get(rec, "seq")), 2);
	assert_string_equal(json_string_value(json_object_get(rec, "path")),
	    "secret/data/b");
	assert_string_equal(json_string_value(json_object_get(rec, "decision")),
	    "deny");
	t = json_string_value(json_object_get(rec, "time"));
	assert_non_null(t);
	/* RFC 3339 with microseconds, UTC */
	assert_int_equal(strlen(t), 27);
	assert_int_equal(t[10], 'T');
	assert_int_equal(t[19], '.');
	assert_int_equal(t[26], 'Z');
	assert_true(json_integer_value(json_object_get(rec, "time_us")) > 0);
	assert_int_equal(strlen(
	                     json_string_value(json_object_get(rec, "prev"))),
	    64);
	assert_int_equal(strlen(
	                     json_string_value(json_object_get(rec, "hash"))),
	    64);
	json_decref(rec);
	assert_int_equal(tsi_audit_get(f->r, 99, &rec), TSI_ERR_NOT_FOUND);
	assert_null(rec);
}

static void
test_secrets_stripped(void **state)
{
	struct fixture *f = *state;
	json_t *rec, *got = NULL;
	char *dump;
	uint64_t seq;

	rec = test_rec("write", "secret/data/a", "allow", "dal05", "c1",
	    "default", images[0]);
	json_object_set_new(rec, "token", json_string("hvs.SECRETTOKEN"));
	json_object_set_new(rec, "client_token",
	    json_string("hvs.SECRETTOKEN2"));
	json_object_set_new(rec, "data",
	    json_pack("{s:s}", "password", "hunter2"));
	json_object_set_new(rec, "note",
	    json_string("eyJhbGciOiJFUzI1NiJ9."
	                "eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl"));
	json_object_set_new(json_object_get(rec, "claims"), "jwt",
	    json_string("eyJ.x.y"));
	json_object_set_new(json_object_get(rec, "claims"), "Value",
	    json_string("s3cr3t"));
	/* the writer's own fields cannot be forged */
	json_object_set_new(rec, "seq", json_integer(12345));
	json_object_set_new(rec, "hash", json_string("00"));
	seq = append(f->a, rec);
	assert_int_equal(seq, 1);
	assert_int_equal(tsi_audit_reader_open(f->dir, &f->r), TSI_OK);
	assert_int_equal(tsi_audit_get(f->r, seq, &got), TSI_OK);
	dump = json_dumps(got, 0);
	assert_null(strstr(dump, "SECRETTOKEN"));
	assert_null(strstr(dump, "hunter2"));
	assert_null(strstr(dump, "s3cr3t"));
	assert_null(strstr(dump, "eyJ"));
	assert_null(json_object_get(got, "token"));
	assert_null(json_object_get(got, "data"));
	assert_string_equal(json_string_value(json_object_get(got, "accessor")),
	    "acc-1234");
	assert_int_equal(json_integer_value(json_object_get(got, "seq")), 1);
	free(dump);
	json_decref(got);
}

static void
test_bad_records(void **state)
{
	struct fixture *f = *state;
	struct tsi_audit_status st;
	json_t *rec;
	char *big;
	uint64_t seq = 77;

	rec = json_string("x");
	assert_int_equal(tsi_audit_append(f->a, rec, &seq),
	    TSI_ERR_INVALID_ARG);
	json_decref(rec);
	rec = json_pack("{s:s}", "decision", "allow");
	assert_int_equal(tsi_audit_append(f->a, rec, &seq),
	    TSI_ERR_INVALID_ARG);
	json_decref(rec);
	rec = json_pack("{s:s,s:s}", "op", "read", "decision", "maybe");
	assert_int_equal(tsi_audit_append(f->a, rec, &seq),
	    TSI_ERR_INVALID_ARG);
	json_decref(rec);
	rec = json_pack("{s:s,s:s,s:i}", "op", "read", "decision", "allow",
	    "claims", 3);
	assert_int_equal(tsi_audit_append(f->a, rec, &seq),
	    TSI_ERR_INVALID_ARG);
	json_decref(rec);
	big = malloc(70000);
	assert_non_null(big);
	memset(big, 'a', 69999);
	big[69999] = '\0';
	rec = json_pack("{s:s,s:s,s:s}", "op", "read", "decision", "allow",
	    "reason", big);
	assert_int_equal(tsi_audit_append(f->a, rec, &seq), TSI_ERR_TOO_LARGE);
	json_decref(rec);
	free(big);
	assert_int_equal(tsi_audit_append(f->a, NULL, &seq),
	    TSI_ERR_INVALID_ARG);
	assert_int_equal(seq, 77);
	tsi_audit_status(f->a, &st);
	assert_int_equal(st.committed, 0);
	assert_int_equal(st.last_seq, 0);
	/* the log still works */
	assert_int_equal(append(f->a,
	                     test_rec("read", "p", "allow", "d", "c", "n",
	                         images[0])),
	    1);
}

/* The expected answer, computed without the indexes. */
static int
brute_match(const json_t *rec, const struct tsi_audit_query *q)
{
	const json_t *c = json_object_get(rec, "claims");
	long long t = json_integer_value(json_object_get(rec, "time_us"));
	const char *p = json_string_value(json_object_get(rec, "path"));
	size_t i;
	int found;

	if (q->since_us && t < q->since_us)
		return 0;
	if (q->until_us && t >= q->until_us)
		return 0;
	if (q->decision &&
	    strcmp(q->decision,
	        json_string_value(json_object_get(rec, "decision"))) != 0)
		return 0;
	if (q->path_prefix &&
	    (p == NULL ||
	        strncmp(p, q->path_prefix, strlen(q->path_prefix)) != 0))
		return 0;
	if (q->datacenter &&
	    strcmp(q->datacenter,
	        json_string_value(json_object_get(c, "datacenter"))) != 0)
		return 0;
	if (q->cluster_name &&
	    strcmp(q->cluster_name,
	        json_string_value(json_object_get(c, "cluster-name"))) != 0)
		return 0;
	if (q->namespace_ &&
	    strcmp(q->namespace_,
	        json_string_value(json_object_get(c, "namespace"))) != 0)
		return 0;
	if (q->image) {
		found = 0;
		for (i = 0; i < json_array_size(json_object_get(c, "images"));
		     i++)
			if (strcmp(q->image,
			        json_string_value(
			            json_array_get(json_object_get(c, "images"),
			                i))) == 0)
				found = 1;
		if (!found)
			return 0;
	}
	return 1;
}

struct seqs {
	uint64_t v[4096];
	size_t n;
	int stop_after;
};

static int
collect(const json_t *rec, void *arg)
{
	struct seqs *s = arg;

	s->v[s->n++] =
	    (uint64_t)json_integer_value(json_object_get(rec, "seq"));
	return s->stop_after && (int)s->n >= s->stop_after;
}

static void
check_query(struct fixture *f, const struct tsi_audit_query *q, uint64_t total)
{
	struct seqs *got = calloc(1, sizeof(*got));
	struct tsi_audit_query qq = *q;
	uint64_t seq, next = 0, want_n = 0;
	json_t *rec;
	size_t i = 0;

	assert_non_null(got);
	qq.limit = SIZE_MAX;
	assert_int_equal(tsi_audit_query(f->r, &qq, collect, got, &next),
	    TSI_OK);
	assert_int_equal(next, 0);
	for (seq = 1; seq <= total; seq++) {
		assert_int_equal(tsi_audit_get(f->r, seq, &rec), TSI_OK);
		if (brute_match(rec, q)) {
			assert_true(i < got->n);
			assert_int_equal(got->v[i], seq);
			i++;
			want_n++;
		}
		json_decref(rec);
	}
	assert_int_equal(got->n, want_n);
	free(got);
}

static void
test_query_filters(void **state)
{
	struct fixture *f = *state;
	struct tsi_audit_query q;
	json_t *rec;
	long long t40, t90;
	size_t i;
	const int total = 240;

	fill(f, total);
	assert_int_equal(tsi_audit_reader_open(f->dir, &f->r), TSI_OK);
	assert_int_equal(tsi_audit_get(f->r, 40, &rec), TSI_OK);
	t40 = json_integer_value(json_object_get(rec, "time_us"));
	json_decref(rec);
	assert_int_equal(tsi_audit_get(f->r, 90, &rec), TSI_OK);
	t90 = json_integer_value(json_object_get(rec, "time_us"));
	json_decref(rec);

	memset(&q, 0, sizeof(q));
	check_query(f, &q, total);
	for (i = 0; i < 3; i++) {
		memset(&q, 0, sizeof(q));
		q.datacenter = dcs[i];
		check_query(f, &q, total);
		q.since_us = t40;
		q.until_us = t90;
		check_query(f, &q, total);
		q.decision = "deny";
		check_query(f, &q, total);
		q.namespace_ = "medical";
		check_query(f, &q, total);
	}
	memset(&q, 0, sizeof(q));
	q.since_us = t40;
	check_query(f, &q, total);
	q.until_us = t90;
	check_query(f, &q, total);
	memset(&q, 0, sizeof(q));
	q.path_prefix = "secret/data/medical/";
	check_query(f, &q, total);
	q.path_prefix = "secret/data/medical"; /* not at a '/' */
	check_query(f, &q, total);
	q.path_prefix = "secret/";
	check_query(f, &q, total);
	q.path_prefix = "auth"; /* no '/' at all */
	check_query(f, &q, total);
	q.path_prefix = "secret/data/medical/a"; /* a whole path */
	check_query(f, &q, total);
	memset(&q, 0, sizeof(q));
	q.image = images[1];
	q.cluster_name = "devCluster";
	check_query(f, &q, total);
	q.cluster_name = "nope";
	check_query(f, &q, total);
	memset(&q, 0, sizeof(q));
	q.decision = "allow";
	q.datacenter = "fra02";
	q.cluster_name = "hipaaCluster";
	q.namespace_ = "ops";
	q.path_prefix = "secret/data/";
	q.image = images[0];
	check_query(f, &q, total);
}

static void
test_paging(void **state)
{
	struct fixture *f = *state;
	struct tsi_audit_query q;
	struct seqs *all = calloc(1, sizeof(*all)),
	            *page = calloc(1, sizeof(*page));
	uint64_t next = 0;
	size_t pages = 0, got = 0, i;

	assert_non_null(all);
	assert_non_null(page);
	fill(f, 120);
	assert_int_equal(tsi_audit_reader_open(f->dir, &f->r), TSI_OK);
	memset(&q, 0, sizeof(q));
	q.datacenter = "lon04";
	q.limit = SIZE_MAX;
	assert_int_equal(tsi_audit_query(f->r, &q, collect, all, &next),
	    TSI_OK);
	assert_int_equal(all->n, 40);
	q.limit = 7;
	q.after_seq = 0;
	do {
		page->n = 0;
		assert_int_equal(tsi_audit_query(f->r, &q, collect, page,
		                     &next),
		    TSI_OK);
		assert_true(page->n <= 7);
		for (i = 0; i < page->n; i++)
			assert_int_equal(page->v[i], all->v[got + i]);
		got += page->n;
		pages++;
		if (next != 0)
			assert_int_equal(next, page->v[page->n - 1]);
		q.after_seq = next;
	} while (next != 0);
	assert_int_equal(got, 40);
	assert_int_equal(pages, 6); /* 7*5 + 5 */

	/* default limit and unfiltered paging */
	memset(&q, 0, sizeof(q));
	page->n = 0;
	assert_int_equal(tsi_audit_query(f->r, &q, collect, page, &next),
	    TSI_OK);
	assert_int_equal(page->n, 100);
	assert_int_equal(next, 100);
	q.after_seq = next;
	page->n = 0;
	assert_int_equal(tsi_audit_query(f->r, &q, collect, page, &next),
	    TSI_OK);
	assert_int_equal(page->n, 20);
	assert_int_equal(page->v[0], 101);
	assert_int_equal(next, 0);

	/* the callback stops the walk */
	memset(&q, 0, sizeof(q));
	q.decision = "deny";
	page->n = 0;
	page->stop_after = 3;
	assert_int_equal(tsi_audit_query(f->r, &q, collect, page, &next),
	    TSI_OK);
	assert_int_equal(page->n, 3);
	assert_int_equal(next, page->v[2]);
	free(all);
	free(page);
}

static void
test_reopen_continues(void **state)
{
	struct fixture *f = *state;
	struct tsi_audit_verify_result vr;
	struct tsi_audit *second = NULL;

	fill(f, 10);
	/* one writer per log */
	assert_int_equal(tsi_audit_open(f->dir, NULL, &second), TSI_ERR_EXISTS);
	assert_null(second);
	tsi_audit_close(f->a);
	f->a = NULL;
	assert_int_equal(tsi_audit_open(f->dir, NULL, &f->a), TSI_OK);
	assert_int_equal(append(f->a,
	                     test_rec("read", "p/q", "allow", "d", "c", "n",
	                         images[0])),
	    11);
	assert_int_equal(tsi_audit_reader_open(f->dir, &f->r), TSI_OK);
	assert_int_equal(tsi_audit_verify(f->r, &vr), TSI_OK);
	assert_int_equal(vr.records, 11);
	assert_int_equal(vr.first_bad_seq, 0);
}

/* A reader in another process while the writer keeps appending. */
static void
test_reader_other_process(void **state)
{
	struct fixture *f = *state;
	int go[2], res[2], status = 0;
	uint64_t counts[2] = { 0, 0 };
	char c = 0;
	pid_t pid;

	/* fork before anything of LMDB is open in this process */
	tsi_audit_close(f->a);
	f->a = NULL;
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(res), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct tsi_audit_reader *r = NULL;
		struct tsi_audit_verify_result vr;
		struct tsi_audit_info info;
		int ok;

		if (read(go[0], &c, 1) != 1)
			_exit(3);
		ok = tsi_audit_reader_open(f->dir, &r) == TSI_OK &&
		    tsi_audit_reader_info(r, &info) == TSI_OK &&
		    tsi_audit_verify(r, &vr) == TSI_OK;
		counts[0] = ok ? info.last_seq : 0;
		counts[1] = ok ? vr.records : 0;
		if (write(res[1], counts, sizeof(counts)) != sizeof(counts))
			_exit(4);
		tsi_audit_reader_close(r);
		_exit(ok ? 0 : 5);
	}
	assert_int_equal(tsi_audit_open(f->dir, NULL, &f->a), TSI_OK);
	fill(f, 25);
	assert_int_equal(write(go[1], "g", 1), 1);
	assert_int_equal(read(res[0], counts, sizeof(counts)), sizeof(counts));
	fill(f, 5); /* the writer goes on after the reader */
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(counts[0], 25);
	assert_int_equal(counts[1], 25);
	close(go[0]);
	close(go[1]);
	close(res[0]);
	close(res[1]);
}

static void
test_reader_missing_dir(void **state)
{
	struct fixture *f = *state;
	struct tsi_audit_reader *r = NULL;
	char path[600];

	snprintf(path, sizeof(path), "%s/nope", f->dir);
	assert_int_equal(tsi_audit_reader_open(path, &r), TSI_ERR_NOT_FOUND);
	assert_null(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_append_get, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_secrets_stripped, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_records, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_query_filters, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_paging, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_continues, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reader_other_process,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_missing_dir, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
