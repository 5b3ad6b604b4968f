/*
 * escape.h: how connection ids (arbitrary bytes) are shown and read back.
 *
 * The escaped form is exact and reversible: printable ASCII (0x20..0x7e)
 * other than the backslash stands for itself, a backslash is written "\\",
 * and every other byte (controls, tab, 0x7f..0xff) is written "\xNN" with
 * two lowercase hex digits. So an escaped id never contains a tab, a
 * newline or a non-ASCII byte, and list, dump and load agree on it.
 */
#ifndef CONNREG_CLI_ESCAPE_H
#define CONNREG_CLI_ESCAPE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Bytes the escaped form of a len-byte id may need, NUL included. */
#define CLI_ESCAPED_SIZE(len) (4 * (len) + 1)

/* Write the escaped form of id into out (CLI_ESCAPED_SIZE(len) bytes). */
size_t cli_escape_id(const void *id, size_t len, char *out);

/* Write the escaped form of id to f. */
void cli_fput_id(FILE *f, const void *id, size_t len);

/*
 * Read an escaped id of n bytes at s (no NUL needed). Accepts "\\",
 * "\xNN" (either case) and any other byte as itself. At most cap bytes
 * are written to out. 0 and *len, or -1 with *why set.
 */
int cli_unescape_id(const char *s, size_t n, unsigned char *out, size_t cap, size_t *len,
		    const char **why);

/* Write id as "0x" and two lowercase hex digits per byte. */
void cli_fput_hex(FILE *f, const void *id, size_t len);

/* Write s (n bytes) as a JSON string literal, quotes included. */
void cli_fput_json_string(FILE *f, const char *s, size_t n);

/* Write an id as JSON members: "id":"<escaped form>","id_hex":"0x..." */
void cli_fput_json_id(FILE *f, const void *id, size_t len);

#endif /* CONNREG_CLI_ESCAPE_H */
