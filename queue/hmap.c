#include "hmap.h"

#include <errno.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

struct node {
	const char *key;
	uint64_t hash;
	void *val;
	struct node *next;
};

struct hmap {
	struct node **b;
	size_t nb;
	size_t n;
	unsigned char key[crypto_shorthash_KEYBYTES];
};

static uint64_t hash_of(const struct hmap *m, const char *s)
{
	unsigned char out[crypto_shorthash_BYTES];
	uint64_t h;

	crypto_shorthash(out, (const unsigned char *)s, strlen(s), m->key);
	memcpy(&h, out, sizeof(h));
	return h;
}

struct hmap *hmap_new(void)
{
	struct hmap *m = xcalloc(1, sizeof(*m));

	m->nb = 64;
	m->b = xcalloc(m->nb, sizeof(*m->b));
	randombytes_buf(m->key, sizeof(m->key));
	return m;
}

void hmap_free(struct hmap *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->nb; i++) {
		struct node *n = m->b[i], *next;
		for (; n; n = next) {
			next = n->next;
			free(n);
		}
	}
	free(m->b);
	free(m);
}

static struct node **find(const struct hmap *m, const char *key, uint64_t h)
{
	struct node **pp = &m->b[h & (m->nb - 1)];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && strcmp((*pp)->key, key) == 0)
			return pp;
	return pp;
}

void *hmap_get(const struct hmap *m, const char *key)
{
	struct node **pp = find(m, key, hash_of(m, key));
	return *pp ? (*pp)->val : NULL;
}

/* Doubles the bucket array once the load factor passes 1. */
static void grow(struct hmap *m)
{
	size_t nb = m->nb * 2;
	struct node **b = xcalloc(nb, sizeof(*b));

	for (size_t i = 0; i < m->nb; i++) {
		struct node *n = m->b[i], *next;
		for (; n; n = next) {
			next = n->next;
			n->next = b[n->hash & (nb - 1)];
			b[n->hash & (nb - 1)] = n;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
}

int hmap_put(struct hmap *m, const char *key, void *val)
{
	uint64_t h = hash_of(m, key);
	struct node **pp = find(m, key, h), *n;

	if (*pp)
		return -EEXIST;
	n = xcalloc(1, sizeof(*n));
	n->key = key;
	n->hash = h;
	n->val = val;
	*pp = n;
	if (++m->n > m->nb)
		grow(m);
	return 0;
}

void *hmap_del(struct hmap *m, const char *key)
{
	struct node **pp = find(m, key, hash_of(m, key)), *n = *pp;
	void *val;

	if (n == NULL)
		return NULL;
	*pp = n->next;
	val = n->val;
	free(n);
	m->n--;
	return val;
}

size_t hmap_count(const struct hmap *m)
{
	return m->n;
}

void *hmap_next(const struct hmap *m, struct hmap_iter *it)
{
	for (; it->bucket < m->nb; it->bucket++, it->depth = 0) {
		struct node *n = m->b[it->bucket];
		for (size_t d = 0; n && d < it->depth; d++)
			n = n->next;
		if (n) {
			it->depth++;
			return n->val;
		}
	}
	return NULL;
}
