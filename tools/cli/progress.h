/*
 * progress.h: a progress bar on stderr for long bulk operations, shown only
 * when stderr is a terminal and the work is at least CLI_PROGRESS_MIN items.
 */
#ifndef CONNREG_CLI_PROGRESS_H
#define CONNREG_CLI_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

#define CLI_PROGRESS_MIN 10000

struct cli_progress {
	const char *what;
	uint64_t total;		/* expected items; done may pass it (a growing registry) */
	uint64_t done;
	uint64_t next_draw_ns;
	bool shown;
};

void cli_progress_begin(struct cli_progress *p, const char *what, uint64_t total);
void cli_progress_step(struct cli_progress *p);
/* Draw the final state and end the line. */
void cli_progress_end(struct cli_progress *p);

#endif /* CONNREG_CLI_PROGRESS_H */
