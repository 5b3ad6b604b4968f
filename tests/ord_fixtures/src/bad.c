/*
 * bad.c: one violation per case (tests/ord_fixtures/expected.txt).
 * Cites INV-7, which the design does not define.
 */
#include <stdatomic.h>

static _Atomic int x, y;

int bad(void)
{
	int v = atomic_load_explicit(&x, memory_order_acquire);

	int w = atomic_load_explicit(&x, memory_order_relaxed);

	/* Relaxed: a reason cannot cover a release store */
	atomic_store_explicit(&x, 1, memory_order_release);

	/* Relaxed: covers only the first operation below */
	int p = atomic_load_explicit(&y, memory_order_relaxed);
	int q = atomic_load_explicit(&y, memory_order_relaxed);

	/* Relaxed peek without a colon is no reason */
	int r = atomic_load_explicit(&y, memory_order_relaxed);

	/* Relaxed: does not reach past a closing brace */
	if (v) {
		v = 0;
	}
	v = atomic_load_explicit(&x, memory_order_relaxed);

	/* ORD-3(w): this pairing has no (r) side anywhere */
	atomic_store_explicit(&y, 5, memory_order_release);
	/* ORD-8(r): not a row of the table, and no (w) side */
	v += atomic_load_explicit(&y, memory_order_acquire);
	v += atomic_exchange(&x, 1);
	return v + w + p + q + r;
}
