/*
 * lmdb_raw.c - the limit for the audit log's group commit: how many records
 * per second LMDB commits durably when they are written in synced batches
 * (one mdb_txn_commit, so one fsync, per batch), with nothing else in the way.
 *
 *   lmdb_raw --dir D [--seconds N] [--batch 256] [--record-bytes 600]
 *
 * D must exist and be on the disk the audit log would use (not a tmpfs).
 * Keys are 8-byte big-endian sequence numbers (appended, MDB_APPEND) and
 * values are record-sized bytes, as an audit log writes them. Prints one JSON
 * object: {"records", "commits", "seconds", "records_per_sec",
 * "commits_per_sec", "batch", "record_bytes"}. Exit 0, 1 on an LMDB failure,
 * 2 on bad usage.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lmdb.h>

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
usage(void)
{
	fprintf(stderr,
	    "usage: lmdb_raw --dir D [--seconds N] [--batch B] "
	    "[--record-bytes R]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	const char *dir = NULL;
	double seconds = 3, t0, t1;
	long batch = 256, rec_bytes = 600;
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	char *val = NULL;
	uint64_t seq = 0;
	unsigned long long commits = 0;
	int i, rc, ret = 1;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
			batch = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--record-bytes") == 0 && i + 1 < argc)
			rec_bytes = strtol(argv[++i], NULL, 10);
		else
			return usage();
	}
	if (dir == NULL || seconds <= 0 || batch < 1 || batch > 100000 ||
	    rec_bytes < 1 || rec_bytes > 65536)
		return usage();
	if ((val = malloc((size_t)rec_bytes)) == NULL)
		goto out;
	memset(val, 'a', (size_t)rec_bytes);

	if ((rc = mdb_env_create(&env)) != 0 ||
	    (rc = mdb_env_set_mapsize(env, (size_t)8 << 30)) != 0 ||
	    (rc = mdb_env_open(env, dir, 0, 0600)) != 0) {
		fprintf(stderr, "lmdb_raw: open %s: %s\n", dir,
		    mdb_strerror(rc));
		goto out;
	}
	if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, NULL, 0, &dbi)) != 0 ||
	    (rc = mdb_txn_commit(txn)) != 0) {
		txn = NULL;
		fprintf(stderr, "lmdb_raw: dbi: %s\n", mdb_strerror(rc));
		goto out;
	}
	txn = NULL;

	t0 = now_s();
	t1 = t0;
	while (t1 - t0 < seconds) {
		long k;

		if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0)
			goto lmdb_fail;
		for (k = 0; k < batch; k++) {
			unsigned char kb[8];
			MDB_val key = { sizeof(kb), kb };
			MDB_val v = { (size_t)rec_bytes, val };
			int b;

			seq++;
			for (b = 0; b < 8; b++)
				kb[b] = (unsigned char)(seq >> (56 - 8 * b));
			val[0] = (char)('a' + seq % 26);
			if ((rc = mdb_put(txn, dbi, &key, &v, MDB_APPEND)) != 0)
				goto lmdb_fail;
		}
		rc = mdb_txn_commit(txn); /* synced: MDB_NOSYNC is not set */
		txn = NULL;
		if (rc != 0)
			goto lmdb_fail;
		commits++;
		t1 = now_s();
	}
	printf("{\"records\": %llu, \"commits\": %llu, \"seconds\": %.3f, "
	       "\"records_per_sec\": %.1f, \"commits_per_sec\": %.1f, "
	       "\"batch\": %ld, \"record_bytes\": %ld}\n",
	    (unsigned long long)seq, commits, t1 - t0, (double)seq / (t1 - t0),
	    (double)commits / (t1 - t0), batch, rec_bytes);
	ret = 0;
	goto out;
lmdb_fail:
	fprintf(stderr, "lmdb_raw: %s\n", mdb_strerror(rc));
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (env != NULL)
		mdb_env_close(env);
	free(val);
	return ret;
}
