/*
 * progress.c: "\r[#####.....]  45%  45000/100000 dumped" on stderr,
 * redrawn at most ten times a second so it never slows the work down.
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

#define BAR_WIDTH	40
#define REDRAW_NS	100000000ull

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void draw(const struct cli_progress *p)
{
	uint64_t total = p->total > p->done ? p->total : p->done;
	unsigned pct = total ? (unsigned)(p->done * 100 / total) : 100;
	unsigned fill = pct * BAR_WIDTH / 100;
	char bar[BAR_WIDTH + 1];

	for (unsigned i = 0; i < BAR_WIDTH; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[BAR_WIDTH] = '\0';
	fprintf(stderr, "\r[%s] %3u%%  %llu/%llu %s", bar, pct, (unsigned long long)p->done,
		(unsigned long long)total, p->what);
	fflush(stderr);
}

void cli_progress_begin(struct cli_progress *p, const char *what, uint64_t total)
{
	p->what = what;
	p->total = total;
	p->done = 0;
	p->next_draw_ns = 0;
	/* Only for a person watching a long job: never in pipes or logs. */
	p->shown = total >= CLI_PROGRESS_MIN && isatty(STDERR_FILENO);
}

void cli_progress_step(struct cli_progress *p)
{
	p->done++;
	if (!p->shown || (p->done & 255))
		return;
	uint64_t t = now_ns();
	if (t < p->next_draw_ns)
		return;
	p->next_draw_ns = t + REDRAW_NS;
	draw(p);
}

void cli_progress_end(struct cli_progress *p)
{
	if (!p->shown)
		return;
	p->total = p->done;	/* the job is done, whatever the estimate was */
	draw(p);
	fputc('\n', stderr);
}
