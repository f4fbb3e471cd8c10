/*
 * noop_preload - a shared library that does nothing: the LD_PRELOAD a user
 * already had, which hive-run --fresh must keep (append, never overwrite).
 */
int noop_preload_marker(void);

int noop_preload_marker(void)
{
    return 42;
}
