#include "swtpm_ek.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int
test_run_quiet(char *const argv[], const char *out_path)
{
	int status;
	pid_t pid;

	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		int dn = open("/dev/null", O_RDWR), of = -1;
		if (out_path != NULL)
			of = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (dn >= 0) {
			dup2(dn, 0);
			dup2(of >= 0 ? of : dn, 1);
			dup2(dn, 2);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

unsigned char *
test_read_file(const char *path, size_t max, size_t *len)
{
	unsigned char *buf;
	size_t n = 0;
	ssize_t k;
	int fd;

	if ((fd = open(path, O_RDONLY)) < 0)
		return NULL;
	if ((buf = malloc(max + 1)) == NULL) {
		close(fd);
		return NULL;
	}
	while (n < max && (k = read(fd, buf + n, max - n)) > 0)
		n += (size_t)k;
	close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
}

int
test_write_file(const char *path, const void *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, p, len) == (ssize_t)len;
	return close(fd) == 0 && ok ? 0 : -1;
}

static int
write_text(const char *path, const char *text)
{
	return test_write_file(path, text, strlen(text));
}

int
test_swtpm_ek_start(struct test_swtpm_ek *e)
{
	char conf[320], caconf[320], opts[320], text[2048], state[300];
	char ekdir[300];
	int n;

	memset(e, 0, sizeof(*e));
	if (test_mkdtemp(e->dir, sizeof(e->dir), "ekca") != 0)
		return -1;
	/* A first start picks a free port pair and makes the state dir; the
	 * state is then manufactured with swtpm stopped. */
	if (test_swtpm_start(&e->tpm) != 0)
		return -1;
	test_swtpm_kill(&e->tpm, SIGTERM);
	snprintf(conf, sizeof(conf), "%s/swtpm_setup.conf", e->dir);
	snprintf(caconf, sizeof(caconf), "%s/swtpm-localca.conf", e->dir);
	snprintf(opts, sizeof(opts), "%s/swtpm-localca.options", e->dir);
	snprintf(ekdir, sizeof(ekdir), "%s/ek", e->dir);
	n = snprintf(text, sizeof(text),
	    "statedir = %s\nsigningkey = %s/signkey.pem\n"
	    "issuercert = %s/issuercert.pem\ncertserial = %s/certserial\n",
	    e->dir, e->dir, e->dir, e->dir);
	if (n < 0 || (size_t)n >= sizeof(text) || write_text(caconf, text) != 0)
		return -1;
	n = snprintf(text, sizeof(text),
	    "create_certs_tool = swtpm_localca\n"
	    "create_certs_tool_config = %s\ncreate_certs_tool_options = %s\n"
	    "active_pcr_banks = sha256\n", caconf, opts);
	if (n < 0 || (size_t)n >= sizeof(text) || write_text(conf, text) != 0 ||
	    write_text(opts, "--platform-manufacturer tsi-test\n"
	    "--platform-version 2.1\n--platform-model swtpm\n") != 0 ||
	    mkdir(ekdir, 0700) != 0)
		return -1;
	snprintf(state, sizeof(state), "%s", e->tpm.dir);
	{
		char *argv[] = { "swtpm_setup", "--tpm2", "--tpm-state", state,
		    "--create-ek-cert", "--overwrite", "--config", conf,
		    "--write-ek-cert-files", ekdir, NULL };
		if (test_run_quiet(argv, NULL) != 0)
			return -1;
	}
	snprintf(e->ek_cert, sizeof(e->ek_cert), "%s/ek-rsa2048.crt", ekdir);
	snprintf(e->ca_cert, sizeof(e->ca_cert), "%s/issuercert.pem", e->dir);
	return test_swtpm_restart(&e->tpm);
}

void
test_swtpm_ek_cleanup(struct test_swtpm_ek *e)
{
	test_swtpm_cleanup(&e->tpm);
	test_rmtree(e->dir);
}
