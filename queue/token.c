#include "token.h"

#include <errno.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "b64.h"
#include "xalloc.h"

#define ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

int token_valid(const char *s, size_t n)
{
	if (n == 0 || n > TOKEN_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\0' || !strchr(ALNUM "_.-", s[i]))
			return 0;
	return 1;
}

int token_id_valid(const char *s)
{
	size_t n = strlen(s);
	return n >= 1 && n <= ID_MAX && strspn(s, ALNUM "_-") == n;
}

/*
 * n random bytes in base64url whose first character is never '-': an id
 * that looks like an option breaks every command line it is pasted into
 * (skiffctl, curl, grep). The first character encodes the top six bits
 * of the first byte; they are drawn uniformly from the 63 values other
 * than 62 ('-'), which costs log2(64/63), 0.02 bits, and no loop.
 */
static char *random_b64(unsigned char *rnd, size_t n)
{
	uint32_t top = randombytes_uniform(63);

	randombytes_buf(rnd, n);
	if (top >= 62)
		top++;
	rnd[0] = (unsigned char)((top << 2) | (rnd[0] & 3u));
	return b64url_encode(rnd, n);
}

char *token_new(const char *prefix)
{
	unsigned char rnd[32];
	char *b = NULL, *t;

	b = random_b64(rnd, sizeof(rnd));
	t = xasprintf("%s%s", prefix, b);
	sodium_memzero(b, strlen(b));
	sodium_memzero(rnd, sizeof(rnd));
	free(b);
	return t;
}

void token_id_new(const char *prefix, char out[ID_MAX + 1])
{
	unsigned char rnd[16];
	char *b;

	b = random_b64(rnd, sizeof(rnd));
	snprintf(out, ID_MAX + 1, "%s%s", prefix, b);
	free(b);
}

void token_hash(const char *tok, size_t n, unsigned char out[TOKEN_HASH_BYTES])
{
	crypto_hash_sha256(out, (const unsigned char *)tok, n);
}

void token_hash_hex(const char *tok, size_t n,
    char out[2 * TOKEN_HASH_BYTES + 1])
{
	unsigned char h[TOKEN_HASH_BYTES];

	token_hash(tok, n, h);
	hex_encode(h, sizeof(h), out);
}

int token_hash_equal(const unsigned char *a, const unsigned char *b)
{
	return sodium_memcmp(a, b, TOKEN_HASH_BYTES) == 0;
}

int token_from_authorization(const char *h, const char **tok, size_t *n)
{
	size_t len;

	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return -ENOENT;
	h += 7;
	while (*h == ' ')
		h++;
	len = strlen(h);
	while (len > 0 && (h[len - 1] == ' ' || h[len - 1] == '\t'))
		len--;
	if (!token_valid(h, len))
		return -EINVAL;
	*tok = h;
	*n = len;
	return 0;
}
