/*
 * hive/hive.h - the libhive umbrella header.
 *
 * Threads: each header says what may be shared between threads. In short:
 * the stateless functions anywhere; a hive_store or a memory or file
 * storage by several threads at once for reading and writing credentials;
 * every other object one thread at a time.
 */
#ifndef HIVE_HIVE_H
#define HIVE_HIVE_H

#include "common.h"
#include "mem.h"
#include "fernet.h"
#include "json.h"
#include "datetime.h"
#include "cred.h"
#include "storage.h"
#include "dotenv.h"
#include "store.h"
#include "audit.h"
#include "login.h"
#include <hive/version.h>

#endif
