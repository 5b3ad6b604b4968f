/*
 * test_abi.c: the sized structs of connreg.h ("Sized structs"). A caller
 * built against an older or newer header than the library must get either
 * exactly what it asked for or a clear error, never an overrun: before ABI
 * 1.0, connreg_stats cleared sizeof(the library's struct) bytes of the
 * caller's (possibly smaller) struct.
 */
#include "common.h"

#include <criterion/criterion.h>

/* A caller's stats buffer: the struct it knows, then bytes it does not own. */
struct abi_stats_buf {
	connreg_stats_t st;
	uint8_t beyond[64];
};

static connreg_t *abi_make(char *name, const char *tag)
{
	connreg_config_t cfg = t_cfg(16, 0, 4);
	connreg_t *r;

	t_name(name, tag);
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	cr_assert_eq(connreg_register(r, "a", 1, 1), 0);
	return r;
}

Test(abi, stats_fills_only_the_callers_size)
{
	char name[T_NAME_BUF];
	connreg_t *r = abi_make(name, "abi-st");
	struct abi_stats_buf b;

	/* An older caller: exactly VER0 bytes, then memory the library must not touch. */
	memset(&b, 0xa5, sizeof b);
	b.st.size = CONNREG_STATS_SIZE_VER0;
	cr_assert_eq(connreg_stats(r, &b.st), 0);
	cr_assert_eq(b.st.size, CONNREG_STATS_SIZE_VER0);
	cr_assert_eq(b.st.live, 1);
	cr_assert_eq(b.st.capacity, 16);
	for (size_t i = 0; i < sizeof b.beyond; i++)
		cr_assert_eq(b.beyond[i], 0xa5, "byte %zu past the caller's struct was written", i);

	/* A newer caller (a bigger struct): the library fills what it knows and says so. */
	uint8_t big[CONNREG_STATS_SIZE_VER0 + 64];
	memset(big, 0xa5, sizeof big);
	connreg_stats_t *bs = (connreg_stats_t *)(void *)big;
	bs->size = sizeof big;
	cr_assert_eq(connreg_stats(r, bs), 0);
	cr_assert_eq(bs->size, sizeof(connreg_stats_t), "size out: the bytes the library filled");
	for (size_t i = sizeof(connreg_stats_t); i < sizeof big; i++)
		cr_assert_eq(big[i], 0xa5, "byte %zu past the library's struct was written", i);

	/* Zero means VER0; a size below VER0 is refused and nothing is written. */
	memset(&b, 0, sizeof b);
	cr_assert_eq(connreg_stats(r, &b.st), 0);
	cr_assert_eq(b.st.size, CONNREG_STATS_SIZE_VER0);
	memset(&b, 0xa5, sizeof b);
	b.st.size = CONNREG_STATS_SIZE_VER0 - 8;
	cr_assert_eq(connreg_stats(r, &b.st), -EINVAL);
	cr_assert_eq(b.st.capacity, 0xa5a5a5a5a5a5a5a5ull, "a refused call wrote the struct");
	connreg_close(r);
	connreg_unlink(name);
}

Test(abi, config_of_a_newer_header_is_accepted_only_with_a_zero_tail)
{
	char name[T_NAME_BUF];
	struct {
		connreg_config_t cfg;
		uint8_t tail[32];
	} c;
	connreg_t *r;

	t_name(name, "abi-cfg");
	memset(&c, 0, sizeof c);
	c.cfg.capacity = 8;
	c.cfg.size = sizeof c;	/* fields this library does not know, all zero: their defaults */
	cr_assert_eq(connreg_create(name, &c.cfg, &r), 0);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);

	c.tail[5] = 1;		/* a feature this library cannot honour */
	cr_assert_eq(connreg_create(name, &c.cfg, &r), -E2BIG);
	cr_assert_eq(connreg_unlink(name), -ENOENT, "a refused create leaves no name");
	cr_assert_str_neq(connreg_strerror(-E2BIG), connreg_strerror(-EINVAL));

	c.tail[5] = 0;
	c.cfg.size = CONNREG_CONFIG_SIZE_VER0 - 4;	/* smaller than any header ever had */
	cr_assert_eq(connreg_create(name, &c.cfg, &r), -EINVAL);
	c.cfg.size = 0;				/* zero: this header's struct */
	c.cfg.reserved0 = 7;			/* reserved fields must be zero */
	cr_assert_eq(connreg_create(name, &c.cfg, &r), -EINVAL);
	c.cfg.reserved0 = 0;
	cr_assert_eq(connreg_create(name, &c.cfg, &r), 0);
	connreg_close(r);
	connreg_unlink(name);
}
