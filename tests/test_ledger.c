/*
 * test_ledger.c: the per-slot ledgers that hold the live count (count.c)
 * stay exact when one slot's share runs past any 32-bit signed value, as it
 * does after ~2^31 inserts through one slot while another slot removes
 * them (slots are inherited by later threads, so this is reachable): INV-5.
 */
#include <criterion/criterion.h>
#include <fcntl.h>

#include "common.h"
#include "layout.h"

static void lg_fini(void)
{
	t_cleanup_names();
}

TestSuite(ledger, .fini = lg_fini, .timeout = 60);

Test(ledger, shares_past_int32_still_sum_to_the_exact_live_count)
{
	char name[T_NAME_BUF];
	connreg_config_t cfg = t_cfg(16, 0, 4);
	connreg_t *r;
	connreg_stats_t st = { .size = sizeof(st) };
	uint8_t id[T_ID_LEN];

	t_name(name, "ledger");
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	connreg_close(r);

	/* Two slots whose shares cancel: slot 0 just below INT32_MAX, slot 1 its negation. */
	int fd = shm_open(name, O_RDWR, 0);
	cr_assert_geq(fd, 0);
	struct stat sb;
	cr_assert_eq(fstat(fd, &sb), 0);
	uint8_t *base = mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(base, MAP_FAILED);
	struct cr_header *h = (struct cr_header *)base;
	struct cr_rslot *rs = (struct cr_rslot *)(base + h->geo.off_rslots);
	uint32_t big = INT32_MAX - 2;
	atomic_store(&rs[0].ledger, cr_ledger_make(big, CR_PEND_NONE));
	atomic_store(&rs[1].ledger, cr_ledger_make(0u - big, CR_PEND_NONE));
	atomic_store(&h->rslot_hwm, 2);
	munmap(base, (size_t)sb.st_size);
	close(fd);

	/* This process claims slot 0 and inherits its share. */
	cr_assert_eq(connreg_open(name, &r), 0);
	for (uint32_t i = 0; i < 16; i++) {
		cr_assert_eq(connreg_register(r, id, t_id(id, 9, i), i), 0, "register %u", i);
		cr_assert_eq(connreg_stats(r, &st), 0);
		cr_assert_eq(st.live, i + 1, "live %llu after %u inserts",
			     (unsigned long long)st.live, i + 1);
	}
	/* Capacity still holds exactly across the wrap. */
	cr_assert_eq(connreg_register(r, id, t_id(id, 9, 16), 16), -ENOSPC);
	cr_assert_eq(connreg_unregister(r, id, t_id(id, 9, 0)), 0);
	cr_assert_eq(connreg_register(r, id, t_id(id, 9, 16), 16), 0);
	cr_assert_eq(connreg_check(r, NULL, NULL), 0);
	connreg_close(r);
}
