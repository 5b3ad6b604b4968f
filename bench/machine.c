/*
 * machine.c: CPU model, cores, kernel, page size, caches, clocks.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "machine.h"
#include "timing.h"
#include "workers.h"

static void read_line(const char *path, char *out, size_t len)
{
	FILE *f = fopen(path, "r");

	snprintf(out, len, "?");
	if (!f)
		return;
	if (fgets(out, (int)len, f))
		out[strcspn(out, "\n")] = '\0';
	else
		snprintf(out, len, "?");
	fclose(f);
}

/* Value of the first "key<spaces>: value" line of /proc/cpuinfo or /proc/meminfo. */
static bool proc_field(const char *path, const char *key, char *out, size_t len)
{
	char line[512];
	size_t kl = strlen(key);
	FILE *f = fopen(path, "r");
	bool found = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		char *colon;

		if (strncmp(line, key, kl) != 0)
			continue;
		if (line[kl] != ' ' && line[kl] != '\t' && line[kl] != ':')
			continue;
		colon = strchr(line, ':');
		if (!colon)
			continue;
		colon++;
		while (*colon == ' ' || *colon == '\t')
			colon++;
		colon[strcspn(colon, "\n")] = '\0';
		snprintf(out, len, "%s", colon);
		found = true;
		break;
	}
	fclose(f);
	return found;
}

static void cache_size(int index_level, const char *type, char *out, size_t len)
{
	static const char dir[] = "/sys/devices/system/cpu/cpu0/cache";
	char path[128], lvl[16], ty[32];

	snprintf(out, len, "?");
	for (int i = 0; i < 8; i++) {
		snprintf(path, sizeof(path), "%s/index%d/level", dir, i);
		read_line(path, lvl, sizeof(lvl));
		snprintf(path, sizeof(path), "%s/index%d/type", dir, i);
		read_line(path, ty, sizeof(ty));
		if (lvl[0] - '0' != index_level)
			continue;
		if (strcmp(ty, type) == 0 || strcmp(ty, "Unified") == 0) {
			snprintf(path, sizeof(path), "%s/index%d/size", dir, i);
			read_line(path, out, len);
			return;
		}
	}
}

void machine_describe(struct machine *m)
{
	struct utsname u;
	char buf[4096];
	int cpus[256];
	time_t now = time(NULL);
	struct tm tm;

	memset(m, 0, sizeof(*m));
	if (!proc_field("/proc/cpuinfo", "model name", m->cpu_model, sizeof(m->cpu_model)))
		snprintf(m->cpu_model, sizeof(m->cpu_model), "?");
	if (proc_field("/proc/cpuinfo", "flags", buf, sizeof(buf)))
		m->hypervisor = strstr(buf, " hypervisor") != NULL;
	m->cpus_online = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	m->cpus_allowed = cpus_allowed(cpus, 256);
	if (uname(&u) == 0)
		snprintf(m->kernel, sizeof(m->kernel), "%s %s %s %s", u.sysname, u.release,
			 u.version, u.machine);
	m->page_size = sysconf(_SC_PAGESIZE);
	if (proc_field("/proc/meminfo", "MemTotal", buf, sizeof(buf)))
		sscanf(buf, "%llu", (unsigned long long *)&m->mem_total_kib);
	cache_size(1, "Data", m->cache_l1d, sizeof(m->cache_l1d));
	cache_size(2, "Unified", m->cache_l2, sizeof(m->cache_l2));
	cache_size(3, "Unified", m->cache_l3, sizeof(m->cache_l3));
	read_line("/sys/devices/system/clocksource/clocksource0/current_clocksource",
		  m->clocksource, sizeof(m->clocksource));
	read_line("/sys/kernel/mm/transparent_hugepage/shmem_enabled", m->thp_shmem,
		  sizeof(m->thp_shmem));
	snprintf(m->compiler, sizeof(m->compiler), "gcc %s", __VERSION__);
	m->tsc_hz = bench_clock.tsc_hz;
	m->timer_overhead_ns = bench_clock.overhead_ns;
	m->gettime_ns = bench_clock.gettime_ns;
	m->rdtsc_ns = bench_clock.rdtsc_ns;
	m->tsc_granularity_ns = bench_clock.granularity_ns;
	m->loadavg_start = loadavg1();
	gmtime_r(&now, &tm);
	strftime(m->date, sizeof(m->date), "%Y-%m-%dT%H:%M:%SZ", &tm);
}

bool cpu_times_read(struct cpu_times *t)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "r");
	int k;

	memset(t, 0, sizeof(*t));
	if (!f)
		return false;
	/* cpu user nice system idle iowait irq softirq steal */
	k = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (k < 8)
		return false;
	t->busy = v[0] + v[1] + v[2] + v[5] + v[6];
	t->steal = v[7];
	t->total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
	return true;
}

void cpu_times_delta(const struct cpu_times *a, const struct cpu_times *b, unsigned cpus,
		     double *busy_cpus, double *steal_pct)
{
	uint64_t total = b->total - a->total;

	if (!a->total || !b->total || total == 0) {
		*busy_cpus = *steal_pct = NAN;
		return;
	}
	*busy_cpus = (double)(b->busy - a->busy) / (double)total * cpus;
	*steal_pct = (double)(b->steal - a->steal) / (double)total * 100;
}

double loadavg1(void)
{
	double l = NAN;
	FILE *f = fopen("/proc/loadavg", "r");

	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = NAN;
		fclose(f);
	}
	return l;
}
