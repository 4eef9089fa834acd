/*
 * The answers of the PostgreSQL store's functions (queue/pgans.c): any
 * bytes decode to a well-formed answer or are refused whole. An accepted
 * answer has a status from 100 to 599; an error has a status of at least
 * 400, one of the protocol's codes and a message; a length or limit it
 * carries is a non-negative integer; the body can be taken out and freed.
 */
#include <stdint.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "fuzz.h"
#include "pgans.h"

#define FUZZ_ASSERT(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pgans a;
	cJSON *b;

	if (pgans_decode((const char *)data, size, &a) < 0) {
		FUZZ_ASSERT(a.root == NULL);
		return 0;
	}
	FUZZ_ASSERT(a.status >= 100 && a.status <= 599);
	if (a.is_error) {
		FUZZ_ASSERT(a.status >= 400);
		FUZZ_ASSERT(a.err.status == a.status);
		FUZZ_ASSERT(a.err.code != NULL && a.err.code[0] != '\0');
		FUZZ_ASSERT(memchr(a.err.msg, '\0', sizeof(a.err.msg)) != NULL);
		FUZZ_ASSERT(!a.err.has_length || a.err.length >= 0);
		FUZZ_ASSERT(!a.err.has_limit || a.err.limit >= 0);
	}
	b = pgans_take_body(&a);
	FUZZ_ASSERT(a.body == NULL);
	cJSON_Delete(b);
	pgans_free(&a);
	return 0;
}
