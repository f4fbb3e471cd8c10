#!/usr/bin/env python3
"""Write a Hive store of N api_key credentials c0..c{N-1} (keys: k) in the
format Hive writes, with the standalone writer's rules: one Fernet token
per credential, index 2.0. Usage: make_store.py HIVE_HOME N"""
import base64
import json
import os
import sys
from cryptography.fernet import Fernet

home, n = sys.argv[1], int(sys.argv[2])
os.umask(0o077)   # a store's files are 0600, its directories 0700
key = base64.urlsafe_b64encode(os.urandom(32))
f = Fernet(key)
creds = os.path.join(home, "credentials", "credentials")
meta = os.path.join(home, "credentials", "metadata")
os.makedirs(creds, mode=0o700, exist_ok=True)
os.makedirs(meta, mode=0o700, exist_ok=True)
os.makedirs(os.path.join(home, "secrets"), mode=0o700, exist_ok=True)
index = {}
t = "2026-03-01T12:00:00Z"
for i in range(n):
    cid = f"c{i}"
    doc = {"id": cid, "credential_type": "api_key",
           "keys": {"k": {"name": "k", "value": f"value-{i}-" + "x" * 24, "expires_at": None, "metadata": {}}},
           "provider_id": None, "last_refreshed": None, "auto_refresh": False, "last_used": None,
           "use_count": 0, "description": "", "tags": [], "created_at": t, "updated_at": t}
    with open(os.path.join(creds, cid + ".enc"), "wb") as out:
        out.write(f.encrypt(json.dumps(doc).encode()))
    index[cid] = {"credential_type": "api_key", "provider": None, "alias": None, "identity": {},
                  "key_names": ["k"], "created_at": "2026-03-01T12:00:00+00:00",
                  "updated_at": "2026-03-01T12:00:00+00:00", "last_refreshed": None,
                  "expires_at": None, "auto_refresh": False, "tags": []}
with open(os.path.join(meta, "index.json"), "w") as out:
    out.write(json.dumps({"credentials": index, "version": "2.0",
                          "store_path": os.path.join(home, "credentials"),
                          "generated_at": "2026-03-01T12:00:00+00:00"}, indent=2))
kf = os.path.join(home, "secrets", "credential_key")
with open(kf, "wb") as out:
    out.write(key)
os.chmod(kf, 0o600)
