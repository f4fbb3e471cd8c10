/*
 * snapshot.h - the layout of the shared snapshot through which hive-run's
 * refresher hands fresh values to libhive-preload.so. Depends on nothing
 * but C11: the preload includes it.
 *
 * The snapshot is a memfd inherited by the program (fd number in
 * HIVE_SNAPSHOT_FD), mapped read-only by the preload and read-write by the
 * refresher. It is append-only: a value, once published, is never changed
 * or moved, so every pointer getenv() returned stays valid for the life of
 * the process. Publishing a value writes it after the last one, then
 * stores its offset into the variable's slot with release order; readers
 * load the slot with acquire order. No lock, no allocation, no syscall on
 * the read path.
 */
#ifndef HIVE_SNAPSHOT_H
#define HIVE_SNAPSHOT_H

#include <stdatomic.h>
#include <stdint.h>

#define HIVE_SNAP_MAGIC UINT64_C(0x31504e5345564948)   /* "HIVESNP1" */
#define HIVE_SNAP_VERSION 1u
#define HIVE_SNAP_MAX_VARS 64
#define HIVE_SNAP_NAME_MAX 120
/* Sparse: only what is written takes memory. At a few kilobytes a token,
 * refreshed every few minutes, this lasts years. */
#define HIVE_SNAP_SIZE (64u * 1024 * 1024)
#define HIVE_SNAP_ENV "HIVE_SNAPSHOT_FD"

struct hive_snap_var {
    char name[HIVE_SNAP_NAME_MAX];      /* written once, before the program starts */
    _Atomic uint64_t offset;            /* of the current value ("...\0"); 0: none */
    uint64_t launch;                    /* of the launch value: while the process's own
                                         * environment still holds it, the snapshot
                                         * answers; once the process (or a parent)
                                         * changed or removed it, the environment does */
};

struct hive_snap {
    uint64_t magic;
    uint32_t version;
    uint32_t nvars;                     /* written once */
    uint64_t size;                      /* bytes in the mapping */
    _Atomic uint64_t generation;        /* +1 per published value */
    uint64_t used;                      /* next free byte (refresher only) */
    uint64_t refresher_pid;             /* for diagnostics */
    struct hive_snap_var vars[HIVE_SNAP_MAX_VARS];
};

#define HIVE_SNAP_DATA ((sizeof(struct hive_snap) + 63) & ~(uint64_t)63)

#endif
