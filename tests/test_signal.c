/*
 * test_signal.c: a lookup made from a signal handler that interrupted a
 * lookup on the same thread and handle (they share the thread's reader
 * slot) must leave the interrupted lookup's section announced. If the
 * nested lookup withdrew it, a writer's grace period could complete while
 * the interrupted lookup still reads a record, and the record's reuse
 * could hand it another id's transport.
 *
 * The interruption is made deterministic: the outer lookup's output
 * buffer is a PROT_NONE page, so its store of the answer (made inside its
 * section, before the withdraw) faults. The SIGSEGV handler runs nested
 * lookups, reads this thread's slot through connreg_readers, opens the
 * page and returns; the store then completes.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <signal.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static void sg_fini(void)
{
	t_cleanup_names();
}

TestSuite(signal, .fini = sg_fini, .timeout = 60);

#define SG_IDS 4
static const char *const sg_id[SG_IDS] = {
	"sixteen-byte-id!",		/* 16 bytes: the fast copy for 16 */
	"ten-bytes!",			/* 10 bytes: the copy for 8..15 */
	"id-of-twenty-bytes!!",		/* 20 bytes: the slow path */
	"abc",				/* 3 bytes: the copy for 1..7 */
};

static connreg_t *sg_reg;
static void *sg_page;
static long sg_page_size;

/* What the handler saw. */
static volatile sig_atomic_t sg_faults;
static uint64_t sg_epoch_before, sg_epoch_after;
static int sg_rc[SG_IDS], sg_bulk_rc[SG_IDS];
static uint64_t sg_val[SG_IDS], sg_bulk_val[SG_IDS];

static uint64_t sg_value(int i)
{
	return 1000u + (uint64_t)i;
}

struct sg_find {
	uint32_t tid;
	uint64_t epoch;
	int found;
};

static int sg_find_fn(const connreg_reader_t *rd, void *arg)
{
	struct sg_find *f = arg;

	if (rd->pid == getpid() && rd->tid == f->tid) {
		f->epoch = rd->epoch;
		f->found++;
	}
	return 0;
}

/* The epoch this thread's reader slot announces (0: in no section). */
static uint64_t sg_my_epoch(void)
{
	struct sg_find f = { (uint32_t)gettid(), 0, 0 };

	cr_assert_eq(connreg_readers(sg_reg, sg_find_fn, &f), 0);
	cr_assert_eq(f.found, 1, "this thread holds %d reader slots", f.found);
	return f.epoch;
}

static void sg_handler(int sig, siginfo_t *si, void *uc)
{
	const void *ids[SG_IDS];
	size_t lens[SG_IDS];

	(void)sig;
	(void)uc;
	if ((char *)si->si_addr < (char *)sg_page ||
	    (char *)si->si_addr >= (char *)sg_page + sg_page_size)
		abort();	/* a real crash */
	sg_faults++;
	sg_epoch_before = sg_my_epoch();
	for (int i = 0; i < SG_IDS; i++) {
		sg_rc[i] = connreg_get_transport(sg_reg, sg_id[i], strlen(sg_id[i]), &sg_val[i]);
		ids[i] = sg_id[i];
		lens[i] = strlen(sg_id[i]);
	}
	connreg_get_transport_bulk(sg_reg, SG_IDS, ids, lens, sg_bulk_val, sg_bulk_rc);
	sg_epoch_after = sg_my_epoch();
	if (mprotect(sg_page, (size_t)sg_page_size, PROT_READ | PROT_WRITE) != 0)
		abort();
}

static void sg_setup(char *name)
{
	connreg_config_t cfg = t_cfg(64, 32, 4);
	struct sigaction sa;
	uint64_t v;

	t_name(name, "signal");
	cr_assert_eq(connreg_create(name, &cfg, &sg_reg), 0);
	for (int i = 0; i < SG_IDS; i++)
		cr_assert_eq(connreg_register(sg_reg, sg_id[i], strlen(sg_id[i]), sg_value(i)), 0);
	/* The thread's first lookup claims its slot (not async-signal-safe): done here. */
	cr_assert_eq(connreg_get_transport(sg_reg, sg_id[0], strlen(sg_id[0]), &v), 0);
	sg_page_size = sysconf(_SC_PAGESIZE);
	sg_page = mmap(NULL, (size_t)sg_page_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(sg_page, MAP_FAILED);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sg_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(SIGSEGV, &sa, NULL), 0);
}

/* Arm the page again and clear what the last handler saw. */
static void sg_arm(void)
{
	cr_assert_eq(mprotect(sg_page, (size_t)sg_page_size, PROT_NONE), 0);
	sg_faults = 0;
	sg_epoch_before = sg_epoch_after = 0;
	memset(sg_rc, 0x7f, sizeof(sg_rc));
	memset(sg_bulk_rc, 0x7f, sizeof(sg_bulk_rc));
	memset(sg_val, 0, sizeof(sg_val));
	memset(sg_bulk_val, 0, sizeof(sg_bulk_val));
}

/* What every nested lookup must have seen, and the outer section's slot. */
static void sg_check(const char *outer)
{
	cr_assert_eq(sg_faults, 1, "%s: the answer's store did not fault once", outer);
	cr_assert_neq(sg_epoch_before, 0, "%s: the fault was not inside the section", outer);
	for (int i = 0; i < SG_IDS; i++) {
		cr_assert_eq(sg_rc[i], 0, "%s: nested lookup of %s: %d", outer, sg_id[i], sg_rc[i]);
		cr_assert_eq(sg_val[i], sg_value(i), "%s: nested lookup of %s", outer, sg_id[i]);
		cr_assert_eq(sg_bulk_rc[i], 0, "%s: nested bulk, %s", outer, sg_id[i]);
		cr_assert_eq(sg_bulk_val[i], sg_value(i), "%s: nested bulk, %s", outer, sg_id[i]);
	}
	cr_assert_eq(sg_epoch_after, sg_epoch_before,
		     "%s: the nested lookups changed the interrupted section's announcement "
		     "(%" PRIu64 " before, %" PRIu64 " after)",
		     outer, sg_epoch_before, sg_epoch_after);
	cr_assert_eq(sg_my_epoch(), 0, "%s: the section was not withdrawn at its end", outer);
}

Test(signal, a_lookup_nested_in_a_lookup_leaves_the_outer_section_announced)
{
	char name[T_NAME_BUF];

	sg_setup(name);
	/* The interrupted lookup by each path: every length copy and the slow path. */
	for (int i = 0; i < SG_IDS; i++) {
		sg_arm();
		cr_assert_eq(connreg_get_transport(sg_reg, sg_id[i], strlen(sg_id[i]),
						   (uint64_t *)sg_page), 0);
		cr_assert_eq(*(uint64_t *)sg_page, sg_value(i));
		sg_check(sg_id[i]);
	}
	/* The interrupted call a bulk lookup: its answers are stored inside its section. */
	{
		const void *ids[SG_IDS];
		size_t lens[SG_IDS];
		int rc[SG_IDS];

		for (int i = 0; i < SG_IDS; i++)
			ids[i] = sg_id[i], lens[i] = strlen(sg_id[i]);
		sg_arm();
		connreg_get_transport_bulk(sg_reg, SG_IDS, ids, lens, (uint64_t *)sg_page, rc);
		for (int i = 0; i < SG_IDS; i++) {
			cr_assert_eq(rc[i], 0);
			cr_assert_eq(((uint64_t *)sg_page)[i], sg_value(i));
		}
		sg_check("bulk");
	}
	connreg_close(sg_reg);
}

/*
 * The same nesting, at random points, against a writer process that
 * removes and re-inserts ids (so positions are reused after grace
 * periods): a 200 us timer (a real-time signal) interrupts the reader's
 * lookups and its handler looks ids up too. Each transport names its id, so an answer
 * that belongs to another id is seen. The deterministic test above is
 * the one that fails on a nested lookup ending its outer section; this
 * one checks the whole read side under signals and writers together.
 */
#define SG_CHURN_IDS 48
#define SG_CHURN_MS 1500

static connreg_t *sg_churn_reg;
static volatile sig_atomic_t sg_churn_ticks, sg_churn_wrong;
static unsigned sg_churn_rng = 12345;

/* "churn-NNN", built by hand: the signal handler calls it (no snprintf there). */
static void sg_churn_id(unsigned i, char id[16])
{
	memcpy(id, "churn-", 6);
	id[6] = (char)('0' + i / 100 % 10);
	id[7] = (char)('0' + i / 10 % 10);
	id[8] = (char)('0' + i % 10);
	id[9] = '\0';
}

/* A transport of id i names it in its high half. */
static int sg_churn_check(unsigned i, int rc, uint64_t t)
{
	return rc == -ENOENT || (rc == 0 && (t >> 32) == i) ? 0 : 1;
}

static void sg_churn_handler(int sig)
{
	(void)sig;
	for (int k = 0; k < 4; k++) {
		unsigned i;
		char id[16];
		uint64_t t = 0;

		sg_churn_rng = sg_churn_rng * 1103515245u + 12345u;
		i = (sg_churn_rng >> 16) % SG_CHURN_IDS;
		sg_churn_id(i, id);
		int rc = connreg_get_transport(sg_churn_reg, id, strlen(id), &t);

		sg_churn_wrong += sg_churn_check(i, rc, t);
	}
	sg_churn_ticks++;
}

static int sg_churn_writer(void *arg)
{
	const char *name = arg;
	uint64_t end = t_now_ms() + SG_CHURN_MS;
	uint32_t v = 1, rng = 777;
	connreg_t *r;

	if (connreg_open(name, &r) != 0)
		return 2;
	while (t_now_ms() < end) {
		char id[16];
		unsigned i;
		int rc;

		rng = rng * 1103515245u + 12345u;
		i = (rng >> 16) % SG_CHURN_IDS;
		sg_churn_id(i, id);
		if (connreg_unregister(r, id, strlen(id)) != 0)
			return 3;
		rc = connreg_register(r, id, strlen(id), (uint64_t)i << 32 | v++);
		if (rc != 0 && rc != -EAGAIN)
			return 4;
	}
	connreg_close(r);
	return 0;
}

Test(signal, lookups_from_a_timer_signal_never_see_another_ids_transport)
{
	char name[T_NAME_BUF];
	connreg_config_t cfg = t_cfg(SG_CHURN_IDS, 16, 8);
	struct itimerspec it = { { 0, 200000 }, { 0, 200000 } };
	struct sigevent ev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN + 1 };
	timer_t timer;
	uint64_t end, lookups = 0;
	unsigned wrong = 0;
	pid_t writer;

	t_name(name, "sigchurn");
	cr_assert_eq(connreg_create(name, &cfg, &sg_churn_reg), 0);
	for (unsigned i = 0; i < SG_CHURN_IDS; i++) {
		char id[16];

		sg_churn_id(i, id);
		cr_assert_eq(connreg_register(sg_churn_reg, id, strlen(id), (uint64_t)i << 32), 0);
	}
	/* The thread's first lookup (it claims the slot) before any signal. */
	{
		uint64_t t;

		cr_assert_eq(connreg_get_transport(sg_churn_reg, "churn-000", 9, &t), 0);
	}
	cr_assert_neq(signal(SIGRTMIN + 1, sg_churn_handler), SIG_ERR);
	cr_assert_eq(timer_create(CLOCK_MONOTONIC, &ev, &timer), 0);
	writer = t_fork(sg_churn_writer, name);
	cr_assert_gt(writer, 0);
	cr_assert_eq(timer_settime(timer, 0, &it, NULL), 0);
	end = t_now_ms() + SG_CHURN_MS;
	for (unsigned i = 0; t_now_ms() < end; i = (i + 7) % SG_CHURN_IDS) {
		char id[16];
		uint64_t t = 0;

		sg_churn_id(i, id);
		for (int k = 0; k < 64; k++, lookups++) {
			int rc = connreg_get_transport(sg_churn_reg, id, strlen(id), &t);

			wrong += (unsigned)sg_churn_check(i, rc, t);
		}
	}
	cr_assert_eq(timer_delete(timer), 0);
	cr_assert_eq(t_wait(writer, 10000), 0, "the writer failed");
	cr_assert_eq(wrong, 0, "%u of %" PRIu64 " lookups returned another id's transport", wrong,
		     lookups);
	cr_assert_eq(sg_churn_wrong, 0, "%d lookups in the handler returned another id's transport",
		     (int)sg_churn_wrong);
	cr_assert_gt(sg_churn_ticks, 50, "the timer fired only %d times", (int)sg_churn_ticks);
	cr_assert_eq(connreg_check(sg_churn_reg, NULL, NULL), 0);
	connreg_close(sg_churn_reg);
}
