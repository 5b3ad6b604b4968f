/*
 * fault.c: see fault.h.
 */
#include <signal.h>

#include "fault.h"

long cr_fault_countdown;
static int cr_fault_signal = SIGKILL;
int cr_debug_publish_unfilled;
static long cr_fault_count;

void cr_fault_hit(void)
{
	cr_fault_count++;
	if (cr_fault_countdown > 0 && --cr_fault_countdown == 0)
		raise(cr_fault_signal);
}

void cr_fault_arm_stop(long k)
{
	cr_fault_arm(k);
	cr_fault_signal = SIGSTOP;
}

void cr_fault_arm(long k)
{
	cr_fault_signal = SIGKILL;
	cr_fault_count = 0;
	/* Negative: count the points without dying (cr_fault_passed). */
	cr_fault_countdown = k;
}

long cr_fault_passed(void)
{
	return cr_fault_count;
}
