/*
 * test_resolve.c - the workload resolvers with real inputs: cgroup files as
 * containerd, CRI-O and docker write them (v1 and v2), a kubelet pod list in
 * the Kubernetes API shape served over real HTTPS on loopback, and the unix
 * resolver against this test's own process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "issuer/config.h"
#include "issuer/resolve.h"
#include "issuer/workload.h"
#include "tsi/err.h"
#include "tsi/log.h"

#define ID_A "c5db4e65cf90b61747fa2bf1b37295a021bb47b46fedd8263c85736f17668f0d"
#define ID_B "5e9ccdcb49b7d3447e11f726fda63d1a428a1cbf2a5daa8768ec751bbdf8630b"
#define ID_C "5f148eb03ef10a862e575a6ac16c8e18ebb61bcd9d94b6930219a08136368f49"
#define ID_D "a8d02110354a1aeead63a6cb73ae93328c4479e7daf4bb45ac1e7988c6d92e3e"
#define ID_E "07c954812b06b815efbf699943bd8fb2a9710572e2f9c5348c69aa6c9fba95ba"
#define ID_F "e569522d4e1d32cd4f78f804eaa4ba916c4a2df63f56e439a8bae74cdba3c9b0"
#define ID_G "325862cd5b94a81feb9f10a41a21e1fa1382b399b3945e62fffb64fe23ad1ac2"
#define ID_H "098b532bc0943523f9d8195445db0e3fd9d75f4aee7e72b65bda4a25a2108674"
#define IMG_APP \
	"sha256:" \
	"4eafe76675ab94d8c303323cfa4ec605f5d0a9a3b24a1b8db03f8f4e89c127f4"
#define IMG_SIDECAR \
	"sha256:" \
	"2c758e98d175d61c757efc1ab35d10c954167294462fb00c6d26c148df4c7580"
#define IMG_INIT \
	"sha256:" \
	"8bce96250e4a1c418a4d329f66312c880cf565127d6229c6d58442c78d486908"
#define IMG_WEB2 \
	"sha256:" \
	"fab0be4995c4ae7441f57b7bb59fca113787bd97ffef3c1ba67474b82729b610"
#define IMG_SETUP \
	"sha256:" \
	"f7e96ad0b20ae5394c4b495ecc7899a556460598d87d4c0cda4f6563b790f3f0"

static int
cg(const char *text, char id[65])
{
	return tsi_cgroup_container_id(text, strlen(text), id);
}

static void
test_cgroup_containerd(void **state)
{
	char id[65];

	/* cgroup v2, systemd driver */
	assert_int_equal(cg("0::/kubepods.slice/kubepods-besteffort.slice/"
	                    "kubepods-besteffort-pod4f6a1c1e_1111_4a7e_9d1b_"
	                    "0a1b2c3d4e5f.slice/"
	                    "cri-containerd-" ID_A ".scope\n",
	                     id),
	    TSI_OK);
	assert_string_equal(id, ID_A);
	/* cgroup v1, cgroupfs driver: every controller names the container */
	assert_int_equal(cg("12:memory:/kubepods/burstable/"
	                    "pod4f6a1c1e-1111-4a7e-9d1b-0a1b2c3d4e5f/" ID_B "\n"
	                    "11:cpu,cpuacct:/kubepods/burstable/"
	                    "pod4f6a1c1e-1111-4a7e-9d1b-0a1b2c3d4e5f/" ID_B "\n"
	                    "10:devices:/kubepods/burstable/"
	                    "pod4f6a1c1e-1111-4a7e-9d1b-0a1b2c3d4e5f/" ID_B "\n"
	                    "9:pids:/kubepods/burstable/"
	                    "pod4f6a1c1e-1111-4a7e-9d1b-0a1b2c3d4e5f/" ID_B "\n"
	                    "1:name=systemd:/kubepods/burstable/"
	                    "pod4f6a1c1e-1111-4a7e-9d1b-0a1b2c3d4e5f/" ID_B "\n"
	                    "0::/\n",
	                     id),
	    TSI_OK);
	assert_string_equal(id, ID_B);
	/* cgroup v1, systemd driver */
	assert_int_equal(cg("11:freezer:/kubepods.slice/kubepods-pod1.slice/"
	                    "cri-containerd-" ID_C ".scope\n"
	                    "4:memory:/kubepods.slice/kubepods-pod1.slice/"
	                    "cri-containerd-" ID_C ".scope\n",
	                     id),
	    TSI_OK);
	assert_string_equal(id, ID_C);
}

static void
test_cgroup_crio_docker(void **state)
{
	char id[65];

	assert_int_equal(cg("0::/kubepods.slice/kubepods-burstable.slice/"
	                    "kubepods-burstable-pod1234.slice/crio-" ID_E
	                    ".scope\n",
	                     id),
	    TSI_OK);
	assert_string_equal(id, ID_E);
	/* v1 CRI-O: the conmon scope is not a container */
	assert_int_equal(
	    cg("8:memory:/kubepods.slice/kubepods-pod1.slice/crio-" ID_D
	       ".scope\n"
	       "7:pids:/kubepods.slice/kubepods-pod1.slice/crio-" ID_D
	       ".scope\n",
	        id),
	    TSI_OK);
	assert_string_equal(id, ID_D);
	assert_int_equal(cg("0::/system.slice/crio-conmon-" ID_D ".scope\n",
	                     id),
	    TSI_ERR_NOT_FOUND);
	/* docker, v1 cgroupfs and v2 systemd */
	assert_int_equal(cg("13:cpuset:/docker/" ID_F "\n4:memory:/docker/" ID_F
	                    "\n",
	                     id),
	    TSI_OK);
	assert_string_equal(id, ID_F);
	assert_int_equal(cg("0::/system.slice/docker-" ID_G ".scope\n", id),
	    TSI_OK);
	assert_string_equal(id, ID_G);
}

/*
 * One container id in the path resolves to it, also when the process sits
 * in a cgroup the container made below its own (systemd inside the
 * container, a runtime's init scope). Paths naming two ids (nested
 * containers) are the resolver's refusal, tested with it.
 */
static void
test_cgroup_one_id_below(void **state)
{
	char id[65];

	assert_int_equal(cg("0::/kubepods.slice/kubepods-burstable.slice/"
	                    "kubepods-burstable-pod1234.slice/"
	                    "cri-containerd-" ID_A ".scope/"
	                    "init.scope\n",
	                     id),
	    TSI_OK);
	assert_string_equal(id, ID_A);
	assert_int_equal(cg("0::/kubepods.slice/kubepods-pod1.slice/crio-" ID_E
	                    ".scope/system.slice/nginx.service\n",
	                     id),
	    TSI_OK);
	assert_string_equal(id, ID_E);
	assert_int_equal(cg("12:memory:/kubepods/burstable/"
	                    "pod4f6a1c1e-1111-4a7e-9d1b-0a1b2c3d4e5f/" ID_B
	                    "/app\n"
	                    "1:name=systemd:/kubepods/burstable/"
	                    "pod4f6a1c1e-1111-4a7e-9d1b-0a1b2c3d4e5f/" ID_B
	                    "/app\n",
	                     id),
	    TSI_OK);
	assert_string_equal(id, ID_B);
	assert_int_equal(cg("0::/system.slice/docker-" ID_G ".scope/"
	                    "user.slice/session-1.scope\n",
	                     id),
	    TSI_OK);
	assert_string_equal(id, ID_G);
}

static void
test_cgroup_refusals(void **state)
{
	char id[65];

	/* host processes are in no container */
	assert_int_equal(cg("0::/user.slice/user-1000.slice/session-3.scope\n",
	                     id),
	    TSI_ERR_NOT_FOUND);
	assert_int_equal(cg("0::/init.scope\n", id), TSI_ERR_NOT_FOUND);
	assert_int_equal(cg("", id), TSI_ERR_NOT_FOUND);
	/* lines that disagree are ambiguous */
	assert_int_equal(cg("4:memory:/docker/" ID_F "\n3:pids:/docker/" ID_G
	                    "\n",
	                     id),
	    TSI_ERR_PARSE);
	/* not a cgroup file */
	assert_int_equal(cg("hello world\n", id), TSI_ERR_PARSE);
	/* upper-case or short ids are not container ids */
	assert_int_equal(cg("0::/docker/"
	                    "C5DB4E65CF90B61747FA2BF1B37295A021BB47B46FEDD8263C"
	                    "85736F17668F0D\n",
	                     id),
	    TSI_ERR_NOT_FOUND);
	assert_int_equal(cg("0::/docker/c5db4e65\n", id), TSI_ERR_NOT_FOUND);
}

/*
 * A container that can make cgroups under its own (privileged, or a
 * systemd-in-container runtime) names a child cgroup after another
 * container: the path then names two ids and is refused, never resolved to
 * either. A child cgroup with any other name is still its container.
 */
static void
test_cgroup_nested(void **state)
{
	char id[65];

	(void)state;
	assert_int_equal(cg("0::/kubepods.slice/kubepods-besteffort.slice/"
	                    "kubepods-besteffort-pod4f6a.slice/"
	                    "cri-containerd-" ID_B ".scope/" ID_A "\n",
	                     id),
	    TSI_ERR_PARSE);
	assert_int_equal(cg("0::/kubepods.slice/cri-containerd-" ID_B
	                    ".scope/cri-containerd-" ID_A ".scope\n",
	                     id),
	    TSI_ERR_PARSE);
	assert_int_equal(cg("0::/kubepods/besteffort/podx/" ID_B "/docker/" ID_A
	                    "\n",
	                     id),
	    TSI_ERR_PARSE);
	/* the same id twice is two components naming a container too */
	assert_int_equal(cg("0::/kubepods.slice/cri-containerd-" ID_B
	                    ".scope/" ID_B "\n",
	                     id),
	    TSI_ERR_PARSE);
	/* v1: nested in every controller */
	assert_int_equal(cg("4:memory:/kubepods/podx/" ID_B "/" ID_A "\n"
	                    "3:pids:/kubepods/podx/" ID_B "/" ID_A "\n",
	                     id),
	    TSI_ERR_PARSE);
	/* a child cgroup named otherwise: the runtime's own leaf */
	assert_int_equal(cg("0::/kubepods.slice/cri-containerd-" ID_B
	                    ".scope/init.scope\n",
	                     id),
	    TSI_OK);
	assert_string_equal(id, ID_B);
}

/* cgroup v1: every controller line must name the same path. */
static void
test_cgroup_v1_disagree(void **state)
{
	char id[65];

	(void)state;
	/* one controller moved to another container */
	assert_int_equal(cg("12:memory:/kubepods/podx/" ID_B "\n"
	                    "11:pids:/kubepods/pody/" ID_A "\n",
	                     id),
	    TSI_ERR_PARSE);
	/* one controller outside any container */
	assert_int_equal(cg("12:memory:/kubepods/podx/" ID_B "\n"
	                    "11:pids:/\n",
	                     id),
	    TSI_ERR_PARSE);
	assert_int_equal(cg("12:memory:/\n"
	                    "11:pids:/kubepods/podx/" ID_B "\n",
	                     id),
	    TSI_ERR_PARSE);
	/* the same id under another pod path still disagrees */
	assert_int_equal(cg("12:memory:/kubepods/podx/" ID_B "\n"
	                    "11:pids:/kubepods/pody/" ID_B "\n",
	                     id),
	    TSI_ERR_PARSE);
	/* one controller in a child cgroup of the container */
	assert_int_equal(cg("12:memory:/kubepods/podx/" ID_B "\n"
	                    "11:pids:/kubepods/podx/" ID_B "/sub\n",
	                     id),
	    TSI_ERR_PARSE);
	/* hybrid: the unified line naming another container */
	assert_int_equal(cg("12:memory:/kubepods/podx/" ID_B "\n"
	                    "0::/kubepods.slice/cri-containerd-" ID_A
	                    ".scope\n",
	                     id),
	    TSI_ERR_PARSE);
	/* hybrid: the unified line the same path, or systemd's own */
	assert_int_equal(cg("12:memory:/kubepods/podx/" ID_B "\n"
	                    "0::/kubepods/podx/" ID_B "\n",
	                     id),
	    TSI_OK);
	assert_string_equal(id, ID_B);
	assert_int_equal(cg("12:memory:/kubepods/podx/" ID_B "\n"
	                    "0::/system.slice/containerd.service\n",
	                     id),
	    TSI_OK);
	assert_string_equal(id, ID_B);
	/* two unified lines */
	assert_int_equal(cg("0::/docker/" ID_F "\n0::/docker/" ID_F "\n", id),
	    TSI_ERR_PARSE);
}

static json_t *
load_pods(void)
{
	char path[1024];
	json_error_t e;
	json_t *j;

	snprintf(path, sizeof(path), "%s/tests/data/issuer/pods.json",
	    getenv("TSI_SOURCE_DIR") ? getenv("TSI_SOURCE_DIR") : ".");
	j = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
	assert_non_null(j);
	return j;
}

static char *sidecars[] = { IMG_SIDECAR };

static void
test_pod_several_containers(void **state)
{
	json_t *pods = load_pods();
	struct tsi_workload *w = NULL;

	assert_int_equal(tsi_kubelet_pod_lookup(pods, ID_A, sidecars, 1,
	                     "node-1", &w),
	    TSI_OK);
	assert_string_equal(w->namespace, "medical");
	assert_string_equal(w->pod, "records-7d9f8b6c5-x2x4q");
	assert_string_equal(w->service_account, "records-sa");
	assert_string_equal(w->container, "app");
	/* every image of the pod, sorted, the sidecar left out */
	assert_int_equal(w->n_images, 2);
	assert_string_equal(w->images[0], IMG_APP);
	assert_string_equal(w->images[1], IMG_INIT);
	assert_int_equal(w->n_image_names, 2);
	assert_string_equal(w->image_names[0], "busybox:1.36");
	assert_string_equal(w->image_names[1],
	    "registry.example/medical/app:1.2");
	tsi_workload_free(w);
	w = NULL;

	/* The sidecar asks for its pod: same pod identity. */
	assert_int_equal(tsi_kubelet_pod_lookup(pods, ID_B, sidecars, 1, NULL,
	                     &w),
	    TSI_OK);
	assert_string_equal(w->pod, "records-7d9f8b6c5-x2x4q");
	assert_int_equal(w->n_images, 2);
	tsi_workload_free(w);
	w = NULL;

	/* Without a sidecar list, its image counts like any other. */
	assert_int_equal(tsi_kubelet_pod_lookup(pods, ID_A, NULL, 0, NULL, &w),
	    TSI_OK);
	assert_int_equal(w->n_images, 3);
	assert_int_equal(w->n_image_names, 3);
	tsi_workload_free(w);
	json_decref(pods);
}

static void
test_pod_init_and_terminated(void **state)
{
	json_t *pods = load_pods();
	struct tsi_workload *w = NULL;

	/* A running init container, the main container still waiting. */
	assert_int_equal(tsi_kubelet_pod_lookup(pods, ID_G, sidecars, 1,
	                     "node-1", &w),
	    TSI_OK);
	assert_string_equal(w->namespace, "ops");
	assert_string_equal(w->service_account, "legacy");
	assert_string_equal(w->container, "setup");
	assert_int_equal(w->n_images, 1);
	assert_string_equal(w->images[0], IMG_SETUP);
	assert_int_equal(w->n_image_names, 2);
	tsi_workload_free(w);
	w = NULL;

	/* Terminated containers identify nobody. */
	assert_int_equal(tsi_kubelet_pod_lookup(pods, ID_C, sidecars, 1, NULL,
	                     &w),
	    TSI_ERR_UNIDENTIFIED);
	assert_int_equal(tsi_kubelet_pod_lookup(pods, ID_D, sidecars, 1, NULL,
	                     &w),
	    TSI_ERR_UNIDENTIFIED);
	assert_null(w);

	/* CRI-O id, upper-case digest normalised, service account default. */
	assert_int_equal(tsi_kubelet_pod_lookup(pods, ID_E, sidecars, 1, NULL,
	                     &w),
	    TSI_OK);
	assert_string_equal(w->service_account, "default");
	assert_string_equal(w->images[w->n_images - 1], IMG_WEB2);
	tsi_workload_free(w);
	w = NULL;

	/* A container in no pod; a pod of another node. */
	assert_int_equal(tsi_kubelet_pod_lookup(pods, ID_F, sidecars, 1, NULL,
	                     &w),
	    TSI_ERR_UNIDENTIFIED);
	assert_int_equal(tsi_kubelet_pod_lookup(pods, ID_H, sidecars, 1,
	                     "node-1", &w),
	    TSI_ERR_UNIDENTIFIED);
	assert_null(w);
	json_decref(pods);
}

static void
test_pod_bad_image_refused(void **state)
{
	/* A good image followed by one without a digest: the pod is refused
	 * as a whole (an unknown image could slip past a policy). */
	const char *text =
	    "{\"items\": [{"
	    "\"metadata\": {\"name\": \"p\", \"namespace\": \"n\"},"
	    "\"spec\": {\"containers\": [{\"name\": \"a\", \"image\": \"a:1\"},"
	    "  {\"name\": \"b\", \"image\": \"b:1\"}]},"
	    "\"status\": {\"containerStatuses\": ["
	    "  {\"name\": \"a\", \"containerID\": \"containerd://" ID_A "\","
	    "   \"imageID\": \"" IMG_APP "\", \"state\": {\"running\": {}}},"
	    "  {\"name\": \"b\", \"containerID\": \"containerd://" ID_B "\","
	    "   \"imageID\": \"b:1\", \"state\": {\"running\": {}}}]}}]}";
	struct tsi_workload *w = NULL;
	json_t *pods = json_loads(text, 0, NULL);

	assert_non_null(pods);
	assert_int_equal(tsi_kubelet_pod_lookup(pods, ID_A, NULL, 0, NULL, &w),
	    TSI_ERR_PARSE);
	assert_null(w);
	/* The caller's own image without a digest: refused too. */
	assert_int_equal(tsi_kubelet_pod_lookup(pods, ID_B, NULL, 0, NULL, &w),
	    TSI_ERR_PARSE);
	assert_null(w);
	json_decref(pods);
}

/* Two pods (or one pod twice) claiming one container id: nobody, whichever
 * comes first, and whatever state each claims. */
#define DUP_PODS(state) \
	"{\"items\": [{" \
	"\"metadata\": {\"name\": \"victim\", \"namespace\": \"medical\"}," \
	"\"spec\": {\"nodeName\": \"node-1\", \"containers\": [{\"name\": " \
	"\"a\", \"image\": \"a:1\"}]}," \
	"\"status\": {\"containerStatuses\": [" \
	"  {\"name\": \"a\", \"containerID\": \"containerd://" ID_A "\"," \
	"   \"imageID\": \"" IMG_APP "\", \"state\": {\"running\": {}}}]}}," \
	"{\"metadata\": {\"name\": \"claimer\", \"namespace\": \"tenant\"}," \
	"\"spec\": {\"nodeName\": \"node-1\", \"containers\": [{\"name\": " \
	"\"b\", \"image\": \"b:1\"}]}," \
	"\"status\": {\"containerStatuses\": [" \
	"  {\"name\": \"b\", \"containerID\": \"containerd://" ID_A "\"," \
	"   \"imageID\": \"" IMG_WEB2 "\", \"state\": {\"" state \
	"\": {}}}]}}]}"

static void
test_pod_duplicate_id(void **state)
{
	static const char *texts[] = { DUP_PODS("running"),
		DUP_PODS("terminated"), DUP_PODS("waiting") };
	struct tsi_workload *w = NULL;
	json_t *pods;
	size_t i;

	(void)state;
	for (i = 0; i < 3; i++) {
		assert_non_null(pods = json_loads(texts[i], 0, NULL));
		assert_int_equal(tsi_kubelet_pod_lookup(pods, ID_A, NULL, 0,
		                     "node-1", &w),
		    TSI_ERR_UNIDENTIFIED);
		assert_null(w);
		json_decref(pods);
	}
	/* One pod listing the id twice (a container and an ephemeral one). */
	pods = json_loads(
	    "{\"items\": [{"
	    "\"metadata\": {\"name\": \"p\", \"namespace\": \"n\"},"
	    "\"spec\": {\"containers\": [{\"name\": \"a\", \"image\": "
	    "\"a:1\"}]},"
	    "\"status\": {\"containerStatuses\": ["
	    "  {\"name\": \"a\", \"containerID\": \"containerd://" ID_A "\","
	    "   \"imageID\": \"" IMG_APP "\", \"state\": {\"running\": {}}}],"
	    " \"ephemeralContainerStatuses\": ["
	    "  {\"name\": \"dbg\", \"containerID\": \"cri-o://" ID_A "\","
	    "   \"imageID\": \"" IMG_WEB2
	    "\", \"state\": {\"running\": {}}}]}}]}",
	    0, NULL);
	assert_non_null(pods);
	assert_int_equal(tsi_kubelet_pod_lookup(pods, ID_A, NULL, 0, NULL, &w),
	    TSI_ERR_UNIDENTIFIED);
	assert_null(w);
	json_decref(pods);
}

/* The streamed, pruned list answers every lookup as the whole list does,
 * however the text is cut into pieces. */
static void
test_podlist_stream(void **state)
{
	static const char *ids[] = { ID_A, ID_B, ID_C, ID_D, ID_E, ID_F, ID_G,
		ID_H };
	static const size_t chunks[] = { 1, 7, 4096, (size_t)-1 };
	char path[1024], *text = NULL;
	json_t *full = load_pods(), *pruned;
	struct tsi_podlist_parser *p;
	size_t len = 0, c, off, i;

	(void)state;
	snprintf(path, sizeof(path), "%s/tests/data/issuer/pods.json",
	    getenv("TSI_SOURCE_DIR") ? getenv("TSI_SOURCE_DIR") : ".");
	assert_int_equal(tsi_read_small_file(path, 1 << 20, &text, &len),
	    TSI_OK);
	for (c = 0; c < 4; c++) {
		assert_int_equal(tsi_podlist_parser_new(&p), TSI_OK);
		for (off = 0; off < len;
		     off += chunks[c] < len - off ? chunks[c] : len - off)
			assert_int_equal(tsi_podlist_parser_feed(p, text + off,
			                     chunks[c] < len - off ? chunks[c]
			                                           : len - off),
			    TSI_OK);
		assert_int_equal(tsi_podlist_parser_finish(p, &pruned), TSI_OK);
		tsi_podlist_parser_free(p);
		for (i = 0; i < 8; i++) {
			struct tsi_workload *w1 = NULL, *w2 = NULL;
			int r1 = tsi_kubelet_pod_lookup(full, ids[i], sidecars,
			    1, NULL, &w1);
			int r2 = tsi_kubelet_pod_lookup(pruned, ids[i],
			    sidecars, 1, NULL, &w2);
			size_t k;

			assert_int_equal(r1, r2);
			if (r1 == TSI_OK) {
				assert_string_equal(w1->namespace,
				    w2->namespace);
				assert_string_equal(w1->pod, w2->pod);
				assert_string_equal(w1->service_account,
				    w2->service_account);
				assert_int_equal(w1->n_images, w2->n_images);
				for (k = 0; k < w1->n_images; k++)
					assert_string_equal(w1->images[k],
					    w2->images[k]);
				assert_int_equal(w1->n_image_names,
				    w2->n_image_names);
			}
			tsi_workload_free(w1);
			tsi_workload_free(w2);
		}
		/* Only what the lookup reads is kept. */
		assert_null(json_object_get(
		    json_object_get(json_array_get(json_object_get(pruned,
		                                       "items"),
		                        0),
		        "metadata"),
		    "uid"));
		json_decref(pruned);
	}
	/* Not a pod list, or cut short. */
	assert_int_equal(tsi_podlist_parse("{\"items\": [1]}", 14, &pruned),
	    TSI_ERR_PARSE);
	assert_int_equal(tsi_podlist_parse("{\"items\": [], \"items\": []}", 26,
	                     &pruned),
	    TSI_ERR_PARSE);
	assert_int_equal(tsi_podlist_parse(text, len - 2, &pruned),
	    TSI_ERR_PARSE);
	free(text);
	json_decref(full);
}

static void
test_digest_normalize(void **state)
{
	char d[72];

	assert_int_equal(tsi_image_digest_normalize("docker-pullable://alpine@"
	                                            "sha256:"
	                                            "F7E96AD0B20AE5394C4B495ECC"
	                                            "7899A556460598D87D4C0CDA4F"
	                                            "6563B790F3F0",
	                     d),
	    TSI_OK);
	assert_string_equal(d, IMG_SETUP);
	assert_int_equal(tsi_image_digest_normalize(IMG_APP, d), TSI_OK);
	assert_string_equal(d, IMG_APP);
	assert_int_equal(tsi_image_digest_normalize("alpine:3.19", d),
	    TSI_ERR_PARSE);
	assert_int_equal(tsi_image_digest_normalize("", d), TSI_ERR_PARSE);
	assert_int_equal(tsi_image_digest_normalize("x" IMG_APP, d),
	    TSI_ERR_PARSE);
}

/* --- kubelet over real HTTPS ------------------------------------------ */

struct kfx {
	char dir[256];
	char cert[512], key[512], pods[512], proc[512];
	pid_t server;
	int port;
};

static int
rm_one(const char *p, const struct stat *sb, int f, struct FTW *ftw)
{
	return remove(p);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static void
copy_file(const char *from, const char *to)
{
	char buf[65536];
	size_t n;
	FILE *a = fopen(from, "r"), *b = fopen(to, "w");

	assert_non_null(a);
	assert_non_null(b);
	while ((n = fread(buf, 1, sizeof(buf), a)) > 0)
		assert_int_equal(fwrite(buf, 1, n, b), n);
	fclose(a);
	assert_int_equal(fclose(b), 0);
}

/* A self-signed P-256 certificate for 127.0.0.1. */
static void
make_cert(const char *certp, const char *keyp)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_EXTENSION *ext;
	X509V3_CTX ctx;
	FILE *f;

	assert_non_null(k);
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)"kubelet", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name,
	    "IP:127.0.0.1");
	assert_non_null(ext);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	assert_non_null(f = fopen(certp, "w"));
	PEM_write_X509(f, x);
	fclose(f);
	assert_non_null(f = fopen(keyp, "w"));
	PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(k);
}

static int
kubelet_setup(void **state)
{
	static struct kfx f;
	char src[1024], script[1024], line[32];
	int pfd[2];
	FILE *in;

	memset(&f, 0, sizeof(f));
	tsi_log_init("test_resolve", TSI_LOG_ERROR);
	snprintf(f.dir, sizeof(f.dir), "/tmp/tsi-kubelet-XXXXXX");
	if (mkdtemp(f.dir) == NULL)
		return -1;
	snprintf(f.cert, sizeof(f.cert), "%s/kubelet.pem", f.dir);
	snprintf(f.key, sizeof(f.key), "%s/kubelet.key", f.dir);
	snprintf(f.pods, sizeof(f.pods), "%s/pods.json", f.dir);
	snprintf(f.proc, sizeof(f.proc), "%s/proc", f.dir);
	make_cert(f.cert, f.key);
	snprintf(src, sizeof(src), "%s/tests/data/issuer/pods.json",
	    getenv("TSI_SOURCE_DIR") ? getenv("TSI_SOURCE_DIR") : ".");
	copy_file(src, f.pods);
	snprintf(script, sizeof(script),
	    "%s/tests/data/issuer/kubelet_server.py",
	    getenv("TSI_SOURCE_DIR") ? getenv("TSI_SOURCE_DIR") : ".");
	if (pipe(pfd) != 0)
		return -1;
	if ((f.server = fork()) == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		execl("/usr/bin/python3", "python3", script, f.cert, f.key,
		    f.pods, "s3cret-token", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	in = fdopen(pfd[0], "r");
	if (in == NULL || fgets(line, sizeof(line), in) == NULL)
		return -1;
	fclose(in);
	f.port = atoi(line);
	*state = &f;
	return f.port > 0 ? 0 : -1;
}

static int
kubelet_teardown(void **state)
{
	struct kfx *f = *state;

	if (f->server > 0) {
		kill(f->server, SIGTERM);
		waitpid(f->server, NULL, 0);
	}
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* A fake /proc entry for pid with this cgroup file. */
static void
fake_proc(struct kfx *f, int pid, const char *cgroup)
{
	char p[1024];

	mkdir(f->proc, 0700);
	snprintf(p, sizeof(p), "%s/%d", f->proc, pid);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/%d/cgroup", f->proc, pid);
	write_file(p, cgroup);
}

static struct tsi_issuer_config *
kubelet_config(struct kfx *f, const char *token)
{
	struct tsi_issuer_config *c = NULL;
	char text[4096], tokpath[600], err[256];

	snprintf(tokpath, sizeof(tokpath), "%s/token", f->dir);
	write_file(tokpath, token);
	snprintf(text, sizeof(text),
	    "trust_domain = \"tsi.example\";\n"
	    "resolver = \"kubelet\";\n"
	    "proc_root = \"%s\";\n"
	    "kubelet_url = \"https://127.0.0.1:%d\";\n"
	    "kubelet_token_file = \"%s\";\n"
	    "kubelet_ca_file = \"%s\";\n"
	    "kubelet_cache_ms = 60000;\n"
	    "node_name = \"node-1\";\n"
	    "sidecar_images = [ \"" IMG_SIDECAR "\" ];\n",
	    f->proc, f->port, tokpath, f->cert);
	assert_int_equal(tsi_issuer_config_load_string("kubelet.conf", text, &c,
	                     err, sizeof(err)),
	    TSI_OK);
	return c;
}

static int
count_requests(struct kfx *f)
{
	char p[600], line[8];
	FILE *in;
	int n = 0;

	snprintf(p, sizeof(p), "%s.count", f->pods);
	if ((in = fopen(p, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), in) != NULL)
		n++;
	fclose(in);
	return n;
}

static void
test_kubelet_https(void **state)
{
	struct kfx *f = *state;
	struct tsi_issuer_config *cfg = kubelet_config(f, "s3cret-token\n");
	struct tsi_kubelet *k = NULL;
	struct tsi_workload *w = NULL;
	json_t *pods = NULL;
	int before;

	fake_proc(f, 4242,
	    "0::/kubepods.slice/kubepods-besteffort.slice/"
	    "kubepods-besteffort-pod4f6a.slice/cri-containerd-" ID_A
	    ".scope\n");
	fake_proc(f, 4343, "0::/user.slice/user-1000.slice/session-2.scope\n");
	fake_proc(f, 4444, "12:memory:/kubepods/besteffort/podx/" ID_F "\n");
	fake_proc(f, 4545,
	    "0::/kubepods.slice/cri-containerd-" ID_D ".scope\n");
	assert_int_equal(tsi_kubelet_new(cfg, &k), TSI_OK);

	assert_int_equal(tsi_kubelet_fetch(k, &pods), TSI_OK);
	assert_int_equal(json_array_size(json_object_get(pods, "items")), 4);
	json_decref(pods);

	assert_int_equal(tsi_kubelet_resolve(k, 4242, &w), TSI_OK);
	assert_string_equal(w->namespace, "medical");
	assert_int_equal(w->n_images, 2);
	tsi_workload_free(w);
	w = NULL;

	/* Cached: a second lookup asks the kubelet nothing. */
	before = count_requests(f);
	assert_int_equal(tsi_kubelet_resolve(k, 4242, &w), TSI_OK);
	tsi_workload_free(w);
	w = NULL;
	assert_int_equal(count_requests(f), before);

	/* A host process, an unknown container, a terminated container. */
	assert_int_equal(tsi_kubelet_resolve(k, 4343, &w),
	    TSI_ERR_UNIDENTIFIED);
	usleep(150000);
	assert_int_equal(tsi_kubelet_resolve(k, 4444, &w),
	    TSI_ERR_UNIDENTIFIED);
	/* ... which was a miss, so the list was fetched again. */
	assert_int_equal(count_requests(f), before + 1);
	usleep(150000);
	assert_int_equal(tsi_kubelet_resolve(k, 4545, &w),
	    TSI_ERR_UNIDENTIFIED);
	/* A pid that does not exist. */
	assert_int_equal(tsi_kubelet_resolve(k, 999999, &w),
	    TSI_ERR_UNIDENTIFIED);
	assert_null(w);
	/* Container E made a cgroup inside its own named after A (a running
	 * container of another pod): neither identity. */
	fake_proc(f, 4646,
	    "0::/kubepods.slice/kubepods-burstable.slice/"
	    "kubepods-burstable-pod1234.slice/crio-" ID_E ".scope/" ID_A "\n");
	assert_int_equal(tsi_kubelet_resolve(k, 4646, &w),
	    TSI_ERR_UNIDENTIFIED);
	assert_null(w);
	/* v1: one controller moved into A's cgroup. */
	fake_proc(f, 4747,
	    "12:memory:/kubepods/besteffort/podx/" ID_E "\n"
	    "11:pids:/kubepods/besteffort/pody/" ID_A "\n");
	assert_int_equal(tsi_kubelet_resolve(k, 4747, &w),
	    TSI_ERR_UNIDENTIFIED);
	assert_null(w);
	tsi_kubelet_free(k);
	tsi_issuer_config_free(cfg);
}

/*
 * What the kubelet serves decides 403 against 503: a container id claimed
 * twice is refused (403); a list that is malformed or cut short is the
 * kubelet's failure, not the caller's (503, retry).
 */
static void
test_kubelet_list_faults(void **state)
{
	struct kfx *f = *state;
	struct tsi_issuer_config *cfg = kubelet_config(f, "s3cret-token\n");
	struct tsi_kubelet *k = NULL;
	struct tsi_workload *w = NULL;
	char *full = NULL, path[1024];
	size_t len = 0, i;
	static const char *bad[] = { "", "{", "[]", "{\"items\": {}}",
		"{\"items\": [1]}", "{\"kind\": \"PodList\"}", NULL };

	fake_proc(f, 5151,
	    "0::/kubepods.slice/cri-containerd-" ID_A ".scope\n");
	write_file(f->pods, DUP_PODS("running"));
	assert_int_equal(tsi_kubelet_new(cfg, &k), TSI_OK);
	assert_int_equal(tsi_kubelet_resolve(k, 5151, &w),
	    TSI_ERR_UNIDENTIFIED);
	assert_null(w);
	tsi_kubelet_free(k);

	/* The real list cut short at several points. */
	snprintf(path, sizeof(path), "%s/tests/data/issuer/pods.json",
	    getenv("TSI_SOURCE_DIR") ? getenv("TSI_SOURCE_DIR") : ".");
	assert_int_equal(tsi_read_small_file(path, 1 << 20, &full, &len),
	    TSI_OK);
	for (i = 1; i < 8; i++) {
		FILE *o = fopen(f->pods, "w");
		assert_non_null(o);
		assert_int_equal(fwrite(full, 1, len * i / 8, o), len * i / 8);
		assert_int_equal(fclose(o), 0);
		assert_int_equal(tsi_kubelet_new(cfg, &k), TSI_OK);
		assert_int_equal(tsi_kubelet_resolve(k, 5151, &w), TSI_ERR_IO);
		assert_null(w);
		tsi_kubelet_free(k);
	}
	for (i = 0; bad[i] != NULL; i++) {
		write_file(f->pods, bad[i]);
		assert_int_equal(tsi_kubelet_new(cfg, &k), TSI_OK);
		if (tsi_kubelet_resolve(k, 5151, &w) != TSI_ERR_IO)
			fail_msg("pod list '%s' not a 503-class failure",
			    bad[i]);
		assert_null(w);
		tsi_kubelet_free(k);
	}
	free(full);
	tsi_issuer_config_free(cfg);
}

struct miss_arg {
	struct tsi_kubelet *k;
	int r;
	long long ms;
};

static long long
mono_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *
miss_thread(void *arg)
{
	struct miss_arg *a = arg;
	struct tsi_workload *w = NULL;
	long long t0 = mono_now_ms();

	/* A container in no pod: a miss, so the list is fetched again. */
	a->r = tsi_kubelet_resolve(a->k, 4444, &w);
	a->ms = mono_now_ms() - t0;
	tsi_workload_free(w);
	return NULL;
}

/*
 * A slow kubelet (2 s per answer) must not stall callers the cached list
 * already knows: before, the fetch of a caller that missed held the lock
 * every caller takes. One fetch at a time, and after a failure no fetch
 * during the back-off (503 at once, the kubelet asked nothing).
 */
static void
test_kubelet_slow(void **state)
{
	struct kfx *f = *state;
	struct tsi_issuer_config *cfg = kubelet_config(f, "s3cret-token\n");
	struct tsi_kubelet *k = NULL;
	struct tsi_workload *w = NULL;
	struct miss_arg a1, a2;
	pthread_t t1, t2;
	char delay[600];
	long long t0, worst = 0, d;
	int before, n = 0;

	fake_proc(f, 4242,
	    "0::/kubepods.slice/cri-containerd-" ID_A ".scope\n");
	fake_proc(f, 4444, "12:memory:/kubepods/besteffort/podx/" ID_F "\n");
	assert_int_equal(tsi_kubelet_new(cfg, &k), TSI_OK);
	assert_int_equal(tsi_kubelet_resolve(k, 4242, &w), TSI_OK); /* cached */
	tsi_workload_free(w);
	w = NULL;
	snprintf(delay, sizeof(delay), "%s.delay", f->pods);
	write_file(delay, "2");
	usleep(150000); /* past the refresh floor, not a synchronisation */
	before = count_requests(f);
	a1.k = a2.k = k;
	assert_int_equal(pthread_create(&t1, NULL, miss_thread, &a1), 0);
	assert_int_equal(pthread_create(&t2, NULL, miss_thread, &a2), 0);
	/* While they wait for the slow kubelet (until both are answered,
	 * bounded by the fetch timeout), the cached caller keeps its pace. */
	t0 = mono_now_ms();
	while (count_requests(f) == before && mono_now_ms() - t0 < 5000)
		usleep(1000); /* until the fetch has reached the kubelet */
	t0 = mono_now_ms();
	while (mono_now_ms() - t0 < 1500) {
		long long s = mono_now_ms();
		assert_int_equal(tsi_kubelet_resolve(k, 4242, &w), TSI_OK);
		tsi_workload_free(w);
		w = NULL;
		if ((d = mono_now_ms() - s) > worst)
			worst = d;
		n++;
	}
	assert_int_equal(pthread_join(t1, NULL), 0);
	assert_int_equal(pthread_join(t2, NULL), 0);
	print_message("slow kubelet: %d cached lookups during a 2 s fetch, "
	              "slowest %lld ms; the misses waited %lld and %lld ms\n",
	    n, worst, a1.ms, a2.ms);
	assert_true(worst < 500);
	assert_int_equal(a1.r, TSI_ERR_UNIDENTIFIED);
	assert_int_equal(a2.r, TSI_ERR_UNIDENTIFIED);
	/* Both misses were answered by one fetch. */
	assert_int_equal(count_requests(f), before + 1);

	/* A failing kubelet: one failed fetch, then 503 at once without
	 * asking it again during the back-off. */
	unlink(delay);
	write_file(f->pods, "{");
	usleep(150000); /* past the refresh floor, not a synchronisation */
	before = count_requests(f);
	assert_int_equal(tsi_kubelet_resolve(k, 4444, &w), TSI_ERR_IO);
	t0 = mono_now_ms();
	assert_int_equal(tsi_kubelet_resolve(k, 4444, &w), TSI_ERR_IO);
	assert_true(mono_now_ms() - t0 < 100);
	assert_int_equal(count_requests(f), before + 1);
	/* The cached caller is still served from the list it is in. */
	assert_int_equal(tsi_kubelet_resolve(k, 4242, &w), TSI_OK);
	tsi_workload_free(w);
	tsi_kubelet_free(k);
	tsi_issuer_config_free(cfg);
}

/* Writes the stand-in kubelet's list: pods.json's pods after n filler
 * pods, each with an annotation of ann bytes. */
static void
write_big_list(struct kfx *f, int n, size_t ann)
{
	char src[1024], *text = NULL, *items;
	size_t len = 0, i;
	FILE *o;
	int k;

	snprintf(src, sizeof(src), "%s/tests/data/issuer/pods.json",
	    getenv("TSI_SOURCE_DIR") ? getenv("TSI_SOURCE_DIR") : ".");
	assert_int_equal(tsi_read_small_file(src, 1 << 20, &text, &len),
	    TSI_OK);
	assert_non_null(items = strstr(text, "\"items\""));
	assert_non_null(items = strchr(items, '['));
	assert_non_null(o = fopen(f->pods, "w"));
	fputs("{\"kind\": \"PodList\", \"apiVersion\": \"v1\", \"items\": [",
	    o);
	for (k = 0; k < n; k++) {
		fprintf(o,
		    "{\"metadata\": {\"name\": \"filler-%d\", \"namespace\": "
		    "\"tenant\", \"annotations\": {\"blob\": \"",
		    k);
		for (i = 0; i < ann; i++)
			fputc('a' + (int)(i % 26), o);
		fputs("\"}}, \"spec\": {\"nodeName\": \"node-1\", "
		      "\"containers\": []},"
		      " \"status\": {}},\n",
		    o);
	}
	fputs(items + 1, o);
	assert_int_equal(fclose(o), 0);
	free(text);
}

/*
 * A pod list over the old 32 MiB bound (a tenant with large annotations)
 * no longer denies every workload of the node; one pod over the per-pod
 * bound (16 MiB, ten times what etcd stores) is still refused.
 */
static void
test_kubelet_large_list(void **state)
{
	struct kfx *f = *state;
	struct tsi_issuer_config *cfg = kubelet_config(f, "s3cret-token\n");
	struct tsi_kubelet *k = NULL;
	struct tsi_workload *w = NULL;

	fake_proc(f, 4242,
	    "0::/kubepods.slice/cri-containerd-" ID_A ".scope\n");
	write_big_list(f, 40, 1024 * 1024); /* 40 MiB */
	assert_int_equal(tsi_kubelet_new(cfg, &k), TSI_OK);
	assert_int_equal(tsi_kubelet_resolve(k, 4242, &w), TSI_OK);
	assert_string_equal(w->namespace, "medical");
	assert_int_equal(w->n_images, 2);
	tsi_workload_free(w);
	w = NULL;
	tsi_kubelet_free(k);
	write_big_list(f, 1, 17 * 1024 * 1024);
	assert_int_equal(tsi_kubelet_new(cfg, &k), TSI_OK);
	assert_int_equal(tsi_kubelet_resolve(k, 4242, &w), TSI_ERR_IO);
	assert_null(w);
	tsi_kubelet_free(k);
	tsi_issuer_config_free(cfg);
}

static void
test_kubelet_refused(void **state)
{
	struct kfx *f = *state;
	struct tsi_issuer_config *cfg = kubelet_config(f, "wrong-token");
	struct tsi_kubelet *k = NULL;
	json_t *pods = NULL;
	char other[600];

	assert_int_equal(tsi_kubelet_new(cfg, &k), TSI_OK);
	/* 401 from the kubelet is an error, not an empty pod list. */
	assert_int_equal(tsi_kubelet_fetch(k, &pods), TSI_ERR_IO);
	assert_null(pods);
	tsi_kubelet_free(k);
	k = NULL;
	tsi_issuer_config_free(cfg);

	/* A CA that did not sign the kubelet's certificate. */
	cfg = kubelet_config(f, "s3cret-token");
	snprintf(other, sizeof(other), "%s/other.pem", f->dir);
	{
		char okey[600];
		snprintf(okey, sizeof(okey), "%s/other.key", f->dir);
		make_cert(other, okey);
	}
	free(cfg->kubelet_ca_file);
	cfg->kubelet_ca_file = strdup(other);
	assert_int_equal(tsi_kubelet_new(cfg, &k), TSI_OK);
	assert_int_equal(tsi_kubelet_fetch(k, &pods), TSI_ERR_IO);
	assert_null(pods);
	tsi_kubelet_free(k);
	tsi_issuer_config_free(cfg);
}

/* --- unix ----------------------------------------------------------- */

static void
test_unix_self(void **state)
{
	struct tsi_workload *w = NULL;
	char exe[4096], expect[72];
	unsigned char md[32], buf[65536];
	unsigned int mdlen;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	ssize_t n;
	FILE *f;
	size_t r;
	int i;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	/* The digest computed here from the path, independently. */
	assert_non_null(f = fopen(exe, "rb"));
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	while ((r = fread(buf, 1, sizeof(buf), f)) > 0)
		EVP_DigestUpdate(ctx, buf, r);
	fclose(f);
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	memcpy(expect, "sha256:", 7);
	for (i = 0; i < 32; i++)
		snprintf(expect + 7 + 2 * i, 3, "%02x", md[i]);

	assert_int_equal(tsi_unix_resolve("/proc", getpid(), getuid(), NULL,
	                     NULL, NULL, NULL, &w),
	    TSI_OK);
	assert_int_equal(w->kind, TSI_WORKLOAD_UNIX);
	assert_int_equal(w->uid, getuid());
	assert_string_equal(w->exe, exe);
	assert_int_equal(w->n_images, 1);
	assert_string_equal(w->images[0], expect);
	tsi_workload_free(w);
	w = NULL;
	/* Cached digest, same answer. */
	assert_int_equal(tsi_unix_resolve("/proc", getpid(), getuid(), NULL,
	                     NULL, NULL, NULL, &w),
	    TSI_OK);
	assert_string_equal(w->images[0], expect);
	tsi_workload_free(w);
	w = NULL;
	/* No such process. */
	assert_int_equal(tsi_unix_resolve("/proc", 999999, 0, NULL, NULL, NULL,
	                     NULL, &w),
	    TSI_ERR_UNIDENTIFIED);
	assert_null(w);
}

static void
fill_file(const char *path, char fill, size_t n)
{
	char buf[4096];
	int fd;

	assert_true(n <= sizeof(buf));
	memset(buf, fill, n);
	assert_true((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0700)) >= 0);
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
	assert_int_equal(close(fd), 0);
}

static char *
exe_digest(const char *proc_root)
{
	struct tsi_workload *w = NULL;
	char *d;

	assert_int_equal(tsi_unix_resolve(proc_root, 4242, 1000, NULL, NULL,
	                     NULL, NULL, &w),
	    TSI_OK);
	assert_int_equal(w->n_images, 1);
	d = strdup(w->images[0]);
	tsi_workload_free(w);
	return d;
}

/* The digest cache cannot be fooled: a binary rewritten in place (same
 * size, old mtime put back) or replaced by another file is hashed again. */
static void
test_unix_replaced_binary(void **state)
{
	char dir[] = "/tmp/tsi-exe-XXXXXX", pid_dir[512], link[600];
	char file[512], other[512];
	char *d1, *d2, *d3, *d4;
	struct stat st;
	struct timespec times[2];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(pid_dir, sizeof(pid_dir), "%s/4242", dir);
	snprintf(link, sizeof(link), "%s/exe", pid_dir);
	snprintf(file, sizeof(file), "%s/app", dir);
	snprintf(other, sizeof(other), "%s/app.new", dir);
	assert_int_equal(mkdir(pid_dir, 0700), 0);
	assert_int_equal(symlink(file, link), 0);
	fill_file(file, 'a', 1000);
	d1 = exe_digest(dir);
	/* Unchanged: the same digest. */
	d2 = exe_digest(dir);
	assert_string_equal(d1, d2);
	/* Rewritten in place within the same second, size kept, mtime put
	 * back: another digest. */
	assert_int_equal(stat(file, &st), 0);
	fill_file(file, 'b', 1000);
	times[0] = st.st_atim;
	times[1] = st.st_mtim;
	assert_int_equal(utimensat(AT_FDCWD, file, times, 0), 0);
	d3 = exe_digest(dir);
	assert_string_not_equal(d1, d3);
	/* Replaced by another file under the same name. */
	fill_file(other, 'c', 1000);
	assert_int_equal(rename(other, file), 0);
	d4 = exe_digest(dir);
	assert_string_not_equal(d3, d4);
	assert_string_not_equal(d1, d4);
	free(d1);
	free(d2);
	free(d3);
	free(d4);
	unlink(link);
	unlink(file);
	rmdir(pid_dir);
	rmdir(dir);
}

struct wake_count {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int n;
};

static void
count_wake(void *arg)
{
	struct wake_count *wc = arg;

	pthread_mutex_lock(&wc->mu);
	wc->n++;
	pthread_cond_broadcast(&wc->cv);
	pthread_mutex_unlock(&wc->mu);
}

/* Many requests of one uid for one executable not in the cache yet (a
 * multi-threaded workload's first tokens; a binary changed in the last
 * seconds, which is never cached): all wait for the one hashing and get
 * its digest; none is refused because that uid already has a file being
 * hashed (it is the same file). */
#define SAME_EXE_CALLERS 8
static void
test_unix_same_exe_concurrent(void **state)
{
	char dir[] = "/tmp/tsi-exe-XXXXXX", pid_dir[512], link[600];
	char file[512], *sync_digest, *digest[SAME_EXE_CALLERS];
	static char chunk[1 << 20];
	struct tsi_resolve_state rs[SAME_EXE_CALLERS];
	struct tsi_workload *w = NULL;
	struct tsi_exe_hasher *h = NULL;
	struct wake_count wc = { PTHREAD_MUTEX_INITIALIZER,
		PTHREAD_COND_INITIALIZER, 0 };
	struct tsi_wake wake = { count_wake, &wc };
	struct timespec until;
	int i, fd, r;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/app", dir);
	/* Large enough that its hashing is still running while the other
	 * requests come in. */
	memset(chunk, 'x', sizeof(chunk));
	assert_true((fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0700)) >= 0);
	for (i = 0; i < 128; i++)
		assert_int_equal(write(fd, chunk, sizeof(chunk)),
		    (ssize_t)sizeof(chunk));
	assert_int_equal(close(fd), 0);
	for (i = 0; i < SAME_EXE_CALLERS; i++) {
		snprintf(pid_dir, sizeof(pid_dir), "%s/%d", dir, 5000 + i);
		snprintf(link, sizeof(link), "%s/exe", pid_dir);
		assert_int_equal(mkdir(pid_dir, 0700), 0);
		assert_int_equal(symlink(file, link), 0);
	}
	assert_int_equal(tsi_exe_hasher_new(1LL << 40, &h), TSI_OK);
	memset(rs, 0, sizeof(rs));
	for (i = 0; i < SAME_EXE_CALLERS; i++) {
		r = tsi_unix_resolve(dir, 5000 + i, 1000, NULL, h, &rs[i],
		    &wake, &w);
		if (r != TSI_ERR_AGAIN)
			print_error("request %d: %s\n", i, tsi_strerror(r));
		assert_int_equal(r, TSI_ERR_AGAIN);
	}
	/* Every request is woken, once. */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 60;
	pthread_mutex_lock(&wc.mu);
	while (wc.n < SAME_EXE_CALLERS &&
	    pthread_cond_timedwait(&wc.cv, &wc.mu, &until) == 0)
		;
	r = wc.n;
	pthread_mutex_unlock(&wc.mu);
	assert_int_equal(r, SAME_EXE_CALLERS);
	assert_int_equal(tsi_unix_resolve(dir, 5000, 1000, NULL, NULL, NULL,
	                     NULL, &w),
	    TSI_OK);
	sync_digest = strdup(w->images[0]);
	tsi_workload_free(w);
	for (i = 0; i < SAME_EXE_CALLERS; i++) {
		w = NULL;
		assert_int_equal(tsi_unix_resolve(dir, 5000 + i, 1000, NULL, h,
		                     &rs[i], &wake, &w),
		    TSI_OK);
		assert_int_equal(w->n_images, 1);
		digest[i] = strdup(w->images[0]);
		assert_string_equal(digest[i], sync_digest);
		tsi_workload_free(w);
		tsi_resolve_state_clear(&rs[i]);
		free(digest[i]);
	}
	free(sync_digest);
	tsi_exe_hasher_free(h);
	assert_int_equal(wc.n, SAME_EXE_CALLERS);
	for (i = 0; i < SAME_EXE_CALLERS; i++) {
		snprintf(link, sizeof(link), "%s/%d/exe", dir, 5000 + i);
		unlink(link);
		snprintf(pid_dir, sizeof(pid_dir), "%s/%d", dir, 5000 + i);
		rmdir(pid_dir);
	}
	unlink(file);
	rmdir(dir);
}

static void
test_starttime(void **state)
{
	unsigned long long a = 0, b = 0;

	assert_int_equal(tsi_proc_starttime("/proc", getpid(), &a), TSI_OK);
	assert_int_equal(tsi_proc_starttime("/proc", getpid(), &b), TSI_OK);
	assert_true(a > 0);
	assert_true(a == b);
	assert_int_equal(tsi_proc_starttime("/proc", 1, &b), TSI_OK);
	assert_true(b <= a);
	assert_int_not_equal(tsi_proc_starttime("/proc", 999999, &b), TSI_OK);
}

/* Through an open stat file: the same start time while the process lives,
 * an error once it is gone (the file stays bound to that process). */
static void
test_starttime_fd(void **state)
{
	unsigned long long a = 0, b = 0;
	pid_t child;
	int fd;

	(void)state;
	if ((child = fork()) == 0) {
		pause();
		_exit(0);
	}
	assert_true(child > 0);
	assert_true((fd = tsi_proc_stat_open("/proc", child)) >= 0);
	assert_int_equal(tsi_proc_starttime_fd(fd, &a), TSI_OK);
	assert_int_equal(tsi_proc_starttime("/proc", child, &b), TSI_OK);
	assert_true(a > 0 && a == b);
	assert_int_equal(tsi_proc_starttime_fd(fd, &b), TSI_OK);
	assert_true(a == b);
	kill(child, SIGKILL);
	assert_int_equal(waitpid(child, NULL, 0), child);
	assert_int_not_equal(tsi_proc_starttime_fd(fd, &b), TSI_OK);
	close(fd);
	assert_true(tsi_proc_stat_open("/proc", 999999) < 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cgroup_containerd),
		cmocka_unit_test(test_cgroup_crio_docker),
		cmocka_unit_test(test_cgroup_one_id_below),
		cmocka_unit_test(test_cgroup_refusals),
		cmocka_unit_test(test_cgroup_nested),
		cmocka_unit_test(test_cgroup_v1_disagree),
		cmocka_unit_test(test_pod_several_containers),
		cmocka_unit_test(test_pod_init_and_terminated),
		cmocka_unit_test(test_pod_bad_image_refused),
		cmocka_unit_test(test_pod_duplicate_id),
		cmocka_unit_test(test_podlist_stream),
		cmocka_unit_test(test_digest_normalize),
		cmocka_unit_test_setup_teardown(test_kubelet_https,
		    kubelet_setup, kubelet_teardown),
		cmocka_unit_test_setup_teardown(test_kubelet_refused,
		    kubelet_setup, kubelet_teardown),
		cmocka_unit_test_setup_teardown(test_kubelet_list_faults,
		    kubelet_setup, kubelet_teardown),
		cmocka_unit_test_setup_teardown(test_kubelet_slow,
		    kubelet_setup, kubelet_teardown),
		cmocka_unit_test_setup_teardown(test_kubelet_large_list,
		    kubelet_setup, kubelet_teardown),
		cmocka_unit_test(test_unix_self),
		cmocka_unit_test(test_unix_replaced_binary),
		cmocka_unit_test(test_unix_same_exe_concurrent),
		cmocka_unit_test(test_starttime),
		cmocka_unit_test(test_starttime_fd),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	tsi_log_init("test_resolve", TSI_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
