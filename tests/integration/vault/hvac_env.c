/*
 * hvac_env: runs a command against a real tsi-vault (TLS, policies, a
 * secret, identity JWTs), for the hvac client test. Environment given to
 * the command: VAULT_ADDR, VAULT_CACERT, VAULT_ROOT_TOKEN, TSI_ROLE,
 * TSI_JWT (image X on a dal05 node: may read secret/medical/record1),
 * TSI_JWT_ELSEWHERE (the same image on a wdc01 node: may not).
 * Exit: the command's exit code; 1 when the server failed or did not stop
 * cleanly.
 */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char policy[] =
    "roles = ( { name = \"demo\"; rules = [ \"medical-records\" ]; token_ttl = "
    "300; } );\n"
    "rules = ( { name = \"medical-records\"; paths = [ "
    "\"secret/data/medical/*\" ];\n"
    "  capabilities = [ \"read\" ];\n"
    "  match = { images = [ \"%s\" ]; cluster-name = [ \"hipaaCluster\" ];\n"
    "            datacenter = [ \"dal05\" ]; }; } );\n";

int
main(int argc, char **argv)
{
	struct vfx f;
	struct vfx_node a, b;
	struct vresp r;
	char img[72], text[1024];
	char *jwt_a = NULL, *jwt_b = NULL;
	pid_t pid;
	int st, code = 1;

	if (argc < 2) {
		fprintf(stderr, "usage: hvac_env COMMAND [ARGS...]\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	vfx_image("image-x", img);
	snprintf(text, sizeof(text), policy, img);
	if (vfx_init(&f, text, NULL) != 0 ||
	    vfx_node_new(&f, "hipaaCluster", "us-south", "dal05", "node-a",
	        &a) != 0 ||
	    vfx_node_new(&f, "hipaaCluster", "us-south", "wdc01", "node-b",
	        &b) != 0 ||
	    vfx_start(&f) != 0) {
		fprintf(stderr, "hvac_env: cannot set up the server\n");
		vfx_cleanup(&f);
		return 1;
	}
	if (vfx_http(&f, NULL, "POST", "/v1/secret/data/medical/record1",
	        f.root,
	        "{\"data\":{\"patient\":\"HVAC-MEDSECRET\",\"ward\":\"7\"}}",
	        &r) != 0 ||
	    r.status != 200) {
		fprintf(stderr, "hvac_env: cannot store the secret\n");
		vresp_clear(&r);
		goto out;
	}
	vresp_clear(&r);
	jwt_a = vfx_jwt(&a, img, "prod", NULL, 300);
	jwt_b = vfx_jwt(&b, img, "prod", NULL, 300);
	if (jwt_a == NULL || jwt_b == NULL)
		goto out;
	pid = fork();
	if (pid == 0) {
		setenv("VAULT_ADDR", f.addr, 1);
		setenv("VAULT_CACERT", f.tls_ca, 1);
		setenv("VAULT_ROOT_TOKEN", f.root, 1);
		setenv("TSI_ROLE", "demo", 1);
		setenv("TSI_JWT", jwt_a, 1);
		setenv("TSI_JWT_ELSEWHERE", jwt_b, 1);
		execv(argv[1], argv + 1);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		goto out;
	code = WEXITSTATUS(st);
out:
	if (vfx_stop(&f) != 0) {
		vfx_dump_log(&f);
		code = 1;
	}
	free(jwt_a);
	free(jwt_b);
	vfx_node_free(&a);
	vfx_node_free(&b);
	vfx_cleanup(&f);
	return code;
}
