#!/usr/bin/env python3
"""The --fresh refresher's refreshes in the audit record ($HIVE_HOME/audit.log):
one "refresh" record per refresh it makes while the program runs, and one
per failed attempt with the error; never a value.

Run:  python3 tests/fresh/test_fresh_audit.py [unittest options]

Against the OAuth2 test server (tests/oauth/server.js) with 3-second
tokens, stretched by HIVE_TEST_TIME_SCALE as tests/fresh/test_fresh.py
does; needs node and the server's packages, and fails saying why without
them. Environment: HIVE_RUN, HIVE_CRED, HIVE_PRELOAD (ctest sets them).
"""

import json
import os
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lib"))
import hivetest  # noqa: E402  (tests/lib/hivetest.py)

HIVE_RUN = hivetest.HIVE_RUN
HIVE_CRED = hivetest.HIVE_CRED
HIVE_PRELOAD = hivetest.HIVE_PRELOAD
ACCESS_TTL = hivetest.scaled_int(3)
UNIT = ACCESS_TTL / 3.0
TIMEOUT = hivetest.scaled(60)
CLIENT, SECRET = "hive-post", "post-secret-123"

_server = None


def setUpModule():
    global _server
    why = hivetest.missing_oauth_server()
    if why:
        raise RuntimeError("cannot run: " + why)
    tmp = tempfile.mkdtemp(prefix="hive-fresh-audit-")
    unittest.addModuleCleanup(shutil.rmtree, tmp, ignore_errors=True)
    _server = hivetest.start_oauth_server(tmp, ACCESS_TTL)
    unittest.addModuleCleanup(_server.close)


class RefresherAudit(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.dir = hivetest.temp_dir(self, "hive-fresh-audit-")
        self.home = os.path.join(self.dir, "home")
        self.env = hivetest.clean_env(self.home, HIVE_PRELOAD=str(HIVE_PRELOAD))
        # the hive-run under test may be an ASan build, and the program inherits LD_PRELOAD
        asan = self.env.get("ASAN_OPTIONS", "")
        if "verify_asan_link_order" not in asan:
            self.env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "verify_asan_link_order=0"
        self.cred("init")

    def cred(self, *args, stdin=""):
        r = hivetest.run([HIVE_CRED, *args], self.env, stdin=stdin, timeout=TIMEOUT, cwd=self.dir)
        self.assertEqual(r.returncode, 0, "hive-cred %s: %r" % (" ".join(args), r.stderr))
        return r

    def token(self, expires, rt=None, access="old-access-token-0123456789"):
        """Provider idp (the server's client hive-post), token tok with
        refresh token rt (None: a minted one; returned) and an access token
        expiring at expires."""
        self.cred("add", "idp", "--type", "custom",
                  stdin="token_url=%s\nclient_id=%s\nclient_secret=%s\n" % (_server.token_url, CLIENT, SECRET))
        rt = rt or _server.mint(CLIENT)
        self.cred("add", "tok", "--type", "oauth2", "--provider-id", "idp", "--auto-refresh",
                  "--expires", "access_token=" + expires, stdin="access_token=%s\nrefresh_token=%s\n" % (access, rt))
        return rt

    def run_fresh(self, seconds):
        r = hivetest.run([HIVE_RUN, "--fresh", "-e", "TOKEN={{tok}}", "--", "sleep", "%g" % seconds],
                         self.env, timeout=TIMEOUT + seconds, cwd=self.dir)
        err = r.stderr.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 0, err[-3000:])
        for marker in ("Sanitizer", "runtime error:"):
            self.assertNotIn(marker, err)
        return err

    def log(self):
        with open(os.path.join(self.home, "audit.log"), encoding="utf-8") as f:
            text = f.read()
        self.assertTrue(text.endswith("\n"), "the last line is cut")
        return text, [json.loads(line) for line in text.splitlines()]

    def refresher_records(self, recs):
        return [r for r in recs if r["event"] == "refresh" and r["command"] == "fresh"]

    def test_each_refresh_of_the_refresher_is_recorded(self):
        rt = self.token("2020-01-01T00:00:00Z")
        # hive-run refreshes at launch, then its refresher every ~2/3 of the token's life
        self.run_fresh(8 * UNIT)
        text, recs = self.log()
        launch = [r for r in recs if r["event"] == "launch"]
        self.assertEqual(len(launch), 1, recs)
        self.assertEqual(launch[0]["mode"], "fresh")
        mine = self.refresher_records(recs)
        self.assertGreaterEqual(len(mine), 2, recs)
        for r in mine:
            self.assertEqual((r["tool"], r["id"], r["ok"]), ("hive-run", "tok", True), r)
            self.assertNotIn("error", r)
            self.assertNotIn("keys", r)
            # the refresher's own pid, not the program's (hive-run's)
            self.assertNotEqual(r["pid"], launch[0]["pid"])
        self.assertEqual(len({r["pid"] for r in mine}), 1, mine)
        times = [r["time"] for r in mine]
        self.assertEqual(times, sorted(times))
        # never a value: the last tokens, the first refresh token, the client's secret
        now_access = self.cred("get", "tok", "access_token").stdout.decode().strip()
        now_refresh = self.cred("get", "tok", "refresh_token").stdout.decode().strip()
        for secret in (now_access, now_refresh, rt, SECRET, "old-access-token-0123456789"):
            self.assertNotIn(secret, text)

    def test_a_failed_refresh_is_recorded_with_its_error(self):
        # a refresh token the server never issued; the access token due
        # (margin 300 s) but not expired: the program runs on the stored one
        rt = self.token("+200s", rt="never-issued-refresh-token-0123456789")
        err = self.run_fresh(max(4.0, 4 * UNIT))
        self.assertIn("refresher:", err)
        text, recs = self.log()
        mine = self.refresher_records(recs)
        self.assertGreaterEqual(len(mine), 1, recs)
        for r in mine:
            self.assertEqual((r["tool"], r["id"], r["ok"]), ("hive-run", "tok", False), r)
            self.assertEqual(r["error"], "Refresh token for 'tok' is invalid or revoked. Re-authorization required.")
            self.assertIn("refresher: " + r["error"], err, "the error the refresher said")
        for secret in (rt, SECRET, "old-access-token-0123456789"):
            self.assertNotIn(secret, text)

    def test_switched_off_the_refresher_records_nothing(self):
        self.token("2020-01-01T00:00:00Z")
        self.env["HIVE_AUDIT"] = "off"
        self.run_fresh(4 * UNIT)
        self.assertFalse(os.path.exists(os.path.join(self.home, "audit.log")))


def main():
    hivetest.main(binaries=["hive-run", "hive-cred", "libhive-preload.so"],
                  prerequisite=hivetest.missing_oauth_server)


if __name__ == "__main__":
    main()
