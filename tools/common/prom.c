/*
 * prom.c: Prometheus text exposition of a registry (see prom.h), and the
 * collection and confirmed check both tools share.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "prom.h"

static int count_reader(const connreg_reader_t *r, void *arg)
{
	struct connreg_prom_sample *s = arg;

	if (!r->alive)
		s->readers_dead++;
	if (r->epoch) {
		s->readers_in_lookup++;
		if (s->oldest_lookup_epoch == 0 || r->epoch < s->oldest_lookup_epoch)
			s->oldest_lookup_epoch = r->epoch;
	}
	return 0;
}

int connreg_prom_collect(connreg_t *reg, struct connreg_prom_sample *s)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->st.size = sizeof(s->st);
	rc = connreg_stats(reg, &s->st);
	if (rc == 0)
		rc = connreg_readers(reg, count_reader, s);
	return rc;
}

static void pause_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int connreg_prom_check(connreg_t *reg, unsigned recheck_ms,
		       void (*report)(const char *problem, void *arg), void *arg)
{
	int rc = connreg_check(reg, NULL, NULL);

	if (rc <= 0)
		return rc;
	/* Only what a second look still finds counts. */
	pause_ms(recheck_ms);
	return connreg_check(reg, report, arg);
}

/* ------------------------------------------------------------------ */
/* writing                                                             */
/* ------------------------------------------------------------------ */

struct out {
	FILE *f;
	char label[3 * CONNREG_NAME_MAX + 32];	/* registry="..." */
};

/* Label values escape backslash, double quote and newline. */
static void make_label(struct out *o, const char *name)
{
	size_t n = 0, cap = sizeof(o->label);

	n += (size_t)snprintf(o->label, cap, "registry=\"");
	for (const char *p = name; *p && n + 4 < cap; p++) {
		if (*p == '\\' || *p == '"') {
			o->label[n++] = '\\';
			o->label[n++] = *p;
		} else if (*p == '\n') {
			o->label[n++] = '\\';
			o->label[n++] = 'n';
		} else {
			o->label[n++] = *p;
		}
	}
	o->label[n++] = '"';
	o->label[n] = '\0';
}

static void head(struct out *o, const char *metric, const char *type, const char *help)
{
	fprintf(o->f, "# HELP %s %s\n# TYPE %s %s\n", metric, help, metric, type);
}

static void u64(struct out *o, const char *metric, const char *type, const char *help,
		uint64_t v)
{
	head(o, metric, type, help);
	fprintf(o->f, "%s{%s} %" PRIu64 "\n", metric, o->label, v);
}

static void dbl(struct out *o, const char *metric, const char *type, const char *help,
		double v)
{
	head(o, metric, type, help);
	if (isnan(v))
		fprintf(o->f, "%s{%s} NaN\n", metric, o->label);
	else
		fprintf(o->f, "%s{%s} %.15g\n", metric, o->label, v);
}

#define GAUGE "gauge"
#define COUNTER "counter"

static void write_registry(struct out *o, const struct connreg_prom_sample *s)
{
	const connreg_stats_t *st = &s->st;

	head(o, "connreg_info", GAUGE,
	     "Constant 1; the registry's layout version and creation flags as labels.");
	fprintf(o->f,
		"connreg_info{%s,layout_version=\"%" PRIu32 "\",flags=\"0x%" PRIx32
		"\",transport_is_pid=\"%s\"} 1\n",
		o->label, st->layout_version, st->flags,
		st->flags & CONNREG_TRANSPORT_IS_PID ? "true" : "false");
	u64(o, "connreg_capacity_ids", GAUGE,
	    "Live connection ids the registry can hold (its configured capacity).", st->capacity);
	u64(o, "connreg_live_ids", GAUGE, "Connection ids registered now.", st->live);
	u64(o, "connreg_free_entries", GAUGE, "Entries ready for use.", st->free);
	u64(o, "connreg_retired_entries", GAUGE,
	    "Entries waiting for a grace period before they can be reused.", st->retired);
	u64(o, "connreg_pool_entries", GAUGE, "Entry pool size (capacity plus slack).",
	    st->entries);
	u64(o, "connreg_index_buckets", GAUGE, "Index buckets (7 slots each).", st->buckets);
	u64(o, "connreg_tombstones", GAUGE, "Index slots freed by unregister, reusable.",
	    st->tombstones);
	u64(o, "connreg_max_probe_buckets", GAUGE, "Most buckets any lookup may visit.",
	    st->max_probe);
	u64(o, "connreg_epoch", GAUGE, "Current grace-period epoch.", st->epoch);
	u64(o, "connreg_safe_epoch", GAUGE,
	    "Entries retired before this epoch are reusable.", st->safe_epoch);
	u64(o, "connreg_segment_size_bytes", GAUGE, "Size of the shared-memory segment.",
	    st->segment_size);
	u64(o, "connreg_key_max_bytes", GAUGE, "Longest connection id the registry accepts.",
	    st->key_max);
	u64(o, "connreg_reader_slots", GAUGE,
	    "Reader slots in the segment (threads that can be attached at once).",
	    st->max_threads);
	u64(o, "connreg_reader_slots_in_use", GAUGE, "Reader slots claimed by threads.",
	    st->readers);
	u64(o, "connreg_reader_slots_dead", GAUGE,
	    "Claimed reader slots whose process has exited, awaiting recovery.",
	    s->readers_dead);
	u64(o, "connreg_readers_in_lookup", GAUGE,
	    "Reader slots inside a lookup when the sample was taken.", s->readers_in_lookup);
	u64(o, "connreg_reader_epoch_lag", GAUGE,
	    "Epochs the oldest reader inside a lookup is behind the current one (0: none); "
	    "a value that keeps growing is a stopped reader holding back reclamation.",
	    s->oldest_lookup_epoch && st->epoch > s->oldest_lookup_epoch
		    ? st->epoch - s->oldest_lookup_epoch
		    : 0);
	u64(o, "connreg_writer_eagain_total", COUNTER,
	    "Writer calls that returned EAGAIN (stalled reclamation, stopped lock holder, "
	    "no reader slot), summed over every process.",
	    st->writer_eagain);
	u64(o, "connreg_slots_recovered_total", COUNTER,
	    "Reader slots of dead threads taken back.", st->slots_recovered);
	u64(o, "connreg_grace_periods_total", COUNTER, "Grace periods completed.",
	    st->grace_periods);
}

static void write_extra(struct out *o, const struct connreg_prom_extra *x)
{
	if (x->has_check)
		dbl(o, "connreg_check_problems", GAUGE,
		    "Problems the last invariant check found and a second pass confirmed "
		    "(0: sound; NaN: the check could not run).",
		    x->check_problems < 0 ? NAN : (double)x->check_problems);
	if (!x->is_service)
		return;
	u64(o, "connreg_check_runs_total", COUNTER, "Invariant checks run by connregd.",
	    x->check_runs);
	dbl(o, "connreg_check_last_run_timestamp_seconds", GAUGE,
	    "Unix time the last invariant check finished.", x->check_last_run);
	dbl(o, "connreg_check_duration_seconds", GAUGE,
	    "Time the last invariant check took, confirmation pass included.",
	    x->check_duration);
	u64(o, "connreg_reaped_total", COUNTER,
	    "Ids connregd removed because their transport process had exited.",
	    x->reaped_total);
	u64(o, "connreg_reap_runs_total", COUNTER,
	    "Reap passes run by connregd (0 without --transport-is-pid).", x->reap_runs);
	u64(o, "connreg_reap_errors_total", COUNTER, "Reap passes that failed.",
	    x->reap_errors);
	dbl(o, "connreg_reap_last_run_timestamp_seconds", GAUGE,
	    "Unix time the last reap pass finished (0: none).", x->reap_last_run);
	dbl(o, "connregd_start_time_seconds", GAUGE, "Unix time connregd started.",
	    x->start_time);
}

int connreg_prom_write(FILE *f, const char *name, const struct connreg_prom_sample *s,
		       const struct connreg_prom_extra *extra)
{
	struct out o = { .f = f };

	make_label(&o, name);
	write_registry(&o, s);
	if (extra)
		write_extra(&o, extra);
	return ferror(f) ? -1 : 0;
}
