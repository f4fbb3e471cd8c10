/*
 * hive/hive.h - the libhive umbrella header.
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
#include <hive/version.h>

#endif
