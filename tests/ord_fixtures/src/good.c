/*
 * good.c: every form tools/check_ord.py must accept; no violation here.
 * Cites INV-1 and INV-2, both defined.
 */
#include <stdatomic.h>

static _Atomic int x, y;
/* A string is not a comment: the marker inside must not count. */
static const char *s = "/* ORD-3(r) atomic_load(&x) */";

void good(void)
{
	int a, b, c, d, e;

	/* ORD-1(w): release store */
	atomic_store_explicit(&x, 1, memory_order_release);
	/* ORD-1(r): acquire load over two lines */
	a = atomic_load_explicit(&x,
				 memory_order_acquire);
	b = atomic_load_explicit(&y, memory_order_relaxed);	/* Relaxed: a trailing reason */
	/* Relaxed (here and below): snapshots */
	c = atomic_load_explicit(&y, memory_order_relaxed);
	d = atomic_load_explicit(&y, memory_order_relaxed);

	/*
	 * ORD-2(rw): an acq_rel chain, both sides at once; a trailing
	 * comment on the line below does not end this block's reach.
	 */
	atomic_fetch_add_explicit(&x, 1, memory_order_acq_rel);	/* chain */
	/* ORD-5(w) */ atomic_thread_fence(memory_order_seq_cst);
	// ORD-5(r): a C++-style comment
	atomic_signal_fence(memory_order_seq_cst);
	/* Relaxed: a builtin with __ATOMIC_RELAXED */
	(void)__atomic_load_n(&y, __ATOMIC_RELAXED);
	/* Not an operation: atomic_load_explicit(&x, memory_order_acquire) in a comment. */
	atomic_init(&y, 0);	/* exempt */
	/* ORD-1(w) (here and below): a tag covers a relaxed seed and its CAS */
	e = atomic_load_explicit(&x, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&x, &e, e + 1, memory_order_release,
						      memory_order_relaxed))
		;
	(void)a, (void)b, (void)c, (void)d, (void)s;
}
