/*
 * prom.h: a registry's state as Prometheus text exposition (format 0.0.4),
 * written in one place for connregd's GET /metrics and for
 * `connreg stat --prometheus` (node_exporter's textfile collector).
 *
 * Every sample carries the label registry="/NAME". Metric names:
 *   from connreg_stats and connreg_readers (both tools):
 *     connreg_info{layout_version,flags,transport_is_pid} 1
 *     connreg_capacity_ids, connreg_live_ids, connreg_free_entries,
 *     connreg_retired_entries, connreg_pool_entries, connreg_index_buckets,
 *     connreg_tombstones, connreg_max_probe_buckets, connreg_epoch,
 *     connreg_safe_epoch, connreg_segment_size_bytes, connreg_key_max_bytes,
 *     connreg_reader_slots, connreg_reader_slots_in_use,
 *     connreg_reader_slots_dead, connreg_readers_in_lookup,
 *     connreg_reader_epoch_lag, connreg_writer_eagain_total,
 *     connreg_slots_recovered_total, connreg_grace_periods_total
 *   from a confirmed connreg_check (both tools):
 *     connreg_check_problems
 *   only a service knows (connregd):
 *     connreg_check_runs_total, connreg_check_last_run_timestamp_seconds,
 *     connreg_check_duration_seconds, connreg_reaped_total,
 *     connreg_reap_runs_total, connreg_reap_errors_total,
 *     connreg_reap_last_run_timestamp_seconds, connregd_start_time_seconds
 * docs/connregd.8 describes each one.
 */
#ifndef CONNREG_TOOLS_PROM_H
#define CONNREG_TOOLS_PROM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "connreg.h"

/* What the registry says about itself, read in one go. */
struct connreg_prom_sample {
	connreg_stats_t st;
	uint32_t readers_dead;		/* claimed slots whose owner has exited */
	uint32_t readers_in_lookup;	/* slots inside a lookup right now */
	uint64_t oldest_lookup_epoch;	/* least epoch of those; 0: none */
};

/* Fill *s from connreg_stats and connreg_readers. 0 or a connreg error. */
int connreg_prom_collect(connreg_t *reg, struct connreg_prom_sample *s);

/*
 * connreg_check, confirmed: a first pass that finds problems is repeated
 * after pause_ms (writers running meanwhile can make counts disagree for
 * an instant), and only the second pass's problems are reported (through
 * report, if not NULL) and counted. Returns the confirmed number of
 * problems (0: sound) or a negative connreg error.
 */
int connreg_prom_check(connreg_t *reg, unsigned pause_ms,
		       void (*report)(const char *problem, void *arg), void *arg);

/* What a tool adds to the sample. Zero it, then fill what applies. */
struct connreg_prom_extra {
	bool has_check;			/* write connreg_check_problems */
	int check_problems;		/* confirmed problems; < 0: the check could not run */

	bool is_service;		/* write the service's own counters below */
	uint64_t check_runs;
	double check_last_run;		/* Unix time of the last check; 0: none yet */
	double check_duration;		/* seconds the last check took */
	uint64_t reaped_total;		/* ids removed by reaping */
	uint64_t reap_runs;
	uint64_t reap_errors;
	double reap_last_run;		/* Unix time; 0: never (reaping disabled) */
	double start_time;		/* Unix time the service started */
};

/*
 * Write the exposition text for registry `name` to f: HELP and TYPE lines,
 * then the samples. extra may be NULL (registry metrics only). Returns 0,
 * or -1 when writing to f failed (errno set).
 */
int connreg_prom_write(FILE *f, const char *name, const struct connreg_prom_sample *s,
		       const struct connreg_prom_extra *extra);

/* The Content-Type of that text. */
#define CONNREG_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif /* CONNREG_TOOLS_PROM_H */
