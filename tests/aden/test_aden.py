#!/usr/bin/env python3
"""hive's Aden client (store/src/aden.c), tested against a local Aden API.

Run:  python3 tests/aden/test_aden.py [unittest options]

Environment:
  HIVE_RUN   path of the hive-run binary  (default: <repo>/build/launcher/hive-run)
  HIVE_CRED  path of the hive-cred binary (default: <repo>/build/launcher/hive-cred)

No Aden server is reachable from here, so tests/aden/server.py implements
the part of the Aden credential API that the Python Hive's client uses
(list, fetch, refresh, validate; bearer keys; its error answers) on
127.0.0.1, in this process. One server serves the whole run and is reset
before each test; each test has its own HIVE_HOME and reads what hive
stored by decrypting the .enc files with Fernet. ADEN_API_URL, ADEN_API_KEY
and ADEN_TIMEOUT are taken out of the inherited environment: each test
sets its own. Standard library plus `cryptography`.

The few tests that reach a closed port or a server that never answers take
3 to 6 s each: hive retries connection errors and time-outs 3 times, 1 s
then 2 s apart.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from datetime import datetime
from pathlib import Path

from cryptography.fernet import Fernet

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from server import AdenServer  # noqa: E402  (tests/aden/server.py)

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lib"))
import hivetest  # noqa: E402  (tests/lib/hivetest.py)

HIVE_RUN = hivetest.HIVE_RUN
HIVE_CRED = hivetest.HIVE_CRED

TIMEOUT = hivetest.scaled(60)   # per hive command
KEY = "aden-agent-key-0123456789"
USER_AGENT = "hive-credential-store/1.0"
EXPIRED = "2020-01-01T00:00:00Z"

EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_KEY = 4
EXIT_STORE = 6
EXIT_REFRESH = 7
EXIT_FAIL = 125       # hive-run failed before running the program

ADEN_VARS = ["ADEN_API_URL", "ADEN_API_KEY", "ADEN_TIMEOUT"]
PROXY_VARS = hivetest.PROXY_VARS

SERVER = None


def setUpModule():
    global SERVER
    for what, path in [("hive-run", HIVE_RUN), ("hive-cred", HIVE_CRED)]:
        if not os.access(path, os.X_OK):
            raise RuntimeError("%s not found at %s (set %s)" % (what, path, what.upper().replace("-", "_")))
    SERVER = AdenServer(api_key=KEY)


def tearDownModule():
    if SERVER is not None:
        SERVER.close()


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def epoch(text):
    """Seconds since the epoch of a stored ISO 8601 time."""
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text).timestamp()


class AdenTest(unittest.TestCase):
    """A fresh HIVE_HOME per test; the Aden server reset and pointed at."""

    maxDiff = None

    def setUp(self):
        self.tmp = hivetest.temp_dir(self, "hive-aden-")
        self.home = os.path.join(self.tmp, "home")
        self.store = os.path.join(self.home, "credentials")
        self.env = hivetest.clean_env(self.home)
        self.check(self.cred("init"), 0)
        with open(os.path.join(self.home, "secrets", "credential_key"), "rb") as f:
            self.fernet = Fernet(f.read().strip())
        SERVER.reset()
        self.env["ADEN_API_URL"] = SERVER.url
        self.env["ADEN_API_KEY"] = KEY

    # --- helpers -------------------------------------------------------

    def cred(self, *args, stdin=b"", env=None):
        return hivetest.run([HIVE_CRED, *args], env or self.env, stdin=stdin, timeout=TIMEOUT, cwd=self.tmp)

    def hive_run(self, *args, env=None):
        return hivetest.run([HIVE_RUN, *args], env or self.env, timeout=TIMEOUT, cwd=self.tmp)

    def run_token(self, cid, env=None):
        """hive-run a program that prints $T = {{cid}}."""
        return self.hive_run("-e", "T={{%s}}" % cid, "--", "sh", "-c", 'printf %s "$T"', env=env)

    def timed(self, fn, *args, **kw):
        t0 = time.monotonic()
        r = fn(*args, **kw)
        return r, time.monotonic() - t0

    def check(self, r, code, what=""):
        self.assertEqual(r.returncode, code,
                         "%s: exit %d, expected %d\nstdout: %r\nstderr: %r"
                         % (what or " ".join(map(str, r.args[1:]))[:300], r.returncode, code,
                            r.stdout[:2000], r.stderr[:3000]))
        return r

    def env_with(self, **changes):
        """self.env with changes; a value of None removes the variable."""
        env = dict(self.env)
        for k, v in changes.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def offline(self):
        """An environment whose Aden server refuses connections."""
        return self.env_with(ADEN_API_URL="http://127.0.0.1:%d" % closed_port())

    def enc_path(self, cid):
        return os.path.join(self.store, "credentials", cid + ".enc")

    def stored(self, cid):
        """The credential as stored: the decrypted JSON of its .enc file."""
        with open(self.enc_path(cid), "rb") as f:
            return json.loads(self.fernet.decrypt(f.read().strip()))

    def rewrite(self, cid, change):
        """Change the stored JSON of cid (as a writer with the key could)."""
        c = self.stored(cid)
        change(c)
        with open(self.enc_path(cid), "wb") as f:
            f.write(self.fernet.encrypt(json.dumps(c).encode()))

    def stored_ids(self):
        d = os.path.join(self.store, "credentials")
        return sorted(f[:-4] for f in os.listdir(d) if f.endswith(".enc"))

    def values(self, cred):
        return {k: v["value"] for k, v in cred["keys"].items()}

    def snapshot(self):
        """Every .enc file: name -> bytes."""
        d = os.path.join(self.store, "credentials")
        out = {}
        for f in sorted(os.listdir(d)):
            with open(os.path.join(d, f), "rb") as fh:
                out[f] = fh.read()
        return out

    def errors(self, r):
        """stderr lines without the program's 'NAME: error: ' prefix (hints dropped)."""
        return [re.sub(r"^hive-[a-z]+: (error|warning): ", "", ln)
                for ln in r.stderr.decode("utf-8", "replace").splitlines() if not ln.startswith("hint: ")]

    def assert_error(self, r, message):
        self.assertEqual(self.errors(r)[:1], [message], r.stderr)

    def assert_api_requests(self, reqs):
        """Every request carried the agent key, the JSON type and hive's User-Agent."""
        self.assertTrue(reqs, "no request reached the Aden server")
        for rq in reqs:
            h = rq["headers"]
            self.assertEqual(h.get("authorization"), "Bearer " + KEY, rq)
            self.assertEqual(h.get("user-agent"), USER_AGENT, rq)
            self.assertEqual(h.get("content-type"), "application/json", rq)

    def calls(self):
        return [(rq["method"], rq["path"]) for rq in SERVER.requests()]

    def sync(self, env=None):
        return self.cred("sync", env=env)

    def sync_one(self, iid="int-a", provider="github", alias="work", **kw):
        """One active integration, synced."""
        SERVER.add(iid, provider, alias, **kw)
        r = self.check(self.sync(), 0)
        self.assertEqual(r.stdout, b"synced 1 of 1 integration(s)\n")
        SERVER.clear_log()
        return self.stored(iid)

    # --- sync -------------------------------------------------------------

    def test_sync_several(self):
        # Hive takes identity from the answer's metadata (each non-empty
        # string), and from its email only when metadata is empty
        SERVER.add("int-gh-work", "github", "work", email="dev@example.com", scopes=["repo", "read:org"],
                   access_token="gho_work_token",
                   metadata={"workspace": "acme", "account_id": "A-42", "org": "x", "n": 5, "empty": ""})
        SERVER.add("int-gh-home", "github", "personal", email="me@example.org", scopes=["repo"],
                   access_token="gho_home_token", expires_in=7200)
        SERVER.add("int-off", "github", "old", email="old@example.com", status="revoked")
        SERVER.add("int-slack", "slack", "team", email="bot@example.com",
                   scopes=["chat:write", "channels:read", "users:read"], access_token="xoxb-slack",
                   expires_at="2031-05-06T07:08:09Z")
        SERVER.add("int-paused", "hubspot", "crm", email="crm@example.com", status="expired")
        SERVER.add("int-notion", "notion", "docs", email="docs@example.com", scopes=["read"],
                   expires_at="2030-01-02T03:04:05.250000Z")
        t0 = time.time()
        r = self.check(self.sync(), 0)
        t1 = time.time()
        self.assertEqual(r.stdout, b"synced 4 of 6 integration(s), 2 not active\n")
        self.assertEqual(self.errors(r), [])
        self.assertEqual(self.stored_ids(), ["int-gh-home", "int-gh-work", "int-notion", "int-slack"])

        expected = {
            "int-gh-work": ("gho_work_token", "github", "work", "dev@example.com", "repo read:org"),
            "int-gh-home": ("gho_home_token", "github", "personal", "me@example.org", "repo"),
            "int-slack": ("xoxb-slack", "slack", "team", "bot@example.com",
                          "chat:write channels:read users:read"),
            "int-notion": ("aden-int-notion-0", "notion", "docs", "docs@example.com", "read"),
        }
        for iid, (token, provider, alias, email, scope) in expected.items():
            with self.subTest(integration=iid):
                c = self.stored(iid)
                self.assertEqual(c["id"], iid)
                self.assertEqual(c["credential_type"], "oauth2")
                self.assertEqual(c["provider_id"], "aden_sync")
                self.assertIs(c["auto_refresh"], True)
                identity = ({"_identity_workspace": "acme", "_identity_account_id": "A-42", "_identity_org": "x"}
                            if iid == "int-gh-work" else {"_identity_email": email})
                self.assertEqual(self.values(c), dict({
                    "access_token": token, "_aden_managed": "true", "_integration_type": provider,
                    "_alias": alias, "scope": scope}, **identity))
                # Hive's order: scope before the identity keys
                self.assertEqual(list(c["keys"]), ["access_token", "_aden_managed", "_integration_type",
                                                   "_alias", "scope"] + list(identity))
                self.assertEqual(epoch(c["keys"]["access_token"]["expires_at"]),
                                 epoch(SERVER.tokens[iid]["expires_at"]))
                for k, v in c["keys"].items():
                    if k != "access_token":
                        self.assertIsNone(v["expires_at"], k)
                # a sync writes a new credential, as Hive's does: last_refreshed unset
                self.assertIsNone(c["last_refreshed"])
                self.assertTrue(t0 - 2 <= epoch(c["updated_at"]) <= t1 + 2, c["updated_at"])
                # the default key is the token
                got = self.check(self.cred("get", iid), 0).stdout
                self.assertEqual(got, token.encode() + b"\n")
        self.assertEqual(self.stored("int-slack")["keys"]["access_token"]["expires_at"][:19],
                         "2031-05-06T07:08:09")
        self.assertEqual(epoch(self.stored("int-notion")["keys"]["access_token"]["expires_at"]),
                         epoch("2030-01-02T03:04:05.250000Z"))

        # one listing, then one fetch per active integration, in order
        calls = [(m, p) for m, p in self.calls() if m == "GET" and p != "/v1/credentials"]
        self.assertEqual(self.calls()[:1], [("GET", "/v1/credentials")])
        self.assertEqual(calls, [("GET", "/v1/credentials/" + i)
                                 for i in ["int-gh-work", "int-gh-home", "int-slack", "int-notion"]])
        self.assertEqual(len(SERVER.requests()), 5)
        self.assert_api_requests(SERVER.requests())

        # accounts: alias and identity of each
        r = self.check(self.cred("accounts", "github"), 0)
        self.assertEqual(r.stdout.decode(), "int-gh-home\tpersonal\temail=me@example.org\n"
                                            "int-gh-work\twork\tworkspace=acme account_id=A-42\n")
        r = self.check(self.cred("accounts", "slack"), 0)
        self.assertEqual(r.stdout.decode(), "int-slack\tteam\temail=bot@example.com\n")
        r = self.check(self.cred("accounts", "github", "--json"), 0)
        self.assertEqual(json.loads(r.stdout), [
            {"id": "int-gh-home", "provider": "github", "alias": "personal",
             "identity": {"email": "me@example.org"}},
            {"id": "int-gh-work", "provider": "github", "alias": "work",
             "identity": {"workspace": "acme", "account_id": "A-42"}}])
        self.assertEqual(self.check(self.cred("accounts", "hubspot"), 0).stdout, b"")

    def test_sync_writes_what_hive_writes(self):
        # no alias: no _alias key; no provider: an empty _integration_type;
        # a sync replaces the local credential (Hive saves a new object),
        # keeping only its creation time
        first = self.sync_one("int-x", "", "", access_token="tok-x")
        self.assertEqual(self.values(first), {"access_token": "tok-x", "_aden_managed": "true",
                                              "_integration_type": ""})
        self.rewrite("int-x", lambda c: c["keys"].update(local={"name": "local", "value": "mine",
                                                                "expires_at": None, "metadata": {}}))
        SERVER.add("int-x", "", "", access_token="tok-y", metadata={"email": "m@example.com"})
        self.check(self.sync(), 0)
        c = self.stored("int-x")
        self.assertEqual(list(c["keys"]), ["access_token", "_aden_managed", "_integration_type",
                                           "_identity_email"])
        self.assertEqual(c["created_at"], first["created_at"])
        self.assertIsNone(c["last_refreshed"])

    def test_sync_again_updates(self):
        first = self.sync_one("int-a", "github", "work", email="dev@example.com", access_token="tok-1")
        SERVER.add("int-a", "github", "renamed", email="new@example.com", access_token="tok-2",
                   scopes=["repo"])
        SERVER.add("int-b", "slack", "team")
        r = self.check(self.sync(), 0)
        self.assertEqual(r.stdout, b"synced 2 of 2 integration(s)\n")
        c = self.stored("int-a")
        self.assertEqual(self.values(c), {"access_token": "tok-2", "_aden_managed": "true",
                                          "_integration_type": "github", "_alias": "renamed",
                                          "_identity_email": "new@example.com", "scope": "repo"})
        self.assertEqual(c["created_at"], first["created_at"])
        self.assertEqual(self.values(self.stored("int-b"))["_alias"], "team")
        # an integration that stops being active keeps its local copy
        SERVER.integrations["int-b"]["status"] = "revoked"
        r = self.check(self.sync(), 0)
        self.assertEqual(r.stdout, b"synced 1 of 2 integration(s), 1 not active\n")
        self.assertEqual(self.stored_ids(), ["int-a", "int-b"])

    # --- the API key ------------------------------------------------------

    def test_key_from_environment(self):
        SERVER.add("int-a", "github", "work")
        # a trailing slash on the URL changes no path
        r = self.check(self.sync(env=self.env_with(ADEN_API_URL=SERVER.url + "/")), 0)
        self.assertEqual(r.stdout, b"synced 1 of 1 integration(s)\n")
        self.assertEqual(self.calls(), [("GET", "/v1/credentials"), ("GET", "/v1/credentials/int-a")])
        self.assert_api_requests(SERVER.requests())

    def test_key_from_stored_credential(self):
        SERVER.add("int-a", "github", "work")
        self.check(self.cred("add", "aden_api_key", stdin="api_key=%s\n" % KEY), 0)
        env = self.env_with(ADEN_API_KEY=None)
        r = self.check(self.sync(env=env), 0)
        self.assertEqual(r.stdout, b"synced 1 of 1 integration(s)\n")
        self.assert_api_requests(SERVER.requests())
        # an empty ADEN_API_KEY counts as unset
        SERVER.clear_log()
        self.check(self.sync(env=self.env_with(ADEN_API_KEY="")), 0)
        self.assert_api_requests(SERVER.requests())
        # ADEN_API_KEY wins over the stored key
        SERVER.clear_log()
        self.check(self.cred("add", "aden_api_key", stdin="api_key=stored-but-wrong\n"), 0)
        self.check(self.sync(), 0)
        self.assert_api_requests(SERVER.requests())

    def test_long_key_is_sent_whole(self):
        # an API key of a few KiB (a JWT, say) reaches Aden whole, never cut
        long_key = "k" * 4000 + "-end"
        SERVER.api_key = long_key
        self.addCleanup(setattr, SERVER, "api_key", KEY)
        SERVER.add("int-a", "github", "work")
        r = self.check(self.sync(env=self.env_with(ADEN_API_KEY=long_key)), 0)
        self.assertEqual(r.stdout, b"synced 1 of 1 integration(s)\n")
        for rq in SERVER.requests():
            self.assertEqual(rq["headers"].get("authorization"), "Bearer " + long_key)
        # a key past any sane size is refused before anything is sent
        SERVER.clear_log()
        r = self.check(self.sync(env=self.env_with(ADEN_API_KEY="k" * 20000)), EXIT_USAGE)
        self.assertIn("the Aden API key is longer than 16384 bytes", self.errors(r)[0])
        self.assertEqual(SERVER.requests(), [])

    def test_no_key(self):
        SERVER.add("int-a", "github", "work")
        r = self.check(self.sync(env=self.env_with(ADEN_API_KEY=None)), EXIT_KEY)
        self.assertEqual(r.stdout, b"")
        self.assertIn("ADEN_API_KEY", self.errors(r)[0])
        self.assertIn("aden_api_key", self.errors(r)[0])
        self.assertEqual(SERVER.requests(), [])
        self.assertEqual(self.stored_ids(), [])

    # --- HTTP errors: never retried -------------------------------------------

    def test_401_invalid_key(self):
        SERVER.add("int-a", "github", "work")
        r = self.check(self.sync(env=self.env_with(ADEN_API_KEY="revoked-key")), EXIT_STORE)
        self.assert_error(r, "Agent API key is invalid or revoked")
        self.assertNotIn(b"revoked-key", r.stderr)
        self.assertEqual(self.calls(), [("GET", "/v1/credentials")])
        self.assertEqual(self.stored_ids(), [])

    def test_403(self):
        SERVER.add("int-a", "github", "work")
        SERVER.fail("/v1/credentials", 403, {"message": "Agent may not read credentials of team 'ops'"})
        r = self.check(self.sync(), EXIT_STORE)
        self.assert_error(r, "Agent may not read credentials of team 'ops'")
        self.assertEqual(len(SERVER.requests()), 1)
        for body in [None, {}, {"error": "forbidden"}]:
            with self.subTest(body=body):
                SERVER.clear_log()
                SERVER.fail("/v1/credentials", 403, body)
                r = self.check(self.sync(), EXIT_STORE)
                self.assert_error(r, "Forbidden")
                self.assertEqual(len(SERVER.requests()), 1)
        self.assertEqual(self.stored_ids(), [])

    def test_404_one_integration(self):
        for iid in ["int-a", "int-b", "int-c"]:
            SERVER.add(iid, "github", iid[-1])
        SERVER.fail("/v1/credentials/int-b", 404, {"message": "Integration not found"})
        r = self.check(self.sync(), EXIT_STORE)
        self.assertEqual(r.stdout, b"synced 2 of 3 integration(s), 1 failed\n")
        self.assertEqual(self.errors(r), ["int-b: Integration not found: /v1/credentials/int-b"])
        self.assertEqual(self.stored_ids(), ["int-a", "int-c"])
        self.assertEqual(self.calls(), [("GET", "/v1/credentials")] +
                         [("GET", "/v1/credentials/" + i) for i in ["int-a", "int-b", "int-c"]])

    def test_429_retry_after(self):
        SERVER.add("int-a", "github", "work")
        SERVER.fail("/v1/credentials", 429, {"message": "slow down"}, {"Retry-After": "17"})
        r, took = self.timed(self.sync)
        self.check(r, EXIT_REFRESH)
        self.assert_error(r, "Rate limited by Aden server; retry after 17 s")
        self.assertEqual(len(SERVER.requests()), 1, "a 429 was retried")
        self.assertLess(took, 5, "hive waited after a 429")
        self.assertEqual(self.stored_ids(), [])
        # on a refresh too
        SERVER.reset()
        self.sync_one(expires_at=EXPIRED)
        before = self.snapshot()
        SERVER.fail("/v1/credentials/int-a/refresh", 429, {"message": "slow down"}, {"Retry-After": "42"})
        r = self.check(self.cred("refresh", "int-a"), EXIT_REFRESH)
        self.assert_error(r, "Failed to refresh credential 'int-a': Rate limited by Aden server; "
                             "retry after 42 s")
        self.assertEqual(self.calls(), [("POST", "/v1/credentials/int-a/refresh")])
        self.assertEqual(self.snapshot(), before)

    def test_5xx_not_retried(self):
        SERVER.add("int-a", "github", "work")
        SERVER.fail("/v1/credentials", 503, {"message": "maintenance"})
        r, took = self.timed(self.sync)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("503", self.errors(r)[0])
        self.assertEqual(len(SERVER.requests()), 1, "an HTTP error was retried")
        self.assertLess(took, 5)

    def test_400_refresh_failed_reauthorization(self):
        self.sync_one(expires_at=EXPIRED)
        before = self.snapshot()
        SERVER.fail("/v1/credentials/int-a/refresh", 400,
                    {"error": "refresh_failed", "message": "The refresh token was revoked",
                     "reauthorization_url": "https://app.adenhq.com/integrations/int-a/reauthorize"})
        r = self.check(self.cred("refresh", "int-a"), EXIT_REFRESH)
        self.assertEqual(r.stdout, b"")
        self.assert_error(r, "Integration 'int-a' requires re-authorization. "
                             "Visit: https://app.adenhq.com/integrations/int-a/reauthorize")
        self.assertEqual(self.calls(), [("POST", "/v1/credentials/int-a/refresh")])
        self.assert_api_requests(SERVER.requests())
        self.assertEqual(self.snapshot(), before)

    def test_400_other(self):
        self.sync_one(expires_at=EXPIRED)
        before = self.snapshot()
        SERVER.fail("/v1/credentials/int-a/refresh", 400,
                    {"error": "invalid_request", "message": "integration_id is malformed"})
        r = self.cred("refresh", "int-a")
        self.assert_error(r, "Failed to refresh credential 'int-a': Bad request: integration_id is malformed")
        self.assertEqual(len(SERVER.requests()), 1)
        self.assertEqual(self.snapshot(), before)
        # the exit status of a failed refresh ("7  a refresh failed")
        self.check(r, EXIT_REFRESH)

    def test_400_other_during_sync(self):
        SERVER.add("int-a", "github", "a")
        SERVER.add("int-b", "github", "b")
        SERVER.fail("/v1/credentials/int-a", 400, {"error": "invalid_request", "message": "bad id"})
        r = self.check(self.sync(), EXIT_STORE)
        self.assertEqual(r.stdout, b"synced 1 of 2 integration(s), 1 failed\n")
        self.assertEqual(self.errors(r), ["int-a: Bad request: bad id"])
        self.assertEqual(self.stored_ids(), ["int-b"])

    def test_server_text_never_shows_the_api_key(self):
        # a server quoting the request (its Authorization header) back
        self.sync_one(expires_at=EXPIRED)
        before = self.snapshot()
        for status, body in [
                (403, {"message": "key Bearer %s may not\u001b[2J\r\nhive-cred: error: forged" % KEY}),
                (400, {"error": "invalid_request", "message": "bad key " + KEY.upper()}),
                (400, {"error": "refresh_failed", "message": "no",
                       "reauthorization_url": "https://app.adenhq.com/reauthorize?key=" + KEY})]:
            with self.subTest(status=status, body=body):
                SERVER.fail("/v1/credentials/int-a/refresh", status, body)
                r = self.cred("refresh", "int-a")
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(b"[redacted]", r.stderr)
                for bad in (KEY.encode(), KEY.upper().encode(), b"\x1b", b"\\x1b", b"\r", b"\\x0d"):
                    self.assertNotIn(bad, r.stderr)
        self.assertEqual(self.snapshot(), before)

    # --- connection errors and time-outs: retried ------------------------------

    def test_connection_refused(self):
        # what a previous sync left stays readable
        self.sync_one(access_token="local-copy")
        before = self.snapshot()
        r, took = self.timed(self.sync, env=self.offline())
        self.check(r, EXIT_STORE)
        self.assertEqual(r.stdout, b"")
        self.assertTrue(self.errors(r)[0].startswith("Failed to connect to Aden server"), r.stderr)
        self.assertIn(b"hint: the Aden server did not answer; credentials synced before stay usable until they expire", r.stderr)
        # three attempts, 1 s then 2 s apart (a fourth would add 4 s more)
        self.assertGreaterEqual(took, 2.9, "fewer than three attempts")
        self.assertLess(took, 6.9, "more than three attempts")
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.check(self.cred("get", "int-a"), 0).stdout, b"local-copy\n")

    def test_hanging_server_timeout(self):
        SERVER.add("int-a", "github", "work")
        SERVER.hang_on("/v1/credentials")
        r, took = self.timed(self.sync, env=self.env_with(ADEN_TIMEOUT="1"))
        self.check(r, EXIT_STORE)
        self.assertTrue(self.errors(r)[0].startswith("Failed to connect to Aden server"), r.stderr)
        self.assertIn(b"timed out", r.stderr)
        reqs = SERVER.requests()
        self.assertEqual([(q["method"], q["path"]) for q in reqs], [("GET", "/v1/credentials")] * 3)
        # each attempt waited its 1 s time-out, then 1 s, then 2 s
        gaps = [b["time"] - a["time"] for a, b in zip(reqs, reqs[1:])]
        self.assertGreater(gaps[0], 1.9, gaps)
        self.assertGreater(gaps[1], 2.9, gaps)
        self.assertGreaterEqual(took, 5.9)
        self.assertLess(took, 15)
        self.assertEqual(self.stored_ids(), [])

    # --- refresh of a synced token ----------------------------------------

    def assert_refreshed(self, cid, token, t0, t1):
        c = self.stored(cid)
        self.assertEqual(self.values(c), {"access_token": token, "_aden_managed": "true",
                                          "_integration_type": "github", "_alias": "work",
                                          "_identity_email": "dev@example.com", "scope": "repo"})
        self.assertEqual(c["provider_id"], "aden_sync")
        self.assertEqual(epoch(c["keys"]["access_token"]["expires_at"]),
                         epoch(SERVER.tokens[cid]["expires_at"]))
        self.assertGreater(epoch(c["keys"]["access_token"]["expires_at"]), t1 + 3000)
        for field in ("last_refreshed", "updated_at"):
            self.assertTrue(t0 - 2 <= epoch(c[field]) <= t1 + 2, "%s = %s" % (field, c[field]))

    def test_refresh_expired_with_hive_cred(self):
        self.sync_one(email="dev@example.com", scopes=["repo"], access_token="old-token", expires_at=EXPIRED)
        # get reads, never refreshes
        self.assertEqual(self.check(self.cred("get", "int-a"), 0).stdout, b"old-token\n")
        self.assertEqual(SERVER.requests(), [])
        t0 = time.time()
        r = self.check(self.cred("refresh", "int-a"), 0)
        t1 = time.time()
        self.assertEqual(r.stdout.decode(), "refreshed int-a; expires %s\n"
                         % SERVER.tokens["int-a"]["expires_at"])
        self.assertEqual(self.calls(), [("POST", "/v1/credentials/int-a/refresh")])
        self.assert_api_requests(SERVER.requests())
        self.assertEqual(SERVER.requests()[0]["body"], b"{}")
        self.assert_refreshed("int-a", "aden-int-a-1", t0, t1)
        self.assertEqual(self.check(self.cred("get", "int-a"), 0).stdout, b"aden-int-a-1\n")
        self.check(self.cred("validate", "int-a"), 0)
        self.assertEqual(len(SERVER.requests()), 1)

    def test_refresh_expired_with_hive_run(self):
        self.sync_one(email="dev@example.com", scopes=["repo"], access_token="old-token", expires_at=EXPIRED)
        t0 = time.time()
        r = self.check(self.run_token("int-a"), 0)
        t1 = time.time()
        self.assertEqual(r.stdout, b"aden-int-a-1")
        self.assertEqual(self.calls(), [("POST", "/v1/credentials/int-a/refresh")])
        self.assert_api_requests(SERVER.requests())
        self.assert_refreshed("int-a", "aden-int-a-1", t0, t1)
        # the new token is good for an hour: the next launch asks nothing
        r = self.check(self.run_token("int-a"), 0)
        self.assertEqual(r.stdout, b"aden-int-a-1")
        self.assertEqual(len(SERVER.requests()), 1)

    # --- Aden unreachable -----------------------------------------------------

    def test_offline_fallback(self):
        SERVER.add("int-valid", "github", "a", access_token="valid-token")
        SERVER.add("int-due", "github", "b", access_token="due-token", expires_in=200)
        SERVER.add("int-expired", "github", "c", access_token="expired-token", expires_at=EXPIRED)
        self.check(self.sync(), 0)
        SERVER.clear_log()
        # as if int-due had been synced an hour ago: its last minutes have begun
        self.rewrite("int-due", lambda c: c.update(last_refreshed="2020-01-01T00:00:00Z"))
        off = self.offline()

        # reads use the local data, and ask nothing
        for iid, tok in [("int-valid", "valid-token"), ("int-due", "due-token"),
                         ("int-expired", "expired-token")]:
            r, took = self.timed(self.cred, "get", iid, env=off)
            self.assertEqual(self.check(r, 0).stdout, tok.encode() + b"\n")
            self.assertLess(took, 2.5, "get tried the network")

        # a token that is not due: no network at all
        r, took = self.timed(self.run_token, "int-valid", env=off)
        self.assertEqual(self.check(r, 0).stdout, b"valid-token")
        self.assertEqual(r.stderr, b"")
        self.assertLess(took, 2.5)

        # due but still valid: a warning, and the program gets the local token
        r = self.check(self.run_token("int-due", env=off), 0)
        self.assertEqual(r.stdout, b"due-token")
        self.assertTrue(any(ln.startswith("Failed to refresh credential 'int-due'") for ln in self.errors(r)),
                        r.stderr)

        # expired: hive-run fails before running the program
        before = self.snapshot()
        r = self.check(self.hive_run("-e", "T={{int-expired}}", "--", "sh", "-c", "echo ran", env=off),
                       EXIT_FAIL)
        self.assertNotIn(b"ran", r.stdout)
        self.assertIn("Aden server unavailable and token expired for 'int-expired'", self.errors(r))
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(SERVER.requests(), [])

    def test_validate_with_aden_down(self):
        SERVER.add("int-valid", "github", "a")
        SERVER.add("int-expired", "github", "b", expires_at=EXPIRED)
        self.check(self.sync(), 0)
        SERVER.clear_log()
        off = self.offline()
        # an expired synced token is refreshable (an API key is there)
        r, took = self.timed(self.cred, "validate", env=off)
        self.assertEqual(self.check(r, 0).stdout, b"ok: 2 credential(s), 0 usage spec(s)\n")
        self.assertLess(took, 2.5, "validate tried the network")
        r = self.check(self.cred("validate", "int-valid", env=off), 0)
        # ... and not without one
        r = self.check(self.cred("validate", env=self.env_with(ADEN_API_URL=off["ADEN_API_URL"],
                                                               ADEN_API_KEY=None)), 1)
        self.assertEqual(r.stdout.decode(),
                         "credential int-expired: Key 'access_token' of credential 'int-expired' expired at "
                         "2020-01-01T00:00:00Z and cannot be refreshed: no Aden API key: set ADEN_API_KEY or "
                         "store it as the credential aden_api_key (key api_key)\n")
        # validate never asks Aden, up or down
        self.check(self.cred("validate"), 0)
        self.assertEqual(SERVER.requests(), [])


def main():
    hivetest.main(binaries=["hive-run", "hive-cred"])


if __name__ == "__main__":
    main()
