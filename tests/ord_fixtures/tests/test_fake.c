/* test_fake.c: holds INV-2, and cites INV-9, which does not exist. */
int test_fake(void);
