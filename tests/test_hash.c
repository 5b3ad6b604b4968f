/*
 * test_hash: the short-id hash with keys folded at open (cr_hash_short)
 * is XXH3_64bits_withSecret, bit for bit, at every length it takes. Every
 * process must place an id in the same home bucket, whichever of the two
 * computes it (the fast lookup folds the keys, long ids and the tests use
 * XXH3 itself).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <sys/random.h>

#include "index.h"

static void hs_random(void *buf, size_t n)
{
	cr_assert_eq(getrandom(buf, n, 0), (ssize_t)n);
}

Test(hash, folded_keys_give_xxh3_with_secret_at_every_short_length)
{
	uint8_t secret[CR_SECRET_SIZE];

	for (int s = 0; s < 64; s++) {
		struct cr_hash_keys k;

		hs_random(secret, sizeof(secret));
		cr_hash_keys_init(&k, secret);
		for (size_t len = 1; len <= CR_KEY_INLINE; len++) {
			for (int i = 0; i < 64; i++) {
				/* Exactly len bytes on the heap: ASan sees any read past them. */
				uint8_t *id = malloc(len);

				cr_assert_not_null(id);
				hs_random(id, len);
				if (i == 0)
					memset(id, 0, len);
				cr_assert_eq(cr_hash_short(&k, id, len),
					     XXH3_64bits_withSecret(id, len, secret, sizeof(secret)),
					     "secret %d, length %zu, id %d", s, len, i);
				free(id);
			}
		}
	}
}
