/*
 * jwt_claims.c - the claim checks of tsi_jwt_verify, run after the
 * signature verified (times, audience, string claims, location), in the
 * order CONTRACT "Trust model" fixes. Each refusal names one reason.
 */
#include "tsi/jwt.h"
#include "tsi/err.h"
#include "jwt_int.h"

#include <stdio.h>
#include <string.h>

#define MAX_LIFETIME JWT_MAX_LIFETIME
#define MAX_NUMERIC_DATE JWT_MAX_NUMERIC_DATE

/* 1 present and valid (*v set), 0 absent, -1 present but not a date. */
static int
numeric_date(const json_t *claims, const char *name, long long *v)
{
	const json_t *j = json_object_get(claims, name);

	if (j == NULL)
		return 0;
	if (!json_is_integer(j) || json_integer_value(j) < 0 ||
	    json_integer_value(j) > MAX_NUMERIC_DATE)
		return -1;
	*v = json_integer_value(j);
	return 1;
}

int
jwt_check_times(const json_t *claims, long long now, long long skew,
    struct tsi_verify_result *res)
{
	long long exp = 0, nbf = 0, iat = 0;
	int he, hn, hi;

	he = numeric_date(claims, "exp", &exp);
	hn = numeric_date(claims, "nbf", &nbf);
	hi = numeric_date(claims, "iat", &iat);
	if (he == 0)
		return jwt_refuse(res, TSI_JWT_NO_EXP, "exp missing");
	if (he < 0 || hn < 0 || hi < 0)
		return jwt_refuse(res, TSI_JWT_BAD_CLAIMS,
		    "exp, nbf or iat is not a NumericDate");
	if (hi == 0)
		return jwt_refuse(res, TSI_JWT_BAD_CLAIMS, "iat missing");
	if (exp <= now - skew)
		return jwt_refuse(res, TSI_JWT_EXPIRED, "expired %lld s ago",
		    now - exp);
	if (hn > 0 && nbf > now + skew)
		return jwt_refuse(res, TSI_JWT_NOT_YET_VALID,
		    "not valid for another %lld s", nbf - now);
	if (iat > now + skew)
		return jwt_refuse(res, TSI_JWT_ISSUED_IN_FUTURE,
		    "issued %lld s in the future", iat - now);
	if (exp < iat)
		return jwt_refuse(res, TSI_JWT_BAD_CLAIMS, "exp before iat");
	if (exp - iat > MAX_LIFETIME)
		return jwt_refuse(res, TSI_JWT_LIFETIME_TOO_LONG,
		    "lifetime %lld s over %d s", exp - iat, MAX_LIFETIME);
	return TSI_OK;
}

int
jwt_check_aud(const json_t *claims, const char *aud,
    struct tsi_verify_result *res)
{
	const json_t *a = json_object_get(claims, "aud"), *e;
	size_t i;

	if (a == NULL)
		return jwt_refuse(res, TSI_JWT_NO_AUD, "aud missing");
	if (json_is_string(a)) {
		if (strcmp(json_string_value(a), aud) == 0)
			return TSI_OK;
	} else if (json_is_array(a)) {
		json_array_foreach (a, i, e)
			if (json_is_string(e) &&
			    strcmp(json_string_value(e), aud) == 0)
				return TSI_OK;
	}
	return jwt_refuse(res, TSI_JWT_BAD_AUD, "aud does not contain %.64s",
	    aud);
}

int
jwt_check_string_claims(const json_t *claims, struct tsi_verify_result *res)
{
	static const char *const names[] = { "iss", "sub", "jti" };
	const json_t *j;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if ((j = json_object_get(claims, names[i])) != NULL &&
		    !json_is_string(j))
			return jwt_refuse(res, TSI_JWT_BAD_CLAIMS,
			    "%s is not a string", names[i]);
	return TSI_OK;
}

static int
check_one_location(const json_t *claims, const char *name, const char *bound,
    struct tsi_verify_result *res)
{
	const json_t *j = json_object_get(claims, name);

	if (bound == NULL) {
		if (j != NULL)
			return jwt_refuse(res, TSI_JWT_LOCATION_MISMATCH,
			    "%s claimed but the node certificate binds none",
			    name);
		return TSI_OK;
	}
	if (j == NULL)
		return jwt_refuse(res, TSI_JWT_LOCATION_MISMATCH,
		    "%s missing; the node certificate binds %s", name, bound);
	if (!json_is_string(j) || strcmp(json_string_value(j), bound) != 0)
		return jwt_refuse(res, TSI_JWT_LOCATION_MISMATCH,
		    "%s differs from the node certificate's %s", name, bound);
	return TSI_OK;
}

int
jwt_check_location(const json_t *claims, const struct tsi_location *loc,
    struct tsi_verify_result *res)
{
	int ret;

	if ((ret = check_one_location(claims, "cluster-name", loc->cluster_name,
	         res)) != TSI_OK ||
	    (ret = check_one_location(claims, "region", loc->region, res)) !=
	        TSI_OK ||
	    (ret = check_one_location(claims, "datacenter", loc->datacenter,
	         res)) != TSI_OK ||
	    (ret = check_one_location(claims, "node", loc->node, res)) !=
	        TSI_OK)
		return ret;
	return TSI_OK;
}
