/*
 * settings.h - tsi-vault's settings (main.c reads them from the config file or
 * the --dev flags).
 */
#ifndef TSI_VAULT_SETTINGS_H
#define TSI_VAULT_SETTINGS_H

#include <stddef.h>

/* Settings, from the config file or the --dev flags. All strings owned. */
struct vault_sinks_cfg;

struct vault_settings {
	int dev;
	char *listen;
	char *tls_cert;
	char *tls_key;
	char *data_dir;
	char *policy_dir;
	char **trust_ca;
	size_t n_trust_ca;
	char *audience;
	char *kv_key_file;
	char *root_token_file;
	char *dev_root_token;
	char *revocation_file;
	char *cluster_name;
	size_t max_body;
	long long threads;
	long long workers;
	long long conn_limit;
	long long per_ip_limit;
	long long conn_timeout;
	long long request_timeout;
	long long max_tokens;
	char *kv_url; /* NULL: lmdb://<data_dir>/kv */
	size_t kv_map_size;
	long long kv_max_versions;
	size_t audit_map_size;
	size_t audit_map_max;
	long long audit_commit_timeout_ms;
	long long audit_batch_max;
	long long audit_commit_delay_us;
	long long audit_retain_seconds;
	size_t audit_retain_bytes;
	char *audit_head_key;
	long long audit_head_interval;
	/* Added with issue 15.1 (docs/vault.md "Failed logins"): */
	long long login_fail_limit;          /* per source and window; 0: off */
	long long login_fail_window;         /* seconds */
	long long audit_reserve_bytes;       /* -1: 1/8 of the largest map */
	long long audit_keep_allow_s;        /* audit_release_min_age */
	struct vault_sinks_cfg *audit_sinks; /* audit_sinks; NULL: none */
};

void vault_settings_clear(struct vault_settings *s);

#endif /* TSI_VAULT_SETTINGS_H */
