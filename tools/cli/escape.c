/*
 * escape.c: the reversible text form of connection ids (see escape.h) and
 * JSON string output.
 */
#include <string.h>

#include "escape.h"

static const char hex_lower[] = "0123456789abcdef";

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

size_t cli_escape_id(const void *id, size_t len, char *out)
{
	const unsigned char *p = id;
	char *o = out;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];

		if (c == '\\') {
			*o++ = '\\';
			*o++ = '\\';
		} else if (c >= 0x20 && c <= 0x7e) {
			*o++ = (char)c;
		} else {
			*o++ = '\\';
			*o++ = 'x';
			*o++ = hex_lower[c >> 4];
			*o++ = hex_lower[c & 15];
		}
	}
	*o = '\0';
	return (size_t)(o - out);
}

void cli_fput_id(FILE *f, const void *id, size_t len)
{
	/* Ids are at most CONNREG_KEY_MAX_LIMIT bytes; escape in pieces anyway. */
	char buf[CLI_ESCAPED_SIZE(256)];
	const unsigned char *p = id;

	while (len) {
		size_t n = len < 256 ? len : 256;
		size_t k = cli_escape_id(p, n, buf);

		fwrite(buf, 1, k, f);
		p += n;
		len -= n;
	}
}

int cli_unescape_id(const char *s, size_t n, unsigned char *out, size_t cap, size_t *len,
		    const char **why)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\\') {
			if (i + 1 < n && s[i + 1] == '\\') {
				i++;
			} else if (i + 3 < n && s[i + 1] == 'x' &&
				   hex_value((unsigned char)s[i + 2]) >= 0 &&
				   hex_value((unsigned char)s[i + 3]) >= 0) {
				c = (unsigned char)(hex_value((unsigned char)s[i + 2]) << 4 |
						    hex_value((unsigned char)s[i + 3]));
				i += 3;
			} else {
				*why = "bad escape: a backslash must start \\\\ or \\xNN";
				return -1;
			}
		}
		if (o == cap) {
			*why = "id longer than 4096 bytes";
			return -1;
		}
		out[o++] = c;
	}
	*len = o;
	return 0;
}

void cli_fput_hex(FILE *f, const void *id, size_t len)
{
	const unsigned char *p = id;

	fputs("0x", f);
	for (size_t i = 0; i < len; i++) {
		putc(hex_lower[p[i] >> 4], f);
		putc(hex_lower[p[i] & 15], f);
	}
}

void cli_fput_json_string(FILE *f, const char *s, size_t n)
{
	putc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			putc('\\', f);
			putc(c, f);
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(f, "\\u%04x", c);
		} else {
			/* Callers pass ASCII (escaped ids, registry names). */
			putc(c, f);
		}
	}
	putc('"', f);
}

void cli_fput_json_id(FILE *f, const void *id, size_t len)
{
	const unsigned char *p = id;
	char piece[CLI_ESCAPED_SIZE(1)];

	/* The escaped form is printable ASCII: only '\\' and '"' need JSON escapes. */
	fputs("\"id\":\"", f);
	for (size_t i = 0; i < len; i++) {
		size_t k = cli_escape_id(p + i, 1, piece);

		for (size_t j = 0; j < k; j++) {
			if (piece[j] == '\\' || piece[j] == '"')
				putc('\\', f);
			putc(piece[j], f);
		}
	}
	fputs("\",\"id_hex\":\"", f);
	cli_fput_hex(f, id, len);
	putc('"', f);
}
