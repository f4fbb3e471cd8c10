/*
 * snapshot.h - the layout of the shared snapshot through which hive-run's
 * refresher hands fresh values to libhive-preload.so. Depends on nothing
 * but C11: the preload includes it.
 *
 * The snapshot is a memfd that only the refresher can write: hive-run
 * maps it read-write, seals it (no shrinking, no growing, no write or
 * writable mapping from now on: F_SEAL_FUTURE_WRITE keeps only the mapping
 * made before) and hands the program a read-only descriptor of it (fd
 * number in HIVE_SNAPSHOT_FD). The refresher writes through its mapping
 * alone and keeps all its bookkeeping (where the next value goes, what is
 * still current) in its own memory: it never reads the snapshot.
 *
 * The launch values are written once, after the header, and never change.
 * Refreshed values go to a ring after them: a value, once published, is
 * not changed or moved until the ring has turned over once (days at the
 * usual rates; the refresher warns when it turns over in less than
 * HIVE_SNAP_TURN_WARN seconds) and never while it is a variable's current
 * value. Each block of the ring starts with a link: the offset of the
 * value the new one replaces (HIVE_SNAP_LINK bytes), so that a reader
 * that saw an older value (hive-run --mask) finds every value published
 * since, also those replaced again before it looked. Publishing a value
 * writes its block, then stores the value's offset into the variable's
 * slot with release order; readers load the slot with acquire order. No
 * lock, no allocation, no syscall on the read path.
 *
 * The preload trusts nothing it maps: it takes the snapshot only when
 * sealed against shrinking (no SIGBUS), keeps its own copy of the size and
 * the number of variables, checks every offset against the size, and maps
 * a page of zeros right after the file, so that every string it returns
 * ends inside what it mapped, whatever the file holds.
 */
#ifndef HIVE_SNAPSHOT_H
#define HIVE_SNAPSHOT_H

#include <stdatomic.h>
#include <stdint.h>

#define HIVE_SNAP_MAGIC UINT64_C(0x31504e5345564948)   /* "HIVESNP1" */
#define HIVE_SNAP_VERSION 3u
#define HIVE_SNAP_MAX_VARS 64
#define HIVE_SNAP_NAME_MAX 120
/* Sparse: only what is written takes memory, and never more than this.
 * 2 KB tokens refreshed every minute turn the ring over every 5.8 days. */
#define HIVE_SNAP_SIZE (16u * 1024 * 1024)
#define HIVE_SNAP_TURN_WARN 600
#define HIVE_SNAP_ENV "HIVE_SNAPSHOT_FD"
/* a ring block: the offset of the value it replaces (uint64_t), then the value */
#define HIVE_SNAP_LINK 8u

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
    uint64_t turns;                     /* times the ring turned over (diagnostics) */
    uint64_t refresher_pid;             /* for diagnostics */
    struct hive_snap_var vars[HIVE_SNAP_MAX_VARS];
};

#define HIVE_SNAP_DATA ((sizeof(struct hive_snap) + 63) & ~(uint64_t)63)

#endif
