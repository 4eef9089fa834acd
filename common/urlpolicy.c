#include "urlpolicy.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xalloc.h"

/* 1 when the part is in the URL (an empty user, as in "http://@h/",
 * counts: it is still userinfo). */
static int has_part(CURLU *u, CURLUPart part)
{
	char *v = NULL;
	CURLUcode rc = curl_url_get(u, part, &v, 0);

	curl_free(v);
	return rc == CURLUE_OK;
}

static int parse(const char *url, CURLU **out, const char **why)
{
	CURLU *u;

	if (strlen(url) > URLPOLICY_MAX) {
		*why = "is longer than 1024 bytes";
		return -EINVAL;
	}
	/* libcurl refuses most of these too; a control character or a space
	 * in a URL read from a file is a typo, said as such. */
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f) {
			*why = "contains a space or a control character";
			return -EINVAL;
		}
	if ((u = curl_url()) == NULL)
		abort();	/* out of memory, as xalloc does */
	/* No CURLU_DEFAULT_SCHEME: "queue.example" is not a URL of ours. */
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
		curl_url_cleanup(u);
		*why = "is not a URL (libcurl cannot parse it)";
		return -EINVAL;
	}
	*out = u;
	return 0;
}

static int check_form(CURLU *u, const char **why)
{
	char *scheme = NULL;
	int ok;

	curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	ok = scheme && (!strcmp(scheme, "https") || !strcmp(scheme, "http"));
	curl_free(scheme);
	if (!ok)
		*why = "must be https://host[:port] (or http:// to loopback)";
	else if (has_part(u, CURLUPART_USER) || has_part(u, CURLUPART_PASSWORD) ||
	    has_part(u, CURLUPART_OPTIONS))
		*why = "must not contain userinfo (user@ before the host)";
	else if (has_part(u, CURLUPART_ZONEID))
		*why = "must not contain an IPv6 zone id";
	else if (has_part(u, CURLUPART_QUERY) || has_part(u, CURLUPART_FRAGMENT))
		*why = "must not contain a query or a fragment (paths are appended)";
	else
		return 0;
	return -EINVAL;
}

int urlpolicy_base(const char *url, char **out, const char **why)
{
	CURLU *u = NULL;
	char *norm = NULL;
	size_t n;
	int r;

	if ((r = parse(url, &u, why)) < 0)
		return r;
	if ((r = check_form(u, why)) < 0)
		goto out;
	if (curl_url_get(u, CURLUPART_URL, &norm, 0) != CURLUE_OK) {
		*why = "is not a URL (libcurl cannot write it back)";
		r = -EINVAL;
		goto out;
	}
	*out = xstrdup(norm);
	/* The protocol paths ("/v1/...") are appended. */
	n = strlen(*out);
	while (n > 0 && (*out)[n - 1] == '/')
		(*out)[--n] = '\0';
out:
	curl_free(norm);
	curl_url_cleanup(u);
	return r;
}

int urlpolicy_host_is_loopback(const char *host)
{
	unsigned char a[16];
	static const unsigned char v6_loopback[16] = { [15] = 1 };
	size_t n = strlen(host);
	char v6[64];

	/* "localhost" never reaches DNS (libcurl and glibc's files answer it);
	 * "localhost." and "x.localhost" might. */
	if (strcasecmp(host, "localhost") == 0)
		return 1;
	/* inet_pton takes only the dotted quad: libcurl already turned the
	 * other forms of an IPv4 literal into it, and any name is no IP. */
	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127;
	if (n < 3 || n - 2 >= sizeof(v6) || host[0] != '[' || host[n - 1] != ']')
		return 0;
	memcpy(v6, host + 1, n - 2);
	v6[n - 2] = '\0';
	/* ::1 only: ::ffff:127.0.0.1 reaches loopback only on a dual-stack
	 * socket, which is a setting of the host, not of the URL. */
	return inet_pton(AF_INET6, v6, a) == 1 &&
	    memcmp(a, v6_loopback, sizeof(a)) == 0;
}

int urlpolicy_cleartext_ok(const char *url)
{
	CURLU *u = NULL;
	char *scheme = NULL, *host = NULL;
	const char *why;
	int r;

	if ((r = parse(url, &u, &why)) < 0)
		return r;
	/* The form again: a URL that never went through urlpolicy_base is
	 * not waved through. */
	if (check_form(u, &why) < 0 ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		r = -EINVAL;
	else if (strcmp(scheme, "https") != 0 && !urlpolicy_host_is_loopback(host))
		r = -EPERM;
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return r;
}
