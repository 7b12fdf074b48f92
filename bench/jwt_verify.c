/*
 * jwt_verify.c - the login's cryptographic work on its own: tsi_jwt_verify
 * over tokens minted by mint_tokens, on THREADS threads, for SECONDS.
 *
 * Shows how many logins/s the verification alone allows, before HTTP,
 * policy and audit; compare with openssl's verifies/s (a token from the
 * delegated issuer costs one signature check for the JWT plus one per
 * certificate of its x5c chain unless verified chains are cached).
 *
 *   jwt_verify --ca PEM --tokens FILE [--threads 2] [--seconds 2]
 *
 * Prints one JSON object: {"verified", "refused", "seconds",
 * "verifies_per_sec", "threads", "chain_cache_hits", "chain_cache_misses"}.
 * Exit 0 when every token verified, 1
 * otherwise (the first reason is printed), 2 on bad usage.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "tsi/err.h"
#include "tsi/jwt.h"

struct worker {
	pthread_t th;
	const struct tsi_trust *trust;
	char **toks;
	size_t ntoks, start;
	double deadline;
	unsigned long long ok, refused;
	char reason[320];
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
run(void *arg)
{
	struct worker *w = arg;
	struct tsi_verify_opts o = { NULL, 0, -1 };
	size_t i = w->start;

	while (now_s() < w->deadline) {
		struct tsi_verify_result res;
		json_t *claims = NULL;

		memset(&res, 0, sizeof(res));
		if (tsi_jwt_verify(w->trust, w->toks[i], &o, &claims, &res) ==
		    TSI_OK) {
			w->ok++;
			json_decref(claims);
		} else {
			if (w->refused++ == 0)
				snprintf(w->reason, sizeof(w->reason), "%s: %s",
				    tsi_jwt_reason_name(res.reason),
				    res.detail);
		}
		i = (i + 1) % w->ntoks;
	}
	return NULL;
}

static int
usage(void)
{
	fprintf(stderr,
	    "usage: jwt_verify --ca PEM --tokens FILE [--threads N] "
	    "[--seconds S]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	const char *ca = NULL, *tok_path = NULL;
	long threads = 2, k;
	double seconds = 2, t0, t1;
	struct tsi_trust *trust = NULL;
	struct tsi_trust_cache_stats st;
	struct worker *ws = NULL;
	char **toks = NULL, *line = NULL;
	size_t ntoks = 0, cap = 0, lcap = 0;
	ssize_t len;
	unsigned long long ok = 0, refused = 0;
	FILE *f = NULL;
	int i, r, ret = 1;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--ca") == 0 && i + 1 < argc)
			ca = argv[++i];
		else if (strcmp(argv[i], "--tokens") == 0 && i + 1 < argc)
			tok_path = argv[++i];
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else
			return usage();
	}
	if (ca == NULL || tok_path == NULL || threads < 1 || threads > 64 ||
	    seconds <= 0)
		return usage();
	if ((r = tsi_trust_new(&trust)) != TSI_OK ||
	    (r = tsi_trust_add_ca_file(trust, ca)) != TSI_OK) {
		fprintf(stderr, "jwt_verify: CA %s: %s\n", ca, tsi_strerror(r));
		goto out;
	}
	if ((f = fopen(tok_path, "r")) == NULL) {
		fprintf(stderr, "jwt_verify: cannot read %s\n", tok_path);
		goto out;
	}
	while ((len = getline(&line, &lcap, f)) > 0) {
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		if (len == 0)
			continue;
		if (ntoks == cap) {
			size_t nc = cap ? cap * 2 : 1024;
			char **nt = realloc(toks, nc * sizeof(*nt));

			if (nt == NULL)
				goto out;
			toks = nt;
			cap = nc;
		}
		if ((toks[ntoks] = strdup(line)) == NULL)
			goto out;
		ntoks++;
	}
	if (ntoks == 0) {
		fprintf(stderr, "jwt_verify: no tokens in %s\n", tok_path);
		goto out;
	}
	if ((ws = calloc((size_t)threads, sizeof(*ws))) == NULL)
		goto out;
	t0 = now_s();
	for (k = 0; k < threads; k++) {
		ws[k].trust = trust;
		ws[k].toks = toks;
		ws[k].ntoks = ntoks;
		ws[k].start = (size_t)k * ntoks / (size_t)threads;
		ws[k].deadline = t0 + seconds;
		if (pthread_create(&ws[k].th, NULL, run, &ws[k]) != 0) {
			threads = k;
			break;
		}
	}
	for (k = 0; k < threads; k++) {
		pthread_join(ws[k].th, NULL);
		ok += ws[k].ok;
		refused += ws[k].refused;
		if (ws[k].reason[0] != '\0')
			fprintf(stderr, "jwt_verify: refused: %s\n",
			    ws[k].reason);
	}
	t1 = now_s();
	tsi_trust_cache_stats(trust, &st);
	printf("{\"verified\": %llu, \"refused\": %llu, \"seconds\": %.3f, "
	       "\"verifies_per_sec\": %.1f, \"threads\": %ld, "
	       "\"chain_cache_hits\": %llu, \"chain_cache_misses\": %llu}\n",
	    ok, refused, t1 - t0, (double)ok / (t1 - t0), threads, st.hits,
	    st.misses);
	ret = ok > 0 && refused == 0 ? 0 : 1;
out:
	if (f != NULL)
		fclose(f);
	free(line);
	while (ntoks > 0)
		free(toks[--ntoks]);
	free(toks);
	free(ws);
	tsi_trust_free(trust);
	return ret;
}
