/*
 * The $SKIFF_OUTPUT parser (agent/run/outputs.c): any bytes a step wrote,
 * never a crash, and what it keeps is within the caps, named by the
 * env-name rules, strict UTF-8 without control characters. The input is
 * parsed whole, then again in two halves cut at its first byte's value
 * (a step writes its file in pieces; names set twice must stay unique).
 */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "jsonx.h"
#include "outputs.h"

static void check(const struct outputs *o)
{
	size_t total = 0, n = outputs_count(o);

	if (n > OUTPUTS_MAX_COUNT)
		__builtin_trap();
	for (size_t i = 0; i < n; i++) {
		const char *k = outputs_name(o, i), *v = outputs_value(o, i);
		size_t kl = strlen(k), vl = strlen(v);

		if (kl == 0 || kl > OUTPUTS_MAX_NAME || vl > OUTPUTS_MAX_VALUE ||
		    (k[0] >= '0' && k[0] <= '9') || strspn(k,
		    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789_") != kl || !jsonx_utf8_valid(v, vl, NULL))
			__builtin_trap();
		for (size_t c = 0; c < vl; c++)
			if (((unsigned char)v[c] < 0x20 && v[c] != '\t') ||
			    v[c] == 0x7f)
				__builtin_trap();
		for (size_t j = 0; j < i; j++)
			if (strcmp(outputs_name(o, j), k) == 0)
				__builtin_trap();
		total += kl + vl;
	}
	if (total > OUTPUTS_MAX_TOTAL)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outputs *o = outputs_new();
	size_t cut = size ? data[0] % (size + 1) : 0, set;

	set = outputs_parse(o, (const char *)data, size, NULL, NULL);
	if (set < outputs_count(o))
		__builtin_trap();
	check(o);
	outputs_free(o);
	o = outputs_new();
	(void)outputs_parse(o, (const char *)data, cut, NULL, NULL);
	(void)outputs_parse(o, (const char *)data + cut, size - cut, NULL, NULL);
	check(o);
	outputs_free(o);
	return 0;
}
