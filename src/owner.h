/*
 * owner.h: is the thread that owns a reader slot still alive?
 *
 * Liveness tokens (struct cr_token, layout.h) are robust, process-shared
 * mutexes. A thread takes one token for each handle it uses and holds it
 * until it lets go of that handle's slot; a claimed slot's owner word names
 * the token. The kernel marks a robust mutex owner-dead when its holder
 * thread exits, when its process dies by any signal, and when its process
 * execs, whatever pid namespace anyone is in; a fork child does not inherit
 * its parent's holds. So a checker never reasons about pids:
 *
 *   slot owner    trylock of its token   meaning
 *   0             -                      free
 *   token k       EBUSY                  a live thread owns it (or a
 *                                        recoverer of k is at work)
 *   token k       acquired, owner still  its thread is gone: the taker,
 *                 names k                 holding k, recovers the slot
 *
 * "acquired" covers EOWNERDEAD (made consistent at once) and a token that a
 * previous checker gave back. Holding the token serializes recoverers: one
 * that dies leaves it owner-dead again, and the next starts over (every
 * recovery step is idempotent, recover.c). connreg_close from another
 * thread frees the slot in the segment at once; the token stays with its
 * thread until that thread's next claim or its exit, which is why there
 * are CR_TOKENS_PER_RSLOT tokens per slot.
 *
 * Whoever takes a token to use it settles it first: if the slot bound to
 * it (the token's slot word) still names it, the holder died owning that
 * slot, and the taker recovers it before anything else. This module only
 * judges; recovery is recover.c's.
 *
 * /proc is used only where pids are the data itself: connreg_reap's
 * judgement of CONNREG_TRANSPORT_IS_PID transports (cr_pid_*).
 */
#ifndef CONNREG_OWNER_H
#define CONNREG_OWNER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "handle.h"

enum cr_take {
	CR_TAKE_BUSY,		/* a live thread holds the token: nothing taken */
	CR_TAKE_FREE,		/* the slot is free (or was freed meanwhile): nothing taken */
	CR_TAKE_DEAD,		/* the owner is gone; we hold its token (*tok) */
	CR_TAKE_BROKEN,		/* the token cannot be judged (a corrupt segment) */
};

/* Does a judgement mean "a live thread owns it" (a broken token counts as alive)? */
static inline bool cr_take_alive(enum cr_take r)
{
	return r == CR_TAKE_BUSY || r == CR_TAKE_BROKEN;
}

/*
 * Judge slot i's owner; never blocks. On CR_TAKE_DEAD we hold token *tok
 * and must recover slot i (recover.c) before cr_token_give.
 */
enum cr_take cr_owner_take(struct connreg_handle *reg, uint32_t i, uint32_t *tok);

/*
 * Is slot i claimed by a live thread? A probe that recovers nothing: a
 * dead owner's token is let go with its binding intact, so the slot reads
 * dead again to the next taker, who recovers it. A broken token counts as
 * alive: never recover what cannot be judged.
 */
bool cr_owner_alive(struct connreg_handle *reg, uint32_t i);

/*
 * Take a free token for the calling thread. 0 and *tok, or -EAGAIN when
 * every token is held. *dead_slot is the slot the token's previous holder
 * died owning (the caller recovers it first), or CR_IDX_NONE.
 */
int cr_token_take_free(struct connreg_handle *reg, uint32_t *tok, uint32_t *dead_slot);

/* Bind a held token to the slot its holder is about to claim. */
void cr_token_bind(struct connreg_handle *reg, uint32_t tok, uint32_t slot);

/* Let go of a held token, unbinding it (its holder is done with its slot). */
void cr_token_give(struct connreg_handle *reg, uint32_t tok);

/* Unlock a token taken only to judge it, leaving its binding. */
void cr_token_release(struct connreg_handle *reg, uint32_t tok);

/* Initialise n tokens in a new segment. 0 or -errno. */
int cr_tokens_init(struct cr_token *tokens, uint32_t n);

/* ---- pids as data (CONNREG_TRANSPORT_IS_PID) ---- */

/*
 * Identity of this process's pid namespace (inode of /proc/self/ns/pid),
 * or 0 when pids here cannot be judged through /proc (no /proc, or a /proc
 * mounted for another pid namespace).
 */
uint32_t cr_pid_ns_self(void);

/* Low 31 bits of pid's start time in clock ticks, in our /proc; 0 if unknown. */
uint32_t cr_pid_start_lo(pid_t pid);

/*
 * 1 when process pid of our namespace, recorded with start_lo, has
 * certainly exited (no such pid, a zombie, or a pid reused by a process
 * that started at another time); 0 when alive or unknown.
 */
int cr_pid_dead(pid_t pid, uint32_t start_lo);

/* Per-process set-up of the cached identities above (after fork too); the caller serializes. */
void cr_pid_process_init(void);

#endif /* CONNREG_OWNER_H */
