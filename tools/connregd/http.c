/*
 * http.c: see http.h. libmicrohttpd does all of HTTP; this file only binds
 * the socket (so that a bad address is reported before anything else
 * happens, and port 0 can be read back) and routes three paths.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http.h"
#include "log.h"
#include "prom.h"

#if MHD_VERSION < 0x00097002
typedef int MHD_Result_t;
#else
typedef enum MHD_Result MHD_Result_t;
#endif

struct http {
	struct MHD_Daemon *d;
	struct http_routes routes;
};

/* Write the message to err; returns code. */
__attribute__((format(printf, 4, 5)))
static int fail(int code, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}

static void describe(int fd, char *where, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[NI_MAXHOST], port[NI_MAXSERV];

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
	    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(where, len, "?");
		return;
	}
	if (ss.ss_family == AF_INET6)
		snprintf(where, len, "[%s]:%s", host, port);
	else
		snprintf(where, len, "%s:%s", host, port);
}

/* socket + bind + listen on one address; the socket, or -errno. */
static int bind_one(int family, const struct sockaddr *sa, socklen_t sl, bool dual)
{
	int one = 1, zero = 0, fd, e;

	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (dual)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, sa, sl) != 0 || listen(fd, 64) != 0) {
		e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int http_listen(const char *spec, char *where, size_t wherelen, char *err, size_t errlen)
{
	char host[256], *colon, *end;
	const char *port;
	unsigned long pnum;
	int fd = -EINVAL;

	if (strlen(spec) >= sizeof(host))
		return fail(HTTP_ERR_SPEC, err, errlen, "--metrics-listen \"%s\": too long", spec);
	if (spec[0] == '[') {
		const char *rb = strchr(spec, ']');

		if (!rb || rb[1] != ':')
			return fail(HTTP_ERR_SPEC, err, errlen,
				    "--metrics-listen \"%s\": expected [IPV6]:PORT", spec);
		memcpy(host, spec + 1, (size_t)(rb - spec - 1));
		host[rb - spec - 1] = '\0';
		port = rb + 2;
	} else {
		strcpy(host, spec);
		colon = strrchr(host, ':');
		if (!colon)
			return fail(HTTP_ERR_SPEC, err, errlen,
				    "--metrics-listen \"%s\": expected HOST:PORT", spec);
		*colon = '\0';
		port = spec + (colon - host) + 1;
		if (strchr(host, ':'))
			return fail(HTTP_ERR_SPEC, err, errlen,
				    "--metrics-listen \"%s\": put an IPv6 address in brackets, "
				    "as in [::1]:9477", spec);
	}
	errno = 0;
	pnum = strtoul(port, &end, 10);
	if (*port < '0' || *port > '9' || *end != '\0' || errno || pnum > 65535)
		return fail(HTTP_ERR_SPEC, err, errlen,
			    "--metrics-listen \"%s\": bad port \"%s\" (0 to 65535)", spec, port);

	if (host[0] == '\0' || strcmp(host, "*") == 0) {
		/* Every address: IPv6 with IPv4 mapped, or IPv4 alone without IPv6. */
		struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT,
					   .sin6_port = htons((uint16_t)pnum) };
		struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_addr.s_addr = INADDR_ANY,
					  .sin_port = htons((uint16_t)pnum) };

		fd = bind_one(AF_INET6, (struct sockaddr *)&a6, sizeof(a6), true);
		if (fd == -EAFNOSUPPORT || fd == -EADDRNOTAVAIL)
			fd = bind_one(AF_INET, (struct sockaddr *)&a4, sizeof(a4), false);
	} else {
		struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
					  .ai_flags = AI_NUMERICSERV };
		struct addrinfo *res, *ai;
		int g = getaddrinfo(host, port, &hints, &res);

		if (g != 0)
			return fail(g == EAI_NONAME ? HTTP_ERR_SPEC : HTTP_ERR_SYSTEM, err, errlen,
				    "--metrics-listen \"%s\": cannot resolve \"%s\": %s", spec, host,
				    gai_strerror(g));
		for (ai = res; ai; ai = ai->ai_next) {
			fd = bind_one(ai->ai_family, ai->ai_addr, ai->ai_addrlen, false);
			if (fd >= 0)
				break;
		}
		freeaddrinfo(res);
	}
	if (fd < 0)
		return fail(HTTP_ERR_SYSTEM, err, errlen, "cannot listen on %s: %s", spec,
			    strerror(-fd));
	describe(fd, where, wherelen);
	return fd;
}

/* ------------------------------------------------------------------ */
/* requests                                                            */
/* ------------------------------------------------------------------ */

static unsigned index_page(void *arg, FILE *f)
{
	(void)arg;
	fputs("connregd: GET /metrics (Prometheus text), GET /healthz (200 sound, 503 not)\n",
	      f);
	return MHD_HTTP_OK;
}

static unsigned text_page(FILE *f, unsigned status, const char *text)
{
	fputs(text, f);
	return status;
}

static MHD_Result_t reply(struct MHD_Connection *c, const char *method, const char *url,
			  unsigned (*render)(void *, FILE *), void *arg,
			  const char *content_type, unsigned fixed_status, const char *fixed_text)
{
	struct MHD_Response *resp;
	char *body = NULL;
	size_t len = 0;
	unsigned status;
	MHD_Result_t ret;
	FILE *f = open_memstream(&body, &len);

	if (!f)
		return MHD_NO; /* out of memory: MHD drops the connection */
	status = render ? render(arg, f) : text_page(f, fixed_status, fixed_text);
	if (fclose(f) != 0) {
		free(body);
		return MHD_NO;
	}
	resp = MHD_create_response_from_buffer_with_free_callback(len, body, free);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	dlog(LOG_LVL_DEBUG, "http: %s %s -> %u", method, url, status);
	return ret;
}

static MHD_Result_t on_request(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version,
			       const char *upload_data, size_t *upload_data_size, void **req_cls)
{
	static int seen_headers;
	struct http *h = cls;

	(void)version;
	(void)upload_data;
	if (*req_cls == NULL) {
		/* First call: headers only. Answer once any body has been read. */
		*req_cls = &seen_headers;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0; /* a body on GET is ignored */
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply(c, method, url, NULL, NULL, "text/plain; charset=utf-8",
			     MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
	if (strcmp(url, "/metrics") == 0)
		return reply(c, method, url, h->routes.metrics, h->routes.arg, CONNREG_PROM_CONTENT_TYPE, 0,
			     NULL);
	if (strcmp(url, "/healthz") == 0)
		return reply(c, method, url, h->routes.healthz, h->routes.arg, "text/plain; charset=utf-8",
			     0, NULL);
	if (strcmp(url, "/") == 0)
		return reply(c, method, url, index_page, NULL, "text/plain; charset=utf-8", 0, NULL);
	return reply(c, method, url, NULL, NULL, "text/plain; charset=utf-8", MHD_HTTP_NOT_FOUND,
		     "not found: try /metrics or /healthz\n");
}

__attribute__((format(printf, 2, 0)))
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	dlogv(LOG_LVL_WARNING, fmt, ap);
}

struct http *http_start(int fd, const struct http_routes *routes)
{
	struct http *h = calloc(1, sizeof(*h));

	if (!h) {
		close(fd);
		dlog(LOG_LVL_ERR, "http: out of memory");
		return NULL;
	}
	h->routes = *routes;
	h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG,
				0, NULL, NULL, on_request, h,
				MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
				MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)15,
				MHD_OPTION_SIGPIPE_HANDLED_BY_APP, (int)1,
				MHD_OPTION_END);
	if (!h->d) {
		dlog(LOG_LVL_ERR, "http: libmicrohttpd could not start on the metrics socket");
		close(fd);
		free(h);
		return NULL;
	}
	return h;
}

void http_stop(struct http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->d); /* joins its thread and closes the listening socket */
	free(h);
}
