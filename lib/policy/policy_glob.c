/*
 * policy_glob.c - the two kinds of patterns of the policy language:
 * Vault path globs (with {claim} templates) and claim value globs.
 *
 * Path globs are matched segment by segment, never by substituting claim
 * values into the pattern text: a value is compared as one literal string, so
 * "*", "+" or "?" in a caller's claim are plain characters, and a value
 * holding '/' can never stand for more than one segment.
 */
#include "policy_int.h"
#include "tsi/policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const known_claims[] = {
	"iss",
	"sub",
	"aud",
	"iat",
	"nbf",
	"exp",
	"jti",
	"images",
	"images-names",
	"cluster-name",
	"region",
	"datacenter",
	"node",
	"namespace",
	"pod",
	"service-account",
	"uid",
	"exe",
	NULL,
};

int
tsi_pol_claim_known(const char *name, size_t len)
{
	const char *const *k;

	for (k = known_claims; *k != NULL; k++)
		if (strlen(*k) == len && memcmp(*k, name, len) == 0)
			return 1;
	return 0;
}

/*
 * Expands the pattern segment [s, e) into buf: literal text plus template
 * values. Returns 0 and the length in *outlen, 1 when a template could not be
 * resolved and t->wild is set (the segment then matches any segment), -1 when
 * it cannot match.
 */
static int
expand_segment(const char *s, const char *e, const struct tsi_pol_tmpl *t,
    char *buf, size_t buflen, size_t *outlen)
{
	size_t n = 0;
	char tmp[64];

	while (s < e) {
		const char *v, *close;
		size_t vlen;

		if (*s != '{') {
			if (buflen - n < 2)
				return -1;
			buf[n++] = *s++;
			continue;
		}
		close = memchr(s, '}', (size_t)(e - s));
		if (close == NULL || t == NULL || t->resolve == NULL)
			return -1;
		v = t->resolve(s + 1, (size_t)(close - s - 1), t->arg, tmp,
		    sizeof(tmp));
		if (v == NULL || v[0] == '\0' || strchr(v, '/') != NULL)
			return t->wild ? 1 : -1;
		vlen = strlen(v);
		if (buflen - n <= vlen)
			return -1;
		memcpy(buf + n, v, vlen);
		n += vlen;
		s = close + 1;
	}
	buf[n] = '\0';
	*outlen = n;
	return 0;
}

int
tsi_pol_path_match(const char *pattern, const char *path,
    const struct tsi_pol_tmpl *t)
{
	size_t plen;
	int prefix;
	const char *p, *pend, *q;
	char buf[TSI_POL_SEG_MAX];

	if (pattern == NULL || path == NULL)
		return 0;
	plen = strlen(pattern);
	prefix = plen > 0 && pattern[plen - 1] == '*';
	if (prefix)
		plen--;
	pend = pattern + plen;
	p = pattern;
	q = path;
	for (;;) {
		const char *ps_end = memchr(p, '/', (size_t)(pend - p));
		int last = ps_end == NULL;
		const char *qs_end;
		size_t n;
		int r;

		if (last)
			ps_end = pend;
		if ((qs_end = strchr(q, '/')) == NULL)
			qs_end = q + strlen(q);

		if (last && prefix) {
			/* The partial last segment is a prefix of the rest. */
			if (ps_end - p == 1 && *p == '+')
				return qs_end > q;
			r = expand_segment(p, ps_end, t, buf, sizeof(buf), &n);
			if (r == 1)
				return qs_end > q;
			if (r < 0)
				return 0;
			return strncmp(q, buf, n) == 0;
		}
		if (ps_end - p == 1 && *p == '+') {
			if (qs_end == q)
				return 0;
		} else {
			r = expand_segment(p, ps_end, t, buf, sizeof(buf), &n);
			if (r < 0)
				return 0;
			if (r == 0 &&
			    ((size_t)(qs_end - q) != n ||
			        memcmp(q, buf, n) != 0))
				return 0;
			if (r == 1 && qs_end == q)
				return 0;
		}
		if (last)
			return *qs_end == '\0';
		if (*qs_end != '/')
			return 0;
		p = ps_end + 1;
		q = qs_end + 1;
	}
}

int
tsi_policy_path_match(const char *pattern, const char *path)
{
	return tsi_pol_path_match(pattern, path, NULL);
}

int
tsi_pol_glob(const char *pat, const char *s)
{
	const char *star = NULL, *resume = NULL;

	/* Greedy with one backtrack point (the last '*'): each character of s
	 * is retried at most once per pattern position, so the cost is
	 * bounded by len(pat) * len(s), whatever the pattern. */
	while (*s != '\0') {
		if (*pat == '*') {
			star = pat++;
			resume = s;
		} else if (*pat == '?' || (*pat != '\0' && *pat == *s)) {
			pat++;
			s++;
		} else if (star != NULL) {
			pat = star + 1;
			s = ++resume;
		} else
			return 0;
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

int
tsi_pol_value_match(char *const *pats, size_t npats, const char *value)
{
	size_t i;
	int positive = 0, hit = 0;

	for (i = 0; i < npats; i++) {
		if (pats[i][0] == '!') {
			if (tsi_pol_glob(pats[i] + 1, value))
				return 0;
		} else {
			positive = 1;
			if (!hit && tsi_pol_glob(pats[i], value))
				hit = 1;
		}
	}
	return positive ? hit : 1;
}

static int
is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

int
tsi_pol_path_valid(const char *path)
{
	const char *s, *e;
	size_t len;

	if (path == NULL || (len = strlen(path)) == 0 || len > TSI_POL_PATH_MAX)
		return -1;
	if (path[0] == '/')
		return -1;
	for (s = path; *s != '\0'; s++)
		if (is_ctl((unsigned char)*s))
			return -1;
	for (s = path; *s != '\0'; s = e + 1) {
		if ((e = strchr(s, '/')) == NULL)
			e = s + strlen(s);
		/* Empty segments only as a trailing '/' (a list request). */
		if (e == s)
			return -1;
		if ((e - s == 1 && s[0] == '.') ||
		    (e - s == 2 && s[0] == '.' && s[1] == '.'))
			return -1;
		if (*e == '\0' || e[1] == '\0')
			break;
	}
	return 0;
}

/* The program's mounts (tsi_policy_mounts_set): written once at start-up,
 * before any thread reads them. */
static const struct tsi_policy_mount *mounts;
static size_t nmounts;

void
tsi_policy_mounts_set(const struct tsi_policy_mount *m, size_t n)
{
	mounts = m;
	nmounts = m != NULL ? n : 0;
}

int
tsi_pol_caps_for_pattern(const char *pattern)
{
	size_t i;

	for (i = 0; i < nmounts; i++)
		if (strncmp(pattern, mounts[i].prefix,
		        strlen(mounts[i].prefix)) == 0)
			return mounts[i].caps;
	return 0;
}

static int why(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
why(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(buf, len, fmt, ap) < 0 && len > 0)
		buf[0] = '\0';
	va_end(ap);
	return -1;
}

void
tsi_pol_mounts_list(int cap, char *out, size_t outlen)
{
	size_t i, off = 0;
	int n;

	if (outlen == 0)
		return;
	out[0] = '\0';
	for (i = 0; i < nmounts; i++) {
		if (cap != 0 && !(mounts[i].caps & cap))
			continue;
		n = snprintf(out + off, outlen - off, "%s%s",
		    off > 0 ? ", " : "", mounts[i].prefix);
		if (n < 0 || (size_t)n >= outlen - off) {
			out[off] = '\0';
			break;
		}
		off += (size_t)n;
	}
	if (off == 0)
		snprintf(out, outlen, "no mount registered");
}

/* The refusal of a path under no mount, naming the mounts there are. */
static int
not_mounted(const char *pattern, char *w, size_t wl)
{
	char list[512];

	tsi_pol_mounts_list(0, list, sizeof(list));
	return why(w, wl, "path '%s' is not under a known mount (%s)", pattern,
	    list);
}

int
tsi_pol_pattern_check(const char *pattern, char *w, size_t wl)
{
	const char *s, *e, *lit_end;
	size_t len = strlen(pattern);

	if (len == 0)
		return why(w, wl, "empty path");
	if (len > TSI_POL_PATH_MAX)
		return why(w, wl, "path longer than 1024 characters");
	for (s = pattern; *s != '\0'; s++)
		if (is_ctl((unsigned char)*s))
			return why(w, wl, "control character in path");
	if (pattern[0] == '/')
		return why(w, wl,
		    "path '%s' must not start with '/' (no /v1/ either)",
		    pattern);
	if ((s = strchr(pattern, '*')) != NULL && s[1] != '\0')
		return why(w, wl, "path '%s': '*' is only allowed at the end",
		    pattern);
	for (s = pattern; *s != '\0'; s = e + 1) {
		const char *c;
		int star;

		if ((e = strchr(s, '/')) == NULL)
			e = s + strlen(s);
		star = e > s && e[-1] == '*' && *e == '\0';
		if (e == s && *e == '/')
			return why(w, wl, "path '%s' has an empty segment",
			    pattern);
		if ((e - s == 1 && s[0] == '.') ||
		    (e - s == 2 && s[0] == '.' && s[1] == '.'))
			return why(w, wl, "path '%s' has a '.' or '..' segment",
			    pattern);
		for (c = s; c < e; c++) {
			const char *close;

			if (*c == '+' &&
			    !(c == s && (c + 1 == e || (star && c + 2 == e))))
				return why(w, wl,
				    "path '%s': '+' must be a whole segment",
				    pattern);
			if (*c == '}')
				return why(w, wl, "path '%s': '}' without '{'",
				    pattern);
			if (*c != '{')
				continue;
			close = memchr(c, '}', (size_t)(e - c));
			if (close == NULL)
				return why(w, wl,
				    "path '%s': '{' without '}' in the same "
				    "segment",
				    pattern);
			if (close == c + 1)
				return why(w, wl,
				    "path '%s': empty {} template", pattern);
			{
				const char *k;
				char name[64];
				size_t n = (size_t)(close - c - 1);

				for (k = c + 1; k < close; k++)
					if (!((*k >= 'a' && *k <= 'z') ||
					        (*k >= 'A' && *k <= 'Z') ||
					        (*k >= '0' && *k <= '9') ||
					        *k == '-' || *k == '_'))
						return why(w, wl,
						    "path '%s': malformed "
						    "{claim} template",
						    pattern);
				if (!tsi_pol_claim_known(c + 1, n)) {
					if (n >= sizeof(name))
						n = sizeof(name) - 1;
					memcpy(name, c + 1, n);
					name[n] = '\0';
					return why(w, wl,
					    "unknown claim '{%s}' in path "
					    "template",
					    name);
				}
			}
			c = close;
		}
		if (*e == '\0')
			break;
	}
	/* The literal start decides the mount: it must name one fully. */
	lit_end = pattern + strcspn(pattern, "{+*");
	{
		size_t i, lit = (size_t)(lit_end - pattern);

		for (i = 0; i < nmounts; i++) {
			size_t ml = strlen(mounts[i].prefix);

			if (lit >= ml &&
			    strncmp(pattern, mounts[i].prefix, ml) == 0)
				return 0;
		}
	}
	return not_mounted(pattern, w, wl);
}
