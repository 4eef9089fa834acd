/*
 * String-keyed hash map of pointers, for the queue's in-memory indices
 * (jobs, leases, agents, uploads, pools by id). Keys come from clients, so
 * the hash is SipHash (libsodium's crypto_shorthash) under a random key:
 * nobody can pick ids that all land in one bucket.
 *
 * The map does not copy keys: a key must stay valid while its entry is in
 * the map (the values own their ids).
 */
#ifndef SKIFF_QUEUE_HMAP_H
#define SKIFF_QUEUE_HMAP_H

#include <stddef.h>

struct hmap;

struct hmap *hmap_new(void);
/* Frees the map, not the values. NULL is fine. */
void hmap_free(struct hmap *m);
void *hmap_get(const struct hmap *m, const char *key);
/* -EEXIST when the key is present (the map is unchanged). */
int hmap_put(struct hmap *m, const char *key, void *val);
/* Removes the entry and returns its value, or NULL. */
void *hmap_del(struct hmap *m, const char *key);
size_t hmap_count(const struct hmap *m);
/*
 * Iteration: start with a zeroed iterator; returns the next value or NULL
 * at the end. The map must not change during an iteration; collect first
 * when entries are to be removed.
 */
struct hmap_iter {
	size_t bucket;
	size_t depth;
};
void *hmap_next(const struct hmap *m, struct hmap_iter *it);

#endif
