/*
 * http.h: connregd's metrics endpoint, served by libmicrohttpd from its
 * own thread: GET (or HEAD) /metrics, /healthz and / (an index).
 */
#ifndef CONNREGD_HTTP_H
#define CONNREGD_HTTP_H

#include <stddef.h>
#include <stdio.h>

/*
 * What the daemon renders. Each writes the body to f and returns the HTTP
 * status (200, 503, ...); they run on the HTTP thread.
 */
struct http_routes {
	unsigned (*metrics)(void *arg, FILE *f);
	unsigned (*healthz)(void *arg, FILE *f);
	void *arg;
};

/* Bad spec (a usage error) and system error (bind, listen...), as returned below. */
#define HTTP_ERR_SPEC	-2
#define HTTP_ERR_SYSTEM -3

/*
 * Bind and listen on spec: "HOST:PORT", "[IPV6]:PORT", or ":PORT" / "*:PORT"
 * for every address; PORT 0 picks a free one. Returns the socket, or
 * HTTP_ERR_SPEC / HTTP_ERR_SYSTEM with a message in err. `where` receives
 * the bound address as "127.0.0.1:41234" or "[::1]:41234".
 */
int http_listen(const char *spec, char *where, size_t wherelen, char *err, size_t errlen);

struct http;

/* Serve on the listening socket fd (which http_stop closes). NULL on failure (logged). */
struct http *http_start(int fd, const struct http_routes *routes);

/* Stop serving, wait for the thread, close the socket. NULL is ignored. */
void http_stop(struct http *h);

#endif /* CONNREGD_HTTP_H */
