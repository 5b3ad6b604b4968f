/*
 * connreg-demo: a transport dies, a replacement takes over its connections,
 * and a gateway that never stops looking ids up follows them.
 *
 *   parent    creates the registry, runs the timeline, verifies, cleans up
 *   T1 T2 T3  transports: each registers its own connection ids -> its pid
 *   gateway   resolves random ids at full speed and watches where they point
 *   T2'       replaces T2 after a SIGKILL and re-points T2's ids to itself
 *
 * Every role is a separate process that opens the registry by name; no
 * handle crosses a fork(). The parent and its children share one anonymous
 * mapping for flags and results, never registry state.
 *
 * Exit status: 0 when every check passed, 1 otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "connreg.h"

#define ID_SIZE			24	/* "conn-" + up to 10 digits + NUL */
#define BATCH			1024	/* gateway lookups between two clock reads */
#define SEQ_LEN			(1u << 18)	/* pregenerated random id indices */
#define INTERVAL_S		0.25	/* gateway rate sampling period */
#define MAX_INTERVALS		512
#define READY_TIMEOUT_S		5.0
#define REAP_TIMEOUT_S		5.0
#define MIN_CAPACITY		100000u
#define MAX_CONNS		1000000u

/* Roles double as indices into the child table and the label table. */
enum role { T1, T2, T3, T2_NEW, GATEWAY, PARENT };
#define NR_TRANSPORTS	4		/* T1, T2, T3, T2' */
#define NR_CHILDREN	(GATEWAY + 1)
#define LBL_OTHER	NR_TRANSPORTS	/* an answer that is nobody's pid */
#define NR_LABELS	(NR_TRANSPORTS + 1)
#define LBL_UNSEEN	0xff

static const char *const role_name[] = {
	[T1] = "T1", [T2] = "T2", [T3] = "T3", [T2_NEW] = "T2'",
	[GATEWAY] = "gateway", [PARENT] = "parent",
};

/* Where the gateway is in the story; it reads this before every batch. */
enum phase { PH_BEFORE_KILL, PH_TAKEOVER, PH_AFTER, NR_PHASES };

static const char *const phase_name[NR_PHASES] = {
	"before kill", "kill..takeover", "after takeover",
};

/* What happened when the gateway moved into each phase. */
static const char *const phase_event[NR_PHASES] = {
	NULL, "T2 killed", "T2' took over",
};

struct gateway_report {
	uint64_t lookups;
	double seconds;
	uint64_t count[NR_PHASES][NR_LABELS];
	uint64_t missing;	/* -ENOENT: every id stays registered */
	uint64_t misrouted;	/* answered with a pid that does not own it */
	uint64_t stale_after;	/* dead T2's pid after the takeover was done */
	uint64_t flip_backs;	/* id seen on T2' and later on T2 again */
	uint64_t repointed;	/* distinct ids seen on T2, then on T2' */
	double t_first_repoint;	/* < 0: never observed */
	unsigned int nr_intervals;
	double rate[MAX_INTERVALS];	/* lookups/s per INTERVAL_S */
	bool finished;		/* loop ended by the stop flag, not an error */
};

/* Lives in a MAP_SHARED anonymous mapping set up before the first fork. */
struct shared {
	_Atomic int phase;
	_Atomic int stop_gateway;
	_Atomic pid_t pid[NR_TRANSPORTS];
	double t_kill;
	double t_reaped;
	double t_takeover_attached;
	double t_takeover_done;
	unsigned int takeover_reregistered;
	struct gateway_report gw;
};

struct conn_id {
	char s[ID_SIZE];
	uint8_t len;
	uint8_t owner;		/* transport that registers it first */
};

struct child {
	pid_t pid;
	int ready_fd;		/* read end; the child writes one byte when ready */
	bool reaped;
	int status;
};

static struct {
	double phase_s;
	unsigned int conns;	/* per transport */
	unsigned int nr_ids;
	uint64_t capacity;
	char name[64];
} opt = { .phase_s = 1.0, .conns = 1000 };

static struct conn_id *ids;
static struct shared *sh;
static struct timespec t0;
static struct child children[NR_CHILDREN];
static int stop_pipe[2] = { -1, -1 };	/* transports serve until EOF */
static pid_t parent_pid;
static bool registry_created;
static volatile sig_atomic_t interrupted;
static bool all_passed = true;		/* every check() so far */

/* ------------------------------------------------------------------ */
/* Output: one write(2) per message so that processes never interleave */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)(ts.tv_sec - t0.tv_sec) + (ts.tv_nsec - t0.tv_nsec) / 1e9;
}

static void write_all(const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(STDOUT_FILENO, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

static size_t clamp_len(int n, size_t size)
{
	if (n < 0)
		return 0;
	return (size_t)n < size ? (size_t)n : size - 1;
}

static void __attribute__((format(printf, 2, 3)))
say(enum role role, const char *fmt, ...)
{
	char buf[1024], tag[16];
	va_list ap;
	size_t len;

	snprintf(tag, sizeof(tag), "[%s]", role_name[role]);
	len = clamp_len(snprintf(buf, sizeof(buf), "[%6.3f] %-9s ", now(), tag),
			sizeof(buf));
	va_start(ap, fmt);
	len += clamp_len(vsnprintf(buf + len, sizeof(buf) - len, fmt, ap),
			 sizeof(buf) - len);
	va_end(ap);
	if (len >= sizeof(buf) - 1)
		len = sizeof(buf) - 2;
	buf[len++] = '\n';
	write_all(buf, len);
}

/* Unprefixed text, for tables; callers add their own newlines. */
static void __attribute__((format(printf, 1, 2))) out(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	write_all(buf, clamp_len(n, sizeof(buf)));
}

/* Appends to a report buffer so a multi-line report is one write. */
static void __attribute__((format(printf, 3, 4)))
append(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

/* "12.34 M", "567.8 k" or "999": counts read better at a glance. */
static const char *human(uint64_t n, char *buf, size_t size)
{
	if (n >= 1000000)
		snprintf(buf, size, "%.2f M", n / 1e6);
	else if (n >= 10000)
		snprintf(buf, size, "%.1f k", n / 1e3);
	else
		snprintf(buf, size, "%" PRIu64, n);
	return buf;
}

static double ms(double seconds)
{
	return seconds * 1e3;
}

/* ------------------------------------------------------------------ */
/* Connection ids                                                     */

static void build_ids(void)
{
	unsigned int i;

	ids = calloc(opt.nr_ids, sizeof(*ids));
	if (!ids) {
		fprintf(stderr, "connreg-demo: out of memory\n");
		exit(1);
	}
	for (i = 0; i < opt.nr_ids; i++) {
		int n = snprintf(ids[i].s, ID_SIZE, "conn-%04u", i + 1);

		/* ids are byte strings: no NUL is stored or looked up */
		ids[i].len = (uint8_t)n;
		ids[i].owner = (uint8_t)(i / opt.conns);
	}
}

static unsigned int first_id_of(enum role transport)
{
	return (transport == T2_NEW ? T2 : transport) * opt.conns;
}

/* ------------------------------------------------------------------ */
/* Child side                                                         */

static void signal_ready(int ready_fd)
{
	char byte = 1;

	while (write(ready_fd, &byte, 1) < 0 && errno == EINTR)
		;
	close(ready_fd);
}

/* A transport "carries its connections" until the parent closes the pipe. */
static void serve_until_stopped(void)
{
	char byte;

	for (;;) {
		ssize_t n = read(stop_pipe[0], &byte, 1);

		if (n == 0 || (n < 0 && errno != EINTR))
			return;
	}
}

static int open_registry(enum role role, connreg_t **reg)
{
	int err = connreg_open(opt.name, reg);

	if (err)
		say(role, "connreg_open(\"%s\") failed: %s", opt.name,
		    connreg_strerror(err));
	return err;
}

static int register_own_ids(enum role role, connreg_t *reg, uint64_t me)
{
	unsigned int i, first = first_id_of(role);

	for (i = first; i < first + opt.conns; i++) {
		int err = connreg_register(reg, ids[i].s, ids[i].len, me);

		if (err) {
			say(role, "connreg_register(%s) failed: %s", ids[i].s,
			    connreg_strerror(err));
			return err;
		}
	}
	return 0;
}

static int run_transport(enum role role, int ready_fd)
{
	unsigned int first = first_id_of(role);
	double start = now();
	connreg_t *reg;

	if (open_registry(role, &reg))
		return 1;
	if (register_own_ids(role, reg, (uint64_t)getpid())) {
		connreg_close(reg);
		return 1;
	}
	say(role, "pid %d registered %s..%s -> transport %d (itself) in %.2f ms",
	    (int)getpid(), ids[first].s, ids[first + opt.conns - 1].s,
	    (int)getpid(), ms(now() - start));
	signal_ready(ready_fd);
	serve_until_stopped();
	connreg_close(reg);
	return 0;
}

/*
 * Re-point one of T2's ids. update_transport is the natural call for a live
 * id; register covers an id that someone unregistered in the meantime.
 */
static int take_over_id(connreg_t *reg, const struct conn_id *id, uint64_t me,
			unsigned int *reregistered)
{
	int err = connreg_update_transport(reg, id->s, id->len, me);

	if (err == -ENOENT) {
		(*reregistered)++;
		err = connreg_register(reg, id->s, id->len, me);
	}
	return err;
}

static int run_takeover(int ready_fd)
{
	unsigned int i, first = first_id_of(T2_NEW), reregistered = 0;
	uint64_t me = (uint64_t)getpid();
	double start = now();
	connreg_t *reg;

	/* Publish our pid first, so the gateway can name our answers. */
	atomic_store(&sh->pid[T2_NEW], getpid());
	if (open_registry(T2_NEW, &reg))
		return 1;
	sh->t_takeover_attached = now();
	for (i = first; i < first + opt.conns; i++) {
		int err = take_over_id(reg, &ids[i], me, &reregistered);

		if (err) {
			say(T2_NEW, "re-pointing %s failed: %s", ids[i].s,
			    connreg_strerror(err));
			connreg_close(reg);
			return 1;
		}
	}
	sh->t_takeover_done = now();
	sh->takeover_reregistered = reregistered;
	/* Every update has returned: lookups from now on must see T2'. */
	atomic_store_explicit(&sh->phase, PH_AFTER, memory_order_release);

	say(T2_NEW, "pid %d attached in %.2f ms, re-pointed %s..%s to itself in %.2f ms "
	    "(%u updated in place, %u re-registered)", (int)me,
	    ms(sh->t_takeover_attached - start), ids[first].s,
	    ids[first + opt.conns - 1].s,
	    ms(sh->t_takeover_done - sh->t_takeover_attached),
	    opt.conns - reregistered, reregistered);
	signal_ready(ready_fd);
	serve_until_stopped();
	connreg_close(reg);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Gateway                                                            */

struct gateway {
	connreg_t *reg;
	uint32_t *seq;		/* random id indices, generated before timing */
	uint8_t *last;		/* label last seen per id, LBL_UNSEEN at first */
	uint64_t pid[NR_TRANSPORTS];	/* 0 until that transport exists */
	struct gateway_report rep;
	uint64_t mark_lookups;	/* counters at the start of this interval */
	uint64_t mark_count[NR_LABELS];
	double mark_t;
	int mark_phase;		/* phase the current interval started in */
};

static uint64_t xorshift64s(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static int gateway_prepare(struct gateway *gw)
{
	uint64_t rng = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL) ^ 0x9e3779b97f4a7c15ull;
	unsigned int i;

	gw->seq = malloc(SEQ_LEN * sizeof(*gw->seq));
	gw->last = malloc(opt.nr_ids);
	if (!gw->seq || !gw->last) {
		say(GATEWAY, "out of memory");
		return -ENOMEM;
	}
	for (i = 0; i < SEQ_LEN; i++)
		gw->seq[i] = (uint32_t)(((xorshift64s(&rng) >> 32) * opt.nr_ids) >> 32);
	memset(gw->last, LBL_UNSEEN, opt.nr_ids);
	gw->rep.t_first_repoint = -1;
	return 0;
}

static void refresh_pids(struct gateway *gw)
{
	int i;

	for (i = 0; i < NR_TRANSPORTS; i++)
		gw->pid[i] = (uint64_t)atomic_load(&sh->pid[i]);
}

static int label_of(struct gateway *gw, uint64_t transport)
{
	int i, pass;

	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < NR_TRANSPORTS; i++)
			if (gw->pid[i] && gw->pid[i] == transport)
				return i;
		/* T2' may have appeared since we last looked. */
		refresh_pids(gw);
	}
	return LBL_OTHER;
}

static void note_repoint(struct gateway *gw, uint32_t k)
{
	double t = now();

	gw->rep.repointed++;
	if (gw->rep.t_first_repoint >= 0)
		return;
	gw->rep.t_first_repoint = t;
	say(GATEWAY, "first re-pointed id seen: %s moved T2 (pid %" PRIu64
	    ") -> T2' (pid %" PRIu64 "), %.2f ms after the kill",
	    ids[k].s, gw->pid[T2], gw->pid[T2_NEW], ms(t - sh->t_kill));
}

/* Checks one answer against what the story allows for that id. */
static void note_answer(struct gateway *gw, int phase, uint32_t k, uint64_t transport)
{
	int lbl = label_of(gw, transport);
	int prev = gw->last[k];

	gw->rep.count[phase][lbl]++;
	gw->last[k] = (uint8_t)lbl;
	if (ids[k].owner != T2) {
		if (lbl != ids[k].owner)
			gw->rep.misrouted++;
		return;
	}
	if (lbl != T2 && lbl != T2_NEW)
		gw->rep.misrouted++;
	if (lbl == T2 && phase == PH_AFTER)
		gw->rep.stale_after++;
	if (prev == T2 && lbl == T2_NEW)
		note_repoint(gw, k);
	else if (prev == T2_NEW && lbl == T2)
		gw->rep.flip_backs++;
}

static int lookup_batch(struct gateway *gw, int phase, uint32_t *pos)
{
	unsigned int i;

	for (i = 0; i < BATCH; i++) {
		uint32_t k = gw->seq[(*pos)++ & (SEQ_LEN - 1)];
		uint64_t transport;
		int err;

		err = connreg_get_transport(gw->reg, ids[k].s, ids[k].len, &transport);
		if (err == -ENOENT) {
			gw->rep.missing++;
			continue;
		}
		if (err) {
			say(GATEWAY, "connreg_get_transport(%s) failed: %s",
			    ids[k].s, connreg_strerror(err));
			return err;
		}
		note_answer(gw, phase, k, transport);
	}
	gw->rep.lookups += BATCH;
	return 0;
}

static uint64_t total_of_label(const struct gateway_report *rep, int lbl)
{
	uint64_t sum = 0;
	int ph;

	for (ph = 0; ph < NR_PHASES; ph++)
		sum += rep->count[ph][lbl];
	return sum;
}

/* "before kill", or the events that happened during the interval. */
static void describe_interval(int from, int to, char *buf, size_t size)
{
	int ph;

	buf[0] = 0;
	if (from == to) {
		append(buf, size, "%s", phase_name[to]);
		return;
	}
	for (ph = from + 1; ph <= to; ph++)
		append(buf, size, "%s%s", ph > from + 1 ? ", " : "", phase_event[ph]);
}

/* Prints and records one rate sample; the share shows T2 turning into T2'. */
static void close_interval(struct gateway *gw, double t, int phase)
{
	uint64_t n = gw->rep.lookups - gw->mark_lookups;
	double rate = n / (t - gw->mark_t);
	char line[256] = "", what[64];
	int lbl;

	for (lbl = 0; lbl < NR_LABELS; lbl++) {
		uint64_t c = total_of_label(&gw->rep, lbl);
		uint64_t d = c - gw->mark_count[lbl];

		gw->mark_count[lbl] = c;
		if (lbl == LBL_OTHER && !d)
			continue;
		append(line, sizeof(line), "  %s %4.1f%%",
		       lbl == LBL_OTHER ? "other" : role_name[lbl],
		       n ? 100.0 * d / n : 0.0);
	}
	if (gw->rep.nr_intervals < MAX_INTERVALS)
		gw->rep.rate[gw->rep.nr_intervals++] = rate;
	describe_interval(gw->mark_phase, phase, what, sizeof(what));
	say(GATEWAY, "%6.2f M lookups/s |%s | %s", rate / 1e6, line, what);
	gw->mark_lookups = gw->rep.lookups;
	gw->mark_t = t;
	gw->mark_phase = phase;
}

static int gateway_loop(struct gateway *gw)
{
	uint32_t pos = 0;
	double start, t;
	int phase = PH_BEFORE_KILL;

	start = gw->mark_t = now();
	while (!atomic_load_explicit(&sh->stop_gateway, memory_order_relaxed)) {
		/* Read before the batch: a batch tagged PH_AFTER began after T2' finished. */
		phase = atomic_load_explicit(&sh->phase, memory_order_acquire);
		if (lookup_batch(gw, phase, &pos))
			return 1;
		t = now();
		if (t - gw->mark_t >= INTERVAL_S)
			close_interval(gw, t, phase);
	}
	gw->rep.seconds = now() - start;
	gw->rep.finished = true;
	return 0;
}

static void report_rates(const struct gateway_report *rep, char *buf, size_t size)
{
	double lo = 0, hi = 0;
	unsigned int i;

	for (i = 0; i < rep->nr_intervals; i++) {
		if (!i || rep->rate[i] < lo)
			lo = rep->rate[i];
		if (!i || rep->rate[i] > hi)
			hi = rep->rate[i];
	}
	append(buf, size, "          per %.0f ms: min %.2f  max %.2f M lookups/s over %u intervals\n",
	       ms(INTERVAL_S), lo / 1e6, hi / 1e6, rep->nr_intervals);
}

static void report_distribution(const struct gateway *gw, char *buf, size_t size)
{
	const struct gateway_report *rep = &gw->rep;
	char num[32], who[32];
	int lbl, ph;

	append(buf, size, "          %-18s", "answers seen");
	for (ph = 0; ph < NR_PHASES; ph++)
		append(buf, size, "%16s", phase_name[ph]);
	append(buf, size, "\n");
	for (lbl = 0; lbl < NR_LABELS; lbl++) {
		if (lbl == LBL_OTHER)
			snprintf(who, sizeof(who), "other");
		else
			snprintf(who, sizeof(who), "%s (pid %" PRIu64 ")",
				 role_name[lbl], gw->pid[lbl]);
		append(buf, size, "          %-18s", who);
		for (ph = 0; ph < NR_PHASES; ph++)
			append(buf, size, "%16s", human(rep->count[ph][lbl], num, sizeof(num)));
		append(buf, size, "\n");
	}
	append(buf, size, "          %-18s%16s\n", "not found (ENOENT)",
	       human(rep->missing, num, sizeof(num)));
}

static void report_takeover(const struct gateway *gw, char *buf, size_t size)
{
	const struct gateway_report *rep = &gw->rep;
	uint64_t after = 0;
	char num[32];
	int lbl;

	for (lbl = 0; lbl < NR_LABELS; lbl++)
		after += rep->count[PH_AFTER][lbl];
	if (rep->t_first_repoint >= 0)
		append(buf, size, "          first re-pointed id seen %.2f ms after the kill; "
		       "%" PRIu64 " of T2's %u ids seen moving T2 -> T2'\n",
		       ms(rep->t_first_repoint - sh->t_kill), rep->repointed, opt.conns);
	else
		append(buf, size, "          no id was seen moving from T2 to T2'\n");
	append(buf, size, "          after takeover: %" PRIu64 " of %s lookups resolved to dead T2 (pid %"
	       PRIu64 ") -> %s\n", rep->stale_after, human(after, num, sizeof(num)),
	       gw->pid[T2], rep->stale_after ? "WRONG" : "ok");
}

static void gateway_report(struct gateway *gw)
{
	const struct gateway_report *rep = &gw->rep;
	char buf[4096] = "";

	refresh_pids(gw);
	report_rates(rep, buf, sizeof(buf));
	report_distribution(gw, buf, sizeof(buf));
	report_takeover(gw, buf, sizeof(buf));
	say(GATEWAY, "stopped: %.2f M lookups in %.2f s = %.2f M lookups/s, never restarted",
	    rep->lookups / 1e6, rep->seconds, rep->lookups / rep->seconds / 1e6);
	write_all(buf, strlen(buf));
}

static int run_gateway(int ready_fd)
{
	struct gateway gw = { 0 };
	uint64_t transport;
	int err, rc;

	if (open_registry(GATEWAY, &gw.reg))
		return 1;
	if (gateway_prepare(&gw))
		goto fail;
	refresh_pids(&gw);
	/* The first lookup takes this thread's reader slot: fail before "ready". */
	err = connreg_get_transport(gw.reg, ids[0].s, ids[0].len, &transport);
	if (err) {
		say(GATEWAY, "first lookup of %s failed: %s", ids[0].s,
		    connreg_strerror(err));
		goto fail;
	}
	say(GATEWAY, "pid %d attached; %u random lookups over %s..%s pregenerated; "
	    "looking up at full speed", (int)getpid(), SEQ_LEN, ids[0].s,
	    ids[opt.nr_ids - 1].s);
	signal_ready(ready_fd);

	rc = gateway_loop(&gw);
	if (!rc)
		gateway_report(&gw);
	sh->gw = gw.rep;
	connreg_close(gw.reg);
	free(gw.seq);
	free(gw.last);
	return rc;

fail:
	connreg_close(gw.reg);
	free(gw.seq);
	free(gw.last);
	return 1;
}

/* ------------------------------------------------------------------ */
/* Parent: process management                                         */

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void install_signal_handlers(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	size_t i;

	/* No SA_RESTART: poll() returns EINTR and we notice the flag. */
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	/* "connreg-demo | head" must not kill us before the segment is gone. */
	signal(SIGPIPE, SIG_IGN);
}

/* Children must die on Ctrl-C and with the parent, never linger. */
static void become_child(void)
{
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent_pid)
		_exit(1);
	close(stop_pipe[1]);
}

static int child_main(enum role role, int ready_fd)
{
	become_child();
	switch (role) {
	case T1:
	case T2:
	case T3:
		return run_transport(role, ready_fd);
	case T2_NEW:
		return run_takeover(ready_fd);
	case GATEWAY:
		return run_gateway(ready_fd);
	default:
		return 1;
	}
}

static void unlink_registry(void)
{
	int err;

	/* atexit runs in the parent only: children leave with _exit(). */
	if (!registry_created || getpid() != parent_pid)
		return;
	registry_created = false;
	err = connreg_unlink(opt.name);
	if (err)
		say(PARENT, "connreg_unlink(\"%s\") failed: %s", opt.name,
		    connreg_strerror(err));
}

static void kill_all_children(void)
{
	int i;

	for (i = 0; i < NR_CHILDREN; i++) {
		struct child *c = &children[i];

		if (!c->pid || c->reaped)
			continue;
		kill(c->pid, SIGKILL);
		while (waitpid(c->pid, &c->status, 0) < 0 && errno == EINTR)
			;
		c->reaped = true;
	}
}

static void check_interrupted(void);

static void __attribute__((format(printf, 1, 2), noreturn)) abort_demo(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	/* A child that died of our Ctrl-C is not a failure of the registry. */
	check_interrupted();
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	say(PARENT, "%s", msg);
	kill_all_children();
	say(PARENT, "RESULT: FAIL");
	exit(1);	/* atexit removes the segment */
}

static void check_interrupted(void)
{
	if (!interrupted)
		return;
	say(PARENT, "interrupted: stopping every child and removing %s", opt.name);
	kill_all_children();
	exit(130);
}

static void nap(double seconds)
{
	double end = now() + seconds;
	double left;

	while ((left = end - now()) > 0) {
		check_interrupted();
		poll(NULL, 0, (int)(ms(left)) + 1);
	}
	check_interrupted();
}

static void spawn(enum role role)
{
	int ready[2];
	pid_t pid;

	if (pipe(ready))
		abort_demo("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		abort_demo("fork: %s", strerror(errno));
	if (pid == 0) {
		close(ready[0]);
		_exit(child_main(role, ready[1]));
	}
	close(ready[1]);
	children[role] = (struct child){ .pid = pid, .ready_fd = ready[0] };
	if (role < NR_TRANSPORTS)
		atomic_store(&sh->pid[role], pid);
}

/* Waits for the child's ready byte; EOF means it gave up (it said why). */
static void wait_ready(enum role role)
{
	struct child *c = &children[role];
	struct pollfd pfd = { .fd = c->ready_fd, .events = POLLIN };
	double deadline = now() + READY_TIMEOUT_S;
	char byte;
	ssize_t n;

	for (;;) {
		double left = deadline - now();

		check_interrupted();
		if (left <= 0)
			abort_demo("%s (pid %d) not ready after %.0f s", role_name[role],
				   (int)c->pid, READY_TIMEOUT_S);
		if (poll(&pfd, 1, (int)ms(left) + 1) <= 0)
			continue;
		n = read(c->ready_fd, &byte, 1);
		if (n == 1)
			break;
		if (n < 0 && errno == EINTR)
			continue;
		abort_demo("%s (pid %d) failed before it was ready", role_name[role],
			   (int)c->pid);
	}
	close(c->ready_fd);
	c->ready_fd = -1;
}

/* Reaps a child that was told to stop; a hung one is killed, not waited on. */
static void reap(enum role role)
{
	struct child *c = &children[role];
	double deadline = now() + REAP_TIMEOUT_S;
	bool killed = false;
	pid_t r;

	while ((r = waitpid(c->pid, &c->status, WNOHANG)) <= 0) {
		if (r < 0 && errno != EINTR)
			abort_demo("waitpid(%d): %s", (int)c->pid, strerror(errno));
		if (!killed && now() > deadline) {
			say(PARENT, "%s (pid %d) did not stop within %.0f s: SIGKILL",
			    role_name[role], (int)c->pid, REAP_TIMEOUT_S);
			kill(c->pid, SIGKILL);
			killed = true;
		}
		poll(NULL, 0, 1);
	}
	c->reaped = true;
}

static bool exited_cleanly(enum role role)
{
	int st = children[role].status;

	return children[role].reaped && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static bool died_of_sigkill(enum role role)
{
	int st = children[role].status;

	return children[role].reaped && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
}

/* ------------------------------------------------------------------ */
/* Parent: the story                                                  */

static connreg_t *create_registry(void)
{
	connreg_config_t cfg = { .capacity = opt.capacity };
	connreg_t *reg;
	int err;

	err = connreg_create(opt.name, &cfg, &reg);
	if (err)
		abort_demo("connreg_create(\"%s\") failed: %s", opt.name,
			   connreg_strerror(err));
	registry_created = true;
	say(PARENT, "created registry %s (capacity %" PRIu64 " ids)", opt.name,
	    opt.capacity);
	return reg;
}

static void start_transports(void)
{
	int t;

	/* All three register at once: concurrent inserts into one segment. */
	for (t = T1; t <= T3; t++)
		spawn(t);
	for (t = T1; t <= T3; t++)
		wait_ready(t);
}

static void kill_t2(void)
{
	pid_t pid = children[T2].pid;

	say(PARENT, "SIGKILL T2 (pid %d): its %u connections lose their transport",
	    (int)pid, opt.conns);
	sh->t_kill = now();
	atomic_store_explicit(&sh->phase, PH_TAKEOVER, memory_order_release);
	if (kill(pid, SIGKILL))
		abort_demo("kill(%d): %s", (int)pid, strerror(errno));
	reap(T2);
	sh->t_reaped = now();
	if (!died_of_sigkill(T2))
		abort_demo("T2 (pid %d) ended before the kill (status 0x%x)", (int)pid,
			   children[T2].status);
	say(PARENT, "T2 reaped %.2f ms after the kill; starting T2' to take over",
	    ms(sh->t_reaped - sh->t_kill));
}

static void take_over_t2(void)
{
	spawn(T2_NEW);
	wait_ready(T2_NEW);
	say(PARENT, "takeover done: T2' (pid %d) carries T2's %u connections, "
	    "%.2f ms after the kill", (int)children[T2_NEW].pid, opt.conns,
	    ms(sh->t_takeover_done - sh->t_kill));
}

static void stop_gateway(void)
{
	say(PARENT, "stopping the gateway");
	atomic_store(&sh->stop_gateway, 1);
	reap(GATEWAY);
}

static void stop_transports(void)
{
	/* EOF on the pipe tells every live transport to detach and exit. */
	close(stop_pipe[1]);
	stop_pipe[1] = -1;
	reap(T1);
	reap(T3);
	reap(T2_NEW);
}

/* The parent's own view: every T2 id must now belong to T2'. */
static unsigned int verify_from_parent(connreg_t *reg, unsigned int *moved)
{
	unsigned int i, bad = 0;

	*moved = 0;
	for (i = 0; i < opt.nr_ids; i++) {
		enum role want = ids[i].owner == T2 ? T2_NEW : (enum role)ids[i].owner;
		uint64_t expect = (uint64_t)children[want].pid;
		uint64_t transport = 0;
		int err;

		err = connreg_get_transport(reg, ids[i].s, ids[i].len, &transport);
		if (!err && transport == expect) {
			*moved += want == T2_NEW;
			continue;
		}
		if (bad++ < 5) {
			if (err)
				say(PARENT, "%s: %s", ids[i].s, connreg_strerror(err));
			else
				say(PARENT, "%s -> %" PRIu64 ", expected %s (pid %" PRIu64 ")",
				    ids[i].s, transport, role_name[want], expect);
		}
	}
	return bad;
}

static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(bool ok, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	out("  %s  %s\n", ok ? "PASS" : "FAIL", msg);
	all_passed &= ok;
}

static void print_roles(void)
{
	const struct gateway_report *gw = &sh->gw;
	char range[64];	/* "conn-0001..conn-1000" */
	int t;

	out("\n  %-8s %-8s %-24s %s\n", "role", "pid", "connections", "what happened");
	for (t = T1; t <= T2_NEW; t++) {
		unsigned int first = first_id_of(t);

		snprintf(range, sizeof(range), "%s..%s", ids[first].s,
			 ids[first + opt.conns - 1].s);
		out("  %-8s %-8d %-24s ", role_name[t], (int)children[t].pid, range);
		if (t == T2)
			out("SIGKILLed at %.3f s\n", sh->t_kill);
		else if (t == T2_NEW)
			out("took over %.2f ms after the kill\n",
			    ms(sh->t_takeover_done - sh->t_kill));
		else
			out("registered, served until the end\n");
	}
	out("  %-8s %-8d %-24s %.2f M lookups, %.2f M/s, no restart\n", "gateway",
	    (int)children[GATEWAY].pid, "random over all ids", gw->lookups / 1e6,
	    gw->seconds > 0 ? gw->lookups / gw->seconds / 1e6 : 0.0);
}

static void print_checks(unsigned int bad, unsigned int moved)
{
	const struct gateway_report *gw = &sh->gw;
	uint64_t t2_after = gw->count[PH_AFTER][T2];
	uint64_t after_total = 0;
	char num[32];
	int lbl;

	for (lbl = 0; lbl < NR_LABELS; lbl++)
		after_total += gw->count[PH_AFTER][lbl];
	out("\n");
	check(exited_cleanly(GATEWAY) && gw->finished,
	      "gateway ran through the takeover without reopening or restarting");
	if (gw->t_first_repoint >= 0)
		check(true, "gateway saw T2's ids move to T2' (%" PRIu64
		      " ids, first %.2f ms after the kill)", gw->repointed,
		      ms(gw->t_first_repoint - sh->t_kill));
	else
		check(false, "gateway saw T2's ids move to T2' (never)");
	check(after_total > 0 && t2_after == 0 && gw->stale_after == 0,
	      "after takeover no lookup resolved to dead T2 (%" PRIu64 " of %s)",
	      t2_after, human(after_total, num, sizeof(num)));
	check(gw->flip_backs == 0, "no id went back from T2' to T2 (%" PRIu64 ")",
	      gw->flip_backs);
	check(gw->missing == 0 && gw->misrouted == 0,
	      "every lookup found its id on a transport allowed to carry it "
	      "(%" PRIu64 " missing, %" PRIu64 " misrouted)", gw->missing, gw->misrouted);
	check(bad == 0 && moved == opt.conns,
	      "parent: %u/%u of T2's ids map to T2' (pid %d), T1/T3 ids unchanged",
	      moved, opt.conns, (int)children[T2_NEW].pid);
	check(exited_cleanly(T1) && exited_cleanly(T3) && exited_cleanly(T2_NEW) &&
	      died_of_sigkill(T2), "every process ended as planned");
}

/* ------------------------------------------------------------------ */
/* Setup                                                              */

static void usage(FILE *f, const char *argv0)
{
	fprintf(f,
		"usage: %s [--seconds S] [--conns N]\n"
		"  --seconds S  gateway time before the kill and after the takeover (default 1.0)\n"
		"  --conns N    connection ids per transport (default 1000)\n",
		argv0);
}

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "conns", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "s:c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			opt.phase_s = strtod(optarg, &end);
			if (*end || !(opt.phase_s >= 0.1 && opt.phase_s <= 60)) {
				fprintf(stderr, "--seconds: want 0.1..60\n");
				exit(1);
			}
			break;
		case 'c':
			errno = 0;
			opt.conns = (unsigned int)strtoul(optarg, &end, 10);
			if (*end || errno || opt.conns < 1 || opt.conns > MAX_CONNS) {
				fprintf(stderr, "--conns: want 1..%u\n", MAX_CONNS);
				exit(1);
			}
			break;
		case 'h':
			usage(stdout, argv[0]);
			exit(0);
		default:
			usage(stderr, argv[0]);
			exit(1);
		}
	}
	if (optind < argc) {
		usage(stderr, argv[0]);
		exit(1);
	}
	opt.nr_ids = 3 * opt.conns;
	opt.capacity = opt.nr_ids > MIN_CAPACITY ? opt.nr_ids : MIN_CAPACITY;
}

static void setup_process_state(void)
{
	parent_pid = getpid();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	snprintf(opt.name, sizeof(opt.name), "/connreg-demo-%d", (int)parent_pid);

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	if (pipe(stop_pipe)) {
		perror("pipe");
		exit(1);
	}
	build_ids();
	install_signal_handlers();
	atexit(unlink_registry);
}

int main(int argc, char **argv)
{
	unsigned int bad, moved;
	connreg_t *reg;

	parse_args(argc, argv);
	setup_process_state();
	out("connreg demo: 3 transports x %u connections, a gateway looking them up,\n"
	    "and transport T2 killed and replaced after %.1f s. Each role is its own process.\n\n",
	    opt.conns, opt.phase_s);

	reg = create_registry();
	start_transports();
	spawn(GATEWAY);
	wait_ready(GATEWAY);

	nap(opt.phase_s);
	kill_t2();
	take_over_t2();
	nap(opt.phase_s);
	stop_gateway();

	bad = verify_from_parent(reg, &moved);
	say(PARENT, "own lookup of all %u ids: %u of T2's ids on T2', %u wrong",
	    opt.nr_ids, moved, bad);
	stop_transports();
	connreg_close(reg);
	unlink_registry();
	say(PARENT, "registry %s unlinked", opt.name);

	print_roles();
	print_checks(bad, moved);
	out("\nRESULT: %s\n", all_passed ? "PASS" : "FAIL");
	return all_passed ? 0 : 1;
}
