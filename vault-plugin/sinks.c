/*
 * sinks.c - tsi-vault's audit sinks (docs/audit.md "Sinks"): the
 * audit_sinks setting, starting and stopping the sinks next to the audit
 * log, reopening file sinks on SIGHUP, and their metrics.
 */
#include "vault.h"
#include "settings.h"
#include "sinks.h"

#include "tsi/audit.h"
#include "tsi/audit_sink.h"
#include "tsi/buf.h"
#include "tsi/config.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

struct vault_sinks_cfg {
	size_t n;
	struct tsi_audit_sink_cfg *c; /* strings owned, freed with it */
};

void
vault_sinks_cfg_free(struct vault_sinks_cfg *sc)
{
	size_t i;

	if (sc == NULL)
		return;
	for (i = 0; i < sc->n; i++) {
		free((char *)sc->c[i].name);
		free((char *)sc->c[i].path);
		free((char *)sc->c[i].address);
		free((char *)sc->c[i].tag);
	}
	free(sc->c);
	free(sc);
}

/* Configuration is read once at start: running out of memory there ends
 * the program, as main.c's settings do. */
static char *
xstrdup(const char *s)
{
	char *d;

	if ((d = strdup(s)) == NULL) {
		fputs("tsi-vault: out of memory\n", stderr);
		exit(1);
	}
	return d;
}

/* Which keys each type takes (beyond name and type). */
static int
key_allowed(enum tsi_audit_sink_type t, const char *k)
{
	switch (t) {
	case TSI_AUDIT_SINK_FILE: return strcmp(k, "path") == 0;
	case TSI_AUDIT_SINK_UNIX:
		return strcmp(k, "path") == 0 || strcmp(k, "replay_bytes") == 0;
	case TSI_AUDIT_SINK_TCP:
		return strcmp(k, "address") == 0 ||
		    strcmp(k, "replay_bytes") == 0;
	case TSI_AUDIT_SINK_SYSLOG:
		return strcmp(k, "path") == 0 || strcmp(k, "facility") == 0 ||
		    strcmp(k, "tag") == 0 || strcmp(k, "max_message") == 0;
	}
	return 0;
}

static int
parse_one(const char *file, config_setting_t *g, size_t idx,
    struct tsi_audit_sink_cfg *out, char *err, size_t errlen)
{
	static const char *const types[] = { "file", "unix", "tcp", "syslog" };
	int line = config_setting_source_line(g);
	const char *type = NULL, *s;
	char why[160];
	config_setting_t *m;
	long long ll;
	int i, fac;

	if (!config_setting_is_group(g)) {
		snprintf(err, errlen,
		    "%s:%d: audit_sinks: each sink is a group "
		    "{ type = \"...\"; ... }",
		    file, line);
		return TSI_ERR_CONFIG;
	}
	if (config_setting_lookup_string(g, "type", &type) != CONFIG_TRUE) {
		snprintf(err, errlen,
		    "%s:%d: audit_sinks[%zu]: type (\"file\", "
		    "\"unix\", \"tcp\" or \"syslog\") is required",
		    file, line, idx);
		return TSI_ERR_CONFIG;
	}
	for (i = 0; i < 4; i++)
		if (strcmp(type, types[i]) == 0)
			out->type = (enum tsi_audit_sink_type)(i + 1);
	if (out->type == 0) {
		snprintf(err, errlen,
		    "%s:%d: audit_sinks[%zu]: type '%s': file, "
		    "unix, tcp or syslog",
		    file, line, idx, type);
		return TSI_ERR_CONFIG;
	}
	out->facility = LOG_LOCAL0;
	for (i = 0; (m = config_setting_get_elem(g, (unsigned)i)) != NULL;
	     i++) {
		const char *k = config_setting_name(m);
		int ml = config_setting_source_line(m);

		if (strcmp(k, "type") == 0)
			continue;
		if (strcmp(k, "name") != 0 && !key_allowed(out->type, k)) {
			snprintf(err, errlen,
			    "%s:%d: audit_sinks[%zu]: '%s' is "
			    "not a setting of a %s sink",
			    file, ml, idx, k, type);
			return TSI_ERR_CONFIG;
		}
		if (strcmp(k, "max_message") == 0 ||
		    strcmp(k, "replay_bytes") == 0) {
			if (config_setting_type(m) != CONFIG_TYPE_INT &&
			    config_setting_type(m) != CONFIG_TYPE_INT64) {
				snprintf(err, errlen,
				    "%s:%d: audit_sinks[%zu]: '%s' "
				    "must be an integer",
				    file, ml, idx, k);
				return TSI_ERR_CONFIG;
			}
			ll = config_setting_get_int64(m);
			if (ll < 0 || ll > (1LL << 30)) {
				snprintf(err, errlen,
				    "%s:%d: audit_sinks[%zu]: '%s' "
				    "out of range",
				    file, ml, idx, k);
				return TSI_ERR_CONFIG;
			}
			if (k[0] == 'm')
				out->max_message = (size_t)ll;
			else
				out->replay_bytes = (size_t)ll;
			continue;
		}
		if ((s = config_setting_get_string(m)) == NULL) {
			snprintf(err, errlen,
			    "%s:%d: audit_sinks[%zu]: '%s' must be "
			    "a string",
			    file, ml, idx, k);
			return TSI_ERR_CONFIG;
		}
		if (strcmp(k, "facility") == 0) {
			if (tsi_audit_sink_facility(s, &fac) != TSI_OK) {
				snprintf(err, errlen,
				    "%s:%d: audit_sinks[%zu]: "
				    "facility '%s': kern, user, daemon, auth, "
				    "authpriv or local0..local7",
				    file, ml, idx, s);
				return TSI_ERR_CONFIG;
			}
			out->facility = fac;
			continue;
		}
		if (strcmp(k, "name") == 0)
			out->name = xstrdup(s);
		else if (strcmp(k, "path") == 0)
			out->path = xstrdup(s);
		else if (strcmp(k, "address") == 0)
			out->address = xstrdup(s);
		else
			out->tag = xstrdup(s);
	}
	if (out->name == NULL)
		out->name =
		    xstrdup(type); /* one sink of a type needs no name */
	if (tsi_audit_sink_check(out, why, sizeof(why)) != TSI_OK) {
		snprintf(err, errlen, "%s:%d: audit_sinks[%zu] '%s': %s", file,
		    line, idx, out->name, why);
		return TSI_ERR_CONFIG;
	}
	return TSI_OK;
}

int
vault_sinks_parse(const struct tsi_config *c, struct vault_sinks_cfg **out,
    char *err, size_t errlen)
{
	config_setting_t *list, *g;
	struct vault_sinks_cfg *sc = NULL;
	const char *file = tsi_config_file(c);
	size_t i, j, n;
	int r = TSI_ERR_CONFIG;

	*out = NULL;
	list = config_lookup((config_t *)tsi_config_raw(c), "audit_sinks");
	if (list == NULL)
		return TSI_OK;
	if (!config_setting_is_list(list) && !config_setting_is_array(list)) {
		snprintf(err, errlen,
		    "%s:%d: audit_sinks must be a list of "
		    "groups: ( { type = \"file\"; path = \"...\"; }, ... )",
		    file, config_setting_source_line(list));
		return TSI_ERR_CONFIG;
	}
	n = (size_t)config_setting_length(list);
	if ((sc = calloc(1, sizeof(*sc))) == NULL ||
	    (sc->c = calloc(n ? n : 1, sizeof(*sc->c))) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < n; i++) {
		g = config_setting_get_elem(list, (unsigned)i);
		sc->n = i + 1;
		if ((r = parse_one(file, g, i, &sc->c[i], err, errlen)) !=
		    TSI_OK)
			goto out;
		for (j = 0; j < i; j++)
			if (strcmp(sc->c[i].name, sc->c[j].name) == 0) {
				snprintf(err, errlen,
				    "%s:%d: audit_sinks[%zu]: name "
				    "'%s' is used twice (give each sink a "
				    "name)",
				    file, config_setting_source_line(g), i,
				    sc->c[i].name);
				r = TSI_ERR_CONFIG;
				goto out;
			}
	}
	*out = sc;
	sc = NULL;
	r = TSI_OK;
out:
	vault_sinks_cfg_free(sc);
	return r;
}

int
vault_sinks_start(struct vault *v)
{
	const struct vault_sinks_cfg *sc = v->set->audit_sinks;
	struct tsi_audit_sinks_opts o;
	char state[4096];
	int r;

	if (sc == NULL || sc->n == 0)
		return TSI_OK;
	memset(&o, 0, sizeof(o));
	/* next to the audit data, not in it: the store's directory is
	 * LMDB's */
	if (snprintf(state, sizeof(state), "%s/audit-sinks",
	        v->set->data_dir) >= (int)sizeof(state))
		return TSI_ERR_TOO_LARGE;
	o.state_dir = state;
	r = tsi_audit_sinks_start(v->audit_dir, sc->c, sc->n, &o, &v->sinks);
	if (r != TSI_OK)
		return r;
	tsi_audit_set_durable_cb(v->audit, tsi_audit_sinks_notify, v->sinks);
	return TSI_OK;
}

void
vault_sinks_stop(struct vault *v)
{
	if (v->sinks == NULL)
		return;
	if (v->audit != NULL)
		tsi_audit_set_durable_cb(v->audit, NULL, NULL);
	tsi_audit_sinks_stop(v->sinks);
	v->sinks = NULL;
}

void
vault_sinks_reopen(struct vault *v)
{
	tsi_audit_sinks_reopen(v->sinks);
}

int
vault_sinks_metrics(struct vault *v, struct tsi_buf *b)
{
	struct tsi_audit_sink_stat st;
	size_t i, n = tsi_audit_sinks_count(v->sinks);
	int r;

	if (n == 0)
		return TSI_OK;
	if ((r = tsi_buf_puts(b,
	         "# HELP tsi_vault_audit_sink_lag Records durable in the audit "
	         "log "
	         "that the sink has not been sent yet.\n"
	         "# TYPE tsi_vault_audit_sink_lag gauge\n")) != TSI_OK)
		return r;
	for (i = 0; i < n && r == TSI_OK; i++)
		if ((r = tsi_audit_sinks_stat(v->sinks, i, &st)) == TSI_OK)
			r = tsi_buf_putf(b,
			    "tsi_vault_audit_sink_lag{sink=\"%s\","
			    "type=\"%s\"} %llu\n",
			    st.name, st.type, (unsigned long long)st.lag);
	if (r == TSI_OK)
		r = tsi_buf_puts(b,
		    "# HELP tsi_vault_audit_sink_up 1 while the "
		    "sink is open or connected and its last write worked.\n"
		    "# TYPE tsi_vault_audit_sink_up gauge\n");
	for (i = 0; i < n && r == TSI_OK; i++)
		if ((r = tsi_audit_sinks_stat(v->sinks, i, &st)) == TSI_OK)
			r = tsi_buf_putf(b,
			    "tsi_vault_audit_sink_up{sink=\"%s\"} "
			    "%d\n",
			    st.name, st.up);
	if (r == TSI_OK)
		r = tsi_buf_puts(b,
		    "# HELP tsi_vault_audit_sink_errors_total "
		    "Failed opens, connects and writes of the sink.\n"
		    "# TYPE tsi_vault_audit_sink_errors_total counter\n");
	for (i = 0; i < n && r == TSI_OK; i++)
		if ((r = tsi_audit_sinks_stat(v->sinks, i, &st)) == TSI_OK)
			r = tsi_buf_putf(b,
			    "tsi_vault_audit_sink_errors_total{"
			    "sink=\"%s\"} %llu\n",
			    st.name, (unsigned long long)st.errors);
	if (r == TSI_OK)
		r = tsi_buf_puts(b,
		    "# HELP tsi_vault_audit_sink_sent_total "
		    "Lines written to the sink (repeats after a break "
		    "included)."
		    "\n# TYPE tsi_vault_audit_sink_sent_total counter\n");
	for (i = 0; i < n && r == TSI_OK; i++)
		if ((r = tsi_audit_sinks_stat(v->sinks, i, &st)) == TSI_OK)
			r = tsi_buf_putf(b,
			    "tsi_vault_audit_sink_sent_total{"
			    "sink=\"%s\"} %llu\n",
			    st.name, (unsigned long long)st.sent);
	return r;
}
