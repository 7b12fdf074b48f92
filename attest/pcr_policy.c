/*
 * pcr_policy.c - named sets of allowed PCR values, checked at enrollment.
 *
 *   pcr_policies = (
 *     { name = "worker-2026-11";
 *       allow = ( { pcr0 = "<64 hex>"; pcr7 = "<64 hex>"; },   # one set
 *                 { pcr0 = "<64 hex>"; pcr7 = "<64 hex>"; } ); # or another
 *     } );
 *
 * A quote matches a policy when every PCR named in one of its sets has that
 * value; PCRs a set does not name are not constrained (firmware updates
 * change some PCRs and not others). Only sha256 PCRs 0..7 are quoted. The
 * file is reloaded on SIGHUP; a file with any error is refused as a whole,
 * with "file:line: reason", and the previous policies stay.
 */
#include "attest.h"

#include "tsi/config.h"
#include "tsi/err.h"
#include "tsi/hex.h"

#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
attest_pcr_free(struct attest_pcr_policies *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->n; i++) {
		free(p->p[i].name);
		free(p->p[i].sets);
	}
	free(p->p);
	free(p);
}

static int
load_set(const char *file, config_setting_t *s, struct attest_pcr_set *out,
    char *err, size_t errlen)
{
	int i, n = config_setting_length(s);

	if (!config_setting_is_group(s) || n == 0) {
		tsi_errf(err, errlen,
		    "%s:%d: an allow entry must be a non-empty "
		    "group of pcrN = \"hex\"",
		    file, config_setting_source_line(s));
		return TSI_ERR_CONFIG;
	}
	for (i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *nm = config_setting_name(e), *v;
		int idx;

		if (nm == NULL || strncmp(nm, "pcr", 3) != 0 || nm[3] < '0' ||
		    nm[3] > '7' || nm[4] != '\0') {
			tsi_errf(err, errlen,
			    "%s:%d: '%s': expected pcr0 .. pcr7 "
			    "(sha256 PCRs 0-7 are quoted)",
			    file, config_setting_source_line(e), nm ? nm : "?");
			return TSI_ERR_CONFIG;
		}
		idx = nm[3] - '0';
		if ((v = config_setting_get_string(e)) == NULL ||
		    strlen(v) != 64 ||
		    tsi_hex_decode(v, out->value[idx], 32, TSI_HEX_ANY_CASE) !=
		        TSI_OK) {
			tsi_errf(err, errlen,
			    "%s:%d: %s must be 64 hex digits "
			    "(a SHA-256 PCR value)",
			    file, config_setting_source_line(e), nm);
			return TSI_ERR_CONFIG;
		}
		out->mask |= (uint8_t)(1u << idx);
	}
	return TSI_OK;
}

int
attest_pcr_load(const char *path, struct attest_pcr_policies **out, char *err,
    size_t errlen)
{
	static const char *const keys[] = { "pcr_policies", NULL };
	struct tsi_config *c = NULL;
	struct attest_pcr_policies *p = NULL;
	config_setting_t *list;
	const char *file;
	int i, j, n, r;

	if ((r = tsi_config_load(path, &c, err, errlen)) != TSI_OK)
		return TSI_ERR_CONFIG;
	if ((r = tsi_config_check_keys(c, keys, err, errlen)) != TSI_OK)
		goto out;
	file = tsi_config_file(c);
	r = TSI_ERR_CONFIG;
	list = config_lookup((config_t *)tsi_config_raw(c), "pcr_policies");
	if (list == NULL || !config_setting_is_aggregate(list) ||
	    config_setting_is_group(list)) {
		tsi_errf(err, errlen,
		    "%s:%d: pcr_policies must be a list of "
		    "{ name; allow; } groups",
		    file, list ? config_setting_source_line(list) : 1);
		goto out;
	}
	n = config_setting_length(list);
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (n > 0 && (p->p = calloc((size_t)n, sizeof(*p->p))) == NULL)) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < n; i++) {
		config_setting_t *g =
		    config_setting_get_elem(list, (unsigned)i);
		config_setting_t *allow;
		const char *name = NULL;
		struct attest_pcr_policy *pol = &p->p[i];

		if (!config_setting_is_group(g) ||
		    config_setting_lookup_string(g, "name", &name) !=
		        CONFIG_TRUE ||
		    *name == '\0' || strlen(name) > 64) {
			tsi_errf(err, errlen,
			    "%s:%d: each policy needs a name "
			    "(1-64 characters)",
			    file, config_setting_source_line(g));
			goto out;
		}
		if (attest_pcr_find(p, name) != NULL) {
			tsi_errf(err, errlen,
			    "%s:%d: policy '%s' defined twice", file,
			    config_setting_source_line(g), name);
			goto out;
		}
		allow = config_setting_get_member(g, "allow");
		if (allow == NULL || !config_setting_is_aggregate(allow) ||
		    config_setting_is_group(allow) ||
		    config_setting_length(allow) == 0) {
			tsi_errf(err, errlen,
			    "%s:%d: policy '%s': allow must be a "
			    "non-empty list of PCR sets",
			    file, config_setting_source_line(allow ? allow : g),
			    name);
			goto out;
		}
		if (config_setting_length(g) != 2) {
			tsi_errf(err, errlen,
			    "%s:%d: policy '%s': only name and "
			    "allow are known",
			    file, config_setting_source_line(g), name);
			goto out;
		}
		pol->n_sets = (size_t)config_setting_length(allow);
		if ((pol->sets = calloc(pol->n_sets, sizeof(*pol->sets))) ==
		        NULL ||
		    (pol->name = strdup(name)) == NULL) {
			r = TSI_ERR_ALLOC;
			goto out;
		}
		p->n = (size_t)i + 1;
		for (j = 0; j < (int)pol->n_sets; j++)
			if ((r = load_set(file,
			         config_setting_get_elem(allow, (unsigned)j),
			         &pol->sets[j], err, errlen)) != TSI_OK)
				goto out;
		r = TSI_ERR_CONFIG;
	}
	*out = p;
	p = NULL;
	r = TSI_OK;
out:
	attest_pcr_free(p);
	tsi_config_free(c);
	return r;
}

const struct attest_pcr_policy *
attest_pcr_find(const struct attest_pcr_policies *p, const char *name)
{
	size_t i;

	if (p == NULL || name == NULL)
		return NULL;
	for (i = 0; i < p->n; i++)
		if (p->p[i].name != NULL && strcmp(p->p[i].name, name) == 0)
			return &p->p[i];
	return NULL;
}

int
attest_pcr_match(const struct attest_pcr_policy *pol,
    const uint8_t values[ATTEST_PCRS][32])
{
	size_t s;
	int i, ok;

	for (s = 0; s < pol->n_sets; s++) {
		ok = 1;
		for (i = 0; i < ATTEST_PCRS && ok; i++)
			if ((pol->sets[s].mask & (1u << i)) &&
			    memcmp(pol->sets[s].value[i], values[i], 32) != 0)
				ok = 0;
		if (ok)
			return 1;
	}
	return 0;
}
