#include "b64.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "xalloc.h"

size_t b64url_decoded_max(size_t inlen)
{
	return inlen / 4 * 3 + 3;
}

static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

int b64url_valid(const char *in, size_t inlen)
{
	int v = 0;

	if (inlen % 4 == 1)
		return 0;
	for (size_t i = 0; i < inlen; i++)
		if ((v = b64url_value((unsigned char)in[i])) < 0)
			return 0;
	/* The last character of a 2- or 3-character group carries 4 or 2
	 * bits that belong to no byte; canonical encoders leave them 0. */
	if (inlen % 4 == 2)
		return (v & 0x0f) == 0;
	if (inlen % 4 == 3)
		return (v & 0x03) == 0;
	return 1;
}

int b64url_decode(const char *in, size_t inlen, unsigned char *out,
    size_t outmax, size_t *outlen)
{
	const char *end = NULL;
	size_t n = 0;

	if (inlen % 4 == 1)
		return -EINVAL;
	if (inlen / 4 * 3 + (inlen % 4 ? inlen % 4 - 1 : 0) > outmax)
		return -E2BIG;
	/* libsodium 1.0.18 decodes every byte from 0x80 up as '_' in the
	 * URL-safe variant, so the alphabet is checked here first. */
	if (!b64url_valid(in, inlen))
		return -EINVAL;
	if (sodium_base642bin(out, outmax, in, inlen, NULL, &n, &end,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return -EINVAL;
	if (end != in + inlen)
		return -EINVAL;
	*outlen = n;
	return 0;
}

static char *encode(const void *in, size_t inlen, int variant)
{
	size_t n = sodium_base64_encoded_len(inlen, variant);
	char *out = xmalloc(n);
	sodium_bin2base64(out, n, in, inlen, variant);
	return out;
}

char *b64url_encode(const void *in, size_t inlen)
{
	return encode(in, inlen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

char *b64std_encode(const void *in, size_t inlen)
{
	return encode(in, inlen, sodium_base64_VARIANT_ORIGINAL);
}

void hex_encode(const unsigned char *in, size_t n, char *out)
{
	sodium_bin2hex(out, 2 * n + 1, in, n);
}

int hex_decode(const char *in, unsigned char *out, size_t n)
{
	size_t got = 0;
	const char *end = NULL;

	if (strlen(in) != 2 * n)
		return -EINVAL;
	if (sodium_hex2bin(out, n, in, 2 * n, NULL, &got, &end) != 0 ||
	    got != n || end != in + 2 * n)
		return -EINVAL;
	return 0;
}
