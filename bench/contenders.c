/*
 * contenders.c: the contenders this binary was built with, and the ones
 * left out because their Debian package was missing at configure time.
 */
#include <stddef.h>

#include "contender.h"

extern const struct contender contender_connreg;
extern const struct contender contender_connreg_so;
extern const struct contender contender_connreg_2m;
extern const struct contender contender_shm_rwlock;
extern const struct contender contender_seqlock;
extern const struct contender contender_cds_lfht;
extern const struct contender contender_ck_ht;
extern const struct contender contender_lmdb_txn;
extern const struct contender contender_lmdb_renew;

#define NO_LMDB "built without liblmdb: apt-get install liblmdb-dev, then rerun bench/run"

const struct contender_entry contender_table[] = {
	{ "connreg", &contender_connreg, NULL },
	{ "connreg_2m", &contender_connreg_2m, NULL },
#ifdef BENCH_HAVE_CONNREG_SO
	{ "connreg_so", &contender_connreg_so, NULL },
#else
	{ "connreg_so", NULL, "built without the shared library target connreg" },
#endif
	{ "shm_rwlock", &contender_shm_rwlock, NULL },
	{ "seqlock", &contender_seqlock, NULL },
#ifdef BENCH_HAVE_URCU
	{ "cds_lfht", &contender_cds_lfht, NULL },
#else
	{ "cds_lfht", NULL, "built without liburcu-memb/liburcu-cds: apt-get install liburcu-dev" },
#endif
#ifdef BENCH_HAVE_CK
	{ "ck_ht", &contender_ck_ht, NULL },
#else
	{ "ck_ht", NULL, "built without libck: apt-get install libck-dev" },
#endif
#ifdef BENCH_HAVE_LMDB
	{ "lmdb_txn", &contender_lmdb_txn, NULL },
	{ "lmdb_renew", &contender_lmdb_renew, NULL },
#else
	{ "lmdb_txn", NULL, NO_LMDB },
	{ "lmdb_renew", NULL, NO_LMDB },
#endif
};

const unsigned contender_table_len = sizeof(contender_table) / sizeof(contender_table[0]);
