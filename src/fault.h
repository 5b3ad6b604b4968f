/*
 * fault.h: fault injection for the crash tests. CR_FAULT() marks each step
 * of a writer operation; a test arms cr_fault_arm(k) in a child process,
 * which then SIGKILLs itself at the k-th step it reaches, so every window
 * between two shared-memory writes gets a death. Disarmed, a point costs
 * one load of a process-local word and a predicted branch (writers only;
 * lookups have none). The arming function is hidden: only code linked
 * with the static library (the tests) can reach it.
 */
#ifndef CONNREG_FAULT_H
#define CONNREG_FAULT_H

#include <urcu/compiler.h>

extern long cr_fault_countdown;	/* 0: disarmed; process-local */
void cr_fault_hit(void);

/* Arm: die at the k-th fault point from now (k >= 1); 0 disarms. */
void cr_fault_arm(long k);
/* Arm: SIGSTOP ourselves at the k-th fault point (a stopped writer). */
void cr_fault_arm_stop(long k);
/* Fault points passed since the last arm (to size a sweep). */
long cr_fault_passed(void);

/*
 * Deliberately broken build switch for the linearizability test: when
 * non-zero, writers publish an entry before filling in its transport (and
 * pause in between), so lookups can return a stale value. Process-local,
 * hidden; tests set it in their writer children only.
 */
extern int cr_debug_publish_unfilled;

#define CR_FAULT()                                                     \
	do {                                                           \
		if (caa_unlikely(cr_fault_countdown != 0))             \
			cr_fault_hit();                                \
	} while (0)

#endif /* CONNREG_FAULT_H */
