#!/usr/bin/env python3
"""The job hive-run does, in Python with cryptography: read the key,
decrypt one credential file, put one value in the environment, exec.
Usage: python_launch.py HIVE_HOME ID KEY VAR -- CMD ARGS..."""
import json
import os
import sys
from cryptography.fernet import Fernet

home, cid, key, var = sys.argv[1:5]
cmd = sys.argv[6:]
with open(os.path.join(home, "secrets", "credential_key"), "rb") as f:
    fernet = Fernet(f.read().strip())
with open(os.path.join(home, "credentials", "credentials", cid + ".enc"), "rb") as f:
    doc = json.loads(fernet.decrypt(f.read()))
env = dict(os.environ)
env[var] = doc["keys"][key]["value"]
env.pop("HIVE_CREDENTIAL_KEY", None)
os.execvpe(cmd[0], cmd, env)
