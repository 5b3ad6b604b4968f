/*
 * fault.c: see fault.h.
 */
#include <signal.h>

#include "fault.h"

long cr_fault_countdown;
int cr_debug_publish_unfilled;
static long cr_fault_count;

void cr_fault_hit(void)
{
	cr_fault_count++;
	if (cr_fault_countdown > 0 && --cr_fault_countdown == 0)
		raise(SIGKILL);
}

void cr_fault_arm(long k)
{
	cr_fault_count = 0;
	/* Negative: count the points without dying (cr_fault_passed). */
	cr_fault_countdown = k;
}

long cr_fault_passed(void)
{
	return cr_fault_count;
}
