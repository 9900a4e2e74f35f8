/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MIRRORFS_TESTS_RNG_H
#define MIRRORFS_TESTS_RNG_H

/*
 * The test tools' PRNG: xorshift64*, seeded through splitmix64, so that a
 * seed names one run exactly (fsstorm, fsx).
 */
#include <stdint.h>

struct rng {
	uint64_t s;
};

static inline void rng_seed(struct rng *r, uint64_t seed)
{
	uint64_t z = seed + 0x9E3779B97F4A7C15ULL;

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	r->s = (z ^ (z >> 31)) | 1;
}

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t x = r->s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* uniform in [0, n); 0 if n is 0 */
static inline uint64_t below(struct rng *r, uint64_t n)
{
	return n ? rng_next(r) % n : 0;
}

#endif /* MIRRORFS_TESTS_RNG_H */
