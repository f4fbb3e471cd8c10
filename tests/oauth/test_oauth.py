#!/usr/bin/env python3
"""OAuth2 refresh, tested against a real authorization server.

Run:  python3 tests/oauth/test_oauth.py [unittest options]

Needs `node` (18 or newer) and the server's packages (`npm ci --prefix
tests/oauth`, which scripts/test runs); without them the suite cannot run
and fails saying why.

Environment:
  HIVE_RUN   path of the hive-run binary  (default: <repo>/build/launcher/hive-run)
  HIVE_CRED  path of the hive-cred binary (default: <repo>/build/launcher/hive-cred)
  HIVE_PRELOAD  path of libhive-preload.so, for hive-run --fresh
             (default: <repo>/build/preload/libhive-preload.so)

One server process (tests/oauth/server.js: oidc-provider plus a server of
broken token endpoints, see tests/oauth/README.md) serves the whole run;
its counters are reset before each test. Every test has its own
HIVE_HOME and freshly minted refresh tokens, and reads what hive stored
by decrypting the .enc files with Fernet. Standard library plus
`cryptography`.
"""

import http.client
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oauth_server  # noqa: E402  (tests/oauth/oauth_server.py)

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO / "tests" / "lib"))
import hivetest  # noqa: E402  (tests/lib/hivetest.py)

HIVE_RUN = hivetest.HIVE_RUN
HIVE_CRED = hivetest.HIVE_CRED
HIVE_PRELOAD = hivetest.HIVE_PRELOAD

TIMEOUT = hivetest.scaled(60)           # per hive command
ACCESS_TTL = hivetest.scaled_int(60)    # the server's access token lifetime

POST_ID, POST_SECRET = "hive-post", "post-secret-123"
BASIC_ID, BASIC_SECRET = "hive-basic", "b@sic:s3cr3t/+%&="
BASIC_HEADER = "Basic aGl2ZS1iYXNpYzpiJTQwc2ljJTNBczNjcjN0JTJGJTJCJTI1JTI2JTNE"
INVALID_GRANT_MSG = "Refresh token for '%s' is invalid or revoked. Re-authorization required."
EXIT_REFRESH = 7
EXIT_FAIL = 125

PROXY_VARS = hivetest.PROXY_VARS

SERVER = {}           # the port file's contents
_server = None
_tmp = None


def missing_prerequisite():
    """Why the tests cannot run, or None."""
    return hivetest.missing_oauth_server()


def server_log():
    return _server.log_tail() if _server else ""


def setUpModule():
    global _server, _tmp
    why = missing_prerequisite()
    if why:
        raise RuntimeError("cannot run: " + why)
    for what, path in [("hive-run", HIVE_RUN), ("hive-cred", HIVE_CRED)]:
        if not os.access(path, os.X_OK):
            raise RuntimeError("%s not found at %s (set %s)" % (what, path, what.upper().replace("-", "_")))
    if not os.path.isfile(HIVE_PRELOAD):
        raise RuntimeError("libhive-preload.so not found at %s (set HIVE_PRELOAD)" % HIVE_PRELOAD)
    _tmp = tempfile.mkdtemp(prefix="hive-oauth-test-")
    try:
        _server = hivetest.start_oauth_server(_tmp, ACCESS_TTL)
        SERVER.update(_server.ports)
    except BaseException:
        tearDownModule()    # not called when setUpModule fails
        raise


def tearDownModule():
    if _server is not None:
        _server.close()
    if _tmp:
        shutil.rmtree(_tmp, ignore_errors=True)


# --- talking to the server ---------------------------------------------------

def request(method, port, path, form=None):
    """(status, parsed JSON body) of a request to 127.0.0.1:port."""
    return _server.request(method, path, form, port=port)


def admin(method, path):
    status, body = request(method, SERVER["http"], path)
    if status != 200:
        raise AssertionError("%s %s: HTTP %d %r" % (method, path, status, body))
    return body


def mint(client=POST_ID):
    return admin("POST", "/test/mint?client=" + client)["refresh_token"]


def stats():
    return admin("GET", "/test/stats")


def fail_stats():
    status, body = request("GET", SERVER["fail"], "/test/stats")
    assert status == 200, body
    return body["by_path"]


def token_url(scheme="http", path=None):
    port = SERVER["https"] if scheme == "https" else SERVER["http"]
    return "%s://127.0.0.1:%d%s" % (scheme, port, path or SERVER["token_path"])


def fail_url(path):
    return "http://127.0.0.1:%d%s" % (SERVER["fail"], path)


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


class OAuthTest(unittest.TestCase):
    """A fresh HIVE_HOME per test; the server's counters reset."""

    maxDiff = None

    def setUp(self):
        self.tmp = hivetest.temp_dir(self, "hive-oauth-")
        self.home = os.path.join(self.tmp, "home")
        self.store = os.path.join(self.home, "credentials")
        self.env = hivetest.clean_env(self.home)
        self.check(self.cred("init"), 0)
        with open(os.path.join(self.home, "secrets", "credential_key"), "rb") as f:
            self.fernet = Fernet(f.read().strip())
        admin("POST", "/test/reset")
        status, _ = request("POST", SERVER["fail"], "/test/reset")
        self.assertEqual(status, 200)

    # --- helpers -------------------------------------------------------

    def cred(self, *args, stdin=b"", env=None):
        return hivetest.run([HIVE_CRED, *args], env or self.env, stdin=stdin, timeout=TIMEOUT, cwd=self.tmp)

    def hive_run(self, *args):
        return hivetest.run([HIVE_RUN, *args], self.env, timeout=TIMEOUT, cwd=self.tmp)

    def check(self, r, code, what=""):
        self.assertEqual(r.returncode, code,
                         "%s: exit %d, expected %d\nstdout: %r\nstderr: %r"
                         % (what or " ".join(map(str, r.args[1:]))[:300], r.returncode, code,
                            r.stdout[:2000], r.stderr[:3000]))
        return r

    def add_provider(self, pid="idp", url=None, client_id=POST_ID, secret=POST_SECRET, **extra):
        keys = {"token_url": url or token_url(), "client_id": client_id, "client_secret": secret}
        keys.update(extra)
        text = "".join("%s=%s\n" % kv for kv in keys.items())
        self.check(self.cred("add", pid, "--type", "custom", stdin=text), 0)

    def add_token(self, cid="tok", refresh=None, access="old", expires="+10s", provider="idp"):
        text = "access_token=%s\n" % access
        if refresh is not None:
            text += "refresh_token=%s\n" % refresh
        self.check(self.cred("add", cid, "--type", "oauth2", "--provider-id", provider, "--auto-refresh",
                             "--expires", "access_token=" + expires, stdin=text), 0)

    def stored(self, cid="tok"):
        """The credential as stored: the decrypted JSON of its .enc file."""
        with open(os.path.join(self.store, "credentials", cid + ".enc"), "rb") as f:
            return json.loads(self.fernet.decrypt(f.read().strip()))

    def value(self, cred, key):
        k = cred["keys"].get(key)
        return None if k is None else k["value"]

    def snapshot(self):
        """Every file of the store but the lock files: path -> bytes."""
        out = {}
        for root, dirs, files in os.walk(self.store):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for f in files:
                if f.startswith("."):
                    continue
                p = os.path.join(root, f)
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, self.store)] = fh.read()
        return out

    def refresh(self, cid="tok", env=None):
        """hive-cred refresh: (result, seconds it took, time before, time after)."""
        t0 = time.time()
        r = self.cred("refresh", cid, env=env)
        t1 = time.time()
        return r, t1 - t0, t0, t1

    def assert_expires_about(self, cred, ttl, t0, t1, key="access_token", slack=3):
        exp = cred["keys"][key]["expires_at"]
        self.assertIsNotNone(exp, "%s has no expiry" % key)
        self.assertTrue(int(t0) + ttl - slack <= epoch(exp) <= t1 + ttl + slack,
                        "%s expires at %s, expected about now+%d (now=%s)"
                        % (key, exp, ttl, datetime.fromtimestamp(t1, timezone.utc).isoformat()))

    def assert_refreshed_at(self, cred, t0, t1):
        for field in ("last_refreshed", "updated_at"):
            self.assertIsNotNone(cred[field], field)
            self.assertTrue(t0 - 2 <= epoch(cred[field]) <= t1 + 2, "%s = %s" % (field, cred[field]))

    def assert_refresh_fails(self, r, cid="tok"):
        self.check(r, EXIT_REFRESH)
        self.assertIn(("Failed to refresh credential '%s'" % cid).encode(), r.stderr)

    def assert_invalid_grant(self, rt, client=POST_ID, secret=POST_SECRET):
        status, body = request("POST", SERVER["http"], SERVER["token_path"],
                            {"grant_type": "refresh_token", "refresh_token": rt,
                             "client_id": client, "client_secret": secret})
        self.assertEqual((status, body.get("error")), (400, "invalid_grant"), body)

    def stderr_lines(self, r):
        """stderr lines without the program's 'NAME: error: ' prefix."""
        return [re.sub(r"^hive-[a-z]+: (error|warning): ", "", ln)
                for ln in r.stderr.decode("utf-8", "replace").splitlines()]

    # --- 1, 2, 4: the refresh grant ---------------------------------------

    def check_rotation(self, client=POST_ID, secret=POST_SECRET, **provider):
        rt0 = mint(client)
        self.add_provider(client_id=client, secret=secret, **provider)
        self.add_token(refresh=rt0)
        r, _, t0, t1 = self.refresh()
        self.check(r, 0)
        self.assertTrue(r.stdout.startswith(b"refreshed tok; expires "), r.stdout)
        c = self.stored()
        at1, rt1 = self.value(c, "access_token"), self.value(c, "refresh_token")
        self.assertNotIn(at1, (None, "", "old"))
        self.assertNotIn(rt1, (None, "", rt0), "the rotated refresh token was not stored")
        self.assert_expires_about(c, ACCESS_TTL, t0, t1)
        self.assert_refreshed_at(c, t0, t1)
        self.assertEqual(c["provider_id"], "idp")
        self.assertTrue(c["auto_refresh"])
        self.assertEqual(self.check(self.cred("get", "tok", "access_token"), 0).stdout, at1.encode() + b"\n")
        s = stats()
        self.assertEqual(s["token_requests"], 1, s)
        self.assertEqual(s["by_grant"], {"refresh_token": 1}, s)
        self.assertEqual(s["by_client"], {client: 1}, s)

        # the new refresh token works (and rotates again) ...
        r, _, t0, t1 = self.refresh()
        self.check(r, 0, "refresh with the rotated refresh token")
        c = self.stored()
        self.assertNotIn(self.value(c, "refresh_token"), (rt0, rt1))
        self.assertNotIn(self.value(c, "access_token"), ("old", at1))
        self.assert_expires_about(c, ACCESS_TTL, t0, t1)
        s = stats()
        self.assertEqual(s["token_requests"], 2, s)
        # ... and the first one is dead. (Last: presenting a rotated-away
        # refresh token makes the server revoke the whole grant.)
        self.assert_invalid_grant(rt0, client, secret)
        return s

    def test_refresh_rotation_http(self):
        s = self.check_rotation()
        self.assertEqual(s["by_auth"].get("client_secret_post"), 2, s)

    def test_refresh_rotation_https(self):
        s = self.check_rotation(url=token_url("https"), ca_file=SERVER["ca_file"])
        self.assertEqual(s["by_auth"].get("client_secret_post"), 2, s)

    def test_https_without_ca_file_fails(self):
        rt = mint()
        self.add_provider(url=token_url("https"))
        self.add_token(refresh=rt)
        before = self.snapshot()
        r, _, _, _ = self.refresh()
        self.assert_refresh_fails(r)
        self.assertRegex(r.stderr.decode("utf-8", "replace"), re.compile(r"certificate|SSL|TLS", re.I))
        self.assertEqual(self.snapshot(), before, "a failed refresh changed the store")
        self.assertEqual(stats()["token_requests"], 0, "a request got through an unverified TLS connection")

    def test_refresh_client_secret_basic(self):
        s = self.check_rotation(client=BASIC_ID, secret=BASIC_SECRET, auth_method="client_secret_basic")
        self.assertEqual(s["by_auth"], {"client_secret_basic": 2}, s)

    # --- 3: client_credentials ----------------------------------------------

    def test_client_credentials_post_and_basic(self):
        self.add_provider("idp-post", scope="api:read")
        self.add_provider("idp-basic", client_id=BASIC_ID, secret=BASIC_SECRET, scope="api:read",
                          auth_method="client_secret_basic")
        self.add_token("cc-post", provider="idp-post")
        self.add_token("cc-basic", provider="idp-basic")
        for cid in ("cc-post", "cc-basic"):
            r, _, t0, t1 = self.refresh(cid)
            self.check(r, 0)
            c = self.stored(cid)
            self.assertNotIn(self.value(c, "access_token"), (None, "", "old"))
            self.assertNotIn("refresh_token", c["keys"], "client_credentials gives no refresh token")
            self.assert_expires_about(c, ACCESS_TTL, t0, t1)
            self.assert_refreshed_at(c, t0, t1)
        self.assertNotEqual(self.value(self.stored("cc-post"), "access_token"),
                            self.value(self.stored("cc-basic"), "access_token"))
        s = stats()
        self.assertEqual(s["token_requests"], 2, s)
        self.assertEqual(s["by_grant"], {"client_credentials": 2}, s)
        self.assertEqual(s["by_client"], {POST_ID: 1, BASIC_ID: 1}, s)
        self.assertEqual(s["by_auth"], {"client_secret_post": 1, "client_secret_basic": 1}, s)

    # --- 5, 6, 7: failures that change nothing -----------------------------

    def test_revoked_refresh_token(self):
        rt = mint()
        admin("POST", "/test/revoke?token=" + rt)
        self.add_provider()
        self.add_token(refresh=rt)
        before = self.snapshot()
        r, _, _, _ = self.refresh()
        self.check(r, EXIT_REFRESH)
        self.assertIn(INVALID_GRANT_MSG % "tok", self.stderr_lines(r), r.stderr)
        self.assertEqual(self.snapshot(), before, "a failed refresh changed the store")
        self.assertEqual(stats()["token_requests"], 1, "a 400 was retried")

    def test_wrong_client_secret(self):
        rt = mint()
        self.add_provider(secret="not-the-secret")
        self.add_token(refresh=rt)
        before = self.snapshot()
        r, _, _, _ = self.refresh()
        self.check(r, EXIT_REFRESH)
        self.assertIn(b"Failed to refresh credential 'tok': HTTP 401: invalid_client", r.stderr)
        self.assertEqual(self.snapshot(), before, "a failed refresh changed the store")
        s = stats()
        self.assertEqual(s["token_requests"], 1, "a 4xx was retried: %r" % s)
        # the refresh token was not spent: with the right secret it works
        status, body = request("POST", SERVER["http"], SERVER["token_path"],
                            {"grant_type": "refresh_token", "refresh_token": rt,
                             "client_id": POST_ID, "client_secret": POST_SECRET})
        self.assertEqual(status, 200, body)

    def test_server_down(self):
        self.add_provider(url="http://127.0.0.1:%d/token" % closed_port())
        self.add_token(refresh=mint())
        before = self.snapshot()
        r, took, _, _ = self.refresh()
        self.assert_refresh_fails(r)
        self.assertGreaterEqual(took, 0.7, "3 attempts with 250 ms + 500 ms of backoff took %.2f s" % took)
        self.assertEqual(self.snapshot(), before, "a failed refresh changed the store")

    # --- 8: broken token endpoints ------------------------------------------

    def fail_refresh(self, path, refresh="rt-for-the-fail-server", **provider):
        self.add_provider(url=fail_url(path), **provider)
        self.add_token(refresh=refresh)
        before = self.snapshot()
        r, took, t0, t1 = self.refresh()
        return r, took, t0, t1, before

    def test_fail_500_bounded_retries(self):
        r, took, _, _, before = self.fail_refresh("/500")
        self.assert_refresh_fails(r)
        self.assertIn(b"HTTP 500", r.stderr)
        self.assertEqual(fail_stats(), {"/500": 3}, "want exactly 3 attempts")
        self.assertGreaterEqual(took, 0.7, "backoff 250 ms + 500 ms")
        self.assertEqual(self.snapshot(), before)

    def test_fail_401_not_retried(self):
        r, _, _, _, before = self.fail_refresh("/400-invalid-client")
        self.assert_refresh_fails(r)
        self.assertIn(b"HTTP 401: invalid_client", r.stderr)
        self.assertEqual(fail_stats(), {"/400-invalid-client": 1})
        self.assertEqual(self.snapshot(), before)

    def test_fail_503_then_success(self):
        r, _, t0, t1, _ = self.fail_refresh("/503")
        self.check(r, 0)
        self.assertEqual(fail_stats(), {"/503": 2})
        c = self.stored()
        self.assertTrue(self.value(c, "access_token").startswith("fail-access-"), c)
        self.assertEqual(self.value(c, "refresh_token"), "fail-refresh-503")
        self.assert_expires_about(c, 3600, t0, t1)

    def test_fail_hang_times_out(self):
        r, took, _, _, before = self.fail_refresh("/hang", timeout="1")
        self.assert_refresh_fails(r)
        self.assertRegex(r.stderr.decode("utf-8", "replace"), re.compile(r"time[ d-]*out", re.I))
        self.assertLess(took, 15, "timeout=1 but the refresh took %.1f s" % took)
        self.assertEqual(fail_stats(), {"/hang": 3}, "a time-out is retried: 3 attempts")
        self.assertEqual(self.snapshot(), before)

    def test_fail_garbage(self):
        r, _, _, _, before = self.fail_refresh("/garbage")
        self.assert_refresh_fails(r)
        self.assertIn(b"neither JSON nor form", r.stderr)
        self.assertEqual(fail_stats(), {"/garbage": 1})
        self.assertEqual(self.snapshot(), before)

    def test_fail_form_answer(self):
        r, _, t0, t1, _ = self.fail_refresh("/form")
        self.check(r, 0)
        c = self.stored()
        self.assertEqual(self.value(c, "access_token"), "form-access-1")
        self.assertEqual(self.value(c, "refresh_token"), "form-refresh-2")
        self.assert_expires_about(c, 3600, t0, t1)

    def test_fail_string_expires_in(self):
        r, _, t0, t1, _ = self.fail_refresh("/string-expires")
        self.check(r, 0)
        c = self.stored()
        self.assertEqual(self.value(c, "access_token"), "str-access")
        self.assert_expires_about(c, 120, t0, t1)
        self.assertEqual(self.value(c, "refresh_token"), "rt-for-the-fail-server", "kept when not rotated")

    def capture_echo(self, cid="tok"):
        """Refresh cid through a relay to the fail server's /echo; return the
        'seen' part of the answer (hive itself keeps only the tokens). The
        relay passes the request on byte for byte (method, body, and the
        Content-Type, Authorization and Accept headers) and the answer back."""
        captured = []

        class Relay(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: self.headers[k] for k in ("Content-Type", "Authorization", "Accept")
                           if self.headers[k] is not None}
                conn = http.client.HTTPConnection("127.0.0.1", SERVER["fail"], timeout=30)
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                conn.close()
                captured.append(json.loads(data)["seen"])
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.getheader("Content-Type"))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        relay = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Relay)
        thread = threading.Thread(target=relay.serve_forever, daemon=True)
        thread.start()
        try:
            self.add_provider(url="http://127.0.0.1:%d/echo" % relay.server_address[1], **self.echo_provider)
            r, _, t0, t1 = self.refresh(cid)
        finally:
            relay.shutdown()
            relay.server_close()
            thread.join()
        self.check(r, 0)
        self.assertEqual(len(captured), 1, "want one request: %r" % captured)
        c = self.stored(cid)
        self.assertEqual(self.value(c, "access_token"), "echo")
        self.assert_expires_about(c, 3600, t0, t1)
        self.assertEqual(fail_stats(), {"/echo": 1})
        return captured[0]

    def test_echo_client_secret_post(self):
        # a secret with every character form encoding must escape
        self.echo_provider = dict(client_id=BASIC_ID, secret=BASIC_SECRET)
        self.add_token(refresh="rt/with+odd=chars&")
        seen = self.capture_echo()
        self.assertEqual(seen["method"], "POST")
        self.assertEqual(seen["path"], "/echo")
        self.assertTrue((seen["content_type"] or "").startswith("application/x-www-form-urlencoded"), seen)
        self.assertIsNone(seen["authorization"], seen)
        self.assertEqual(seen["form"], {"grant_type": "refresh_token", "refresh_token": "rt/with+odd=chars&",
                                        "client_id": BASIC_ID, "client_secret": BASIC_SECRET}, seen)

    def test_echo_client_secret_basic(self):
        self.echo_provider = dict(client_id=BASIC_ID, secret=BASIC_SECRET, auth_method="client_secret_basic")
        rt = mint(BASIC_ID)
        self.add_token(refresh=rt)
        seen = self.capture_echo()
        self.assertTrue((seen["content_type"] or "").startswith("application/x-www-form-urlencoded"), seen)
        self.assertEqual(seen["authorization"], BASIC_HEADER)
        self.assertEqual(seen["form"].get("grant_type"), "refresh_token", seen)
        self.assertEqual(seen["form"].get("refresh_token"), rt, seen)
        self.assertNotIn("client_secret", seen["form"], "the secret went in the body too")

    def test_echo_client_credentials_scope(self):
        self.echo_provider = dict(scope="api:read api:write")
        self.add_token()
        seen = self.capture_echo()
        self.assertEqual(seen["form"], {"grant_type": "client_credentials", "scope": "api:read api:write",
                                        "client_id": POST_ID, "client_secret": POST_SECRET}, seen)

    # --- 9, 10: hive-run ---------------------------------------------------------

    def test_parallel_launches_one_request(self):
        self.add_provider()
        self.add_token(refresh=mint(), expires="2020-01-01T00:00:00Z")
        cmd = [HIVE_RUN, "-e", "T={{tok.access_token}}", "--", "sh", "-c", 'printf %s "$T"']
        procs = [subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=self.env, cwd=self.tmp) for _ in range(20)]
        results = []
        for p in procs:
            out, err = p.communicate(timeout=TIMEOUT)
            results.append((p.returncode, out, err))
        for rc, out, err in results:
            self.assertEqual(rc, 0, "hive-run failed: %r" % err)
        values = {out for _, out, _ in results}
        self.assertEqual(len(values), 1, "the programs got different tokens: %r" % values)
        value = values.pop().decode()
        self.assertNotIn(value, ("", "old"))
        c = self.stored()
        self.assertEqual(self.value(c, "access_token"), value)
        s = stats()
        self.assertEqual(s["token_requests"], 1, "20 launches caused %d token requests" % s["token_requests"])
        self.assertTrue(os.path.isfile(os.path.join(self.store, ".refresh", "tok.lock")), "no refresh lock file")
        # the stored refresh token survived (a second refresh with a spent
        # token would have made the server revoke the grant)
        r, _, _, _ = self.refresh()
        self.check(r, 0, "refresh with the stored refresh token after the launches")
        self.assertEqual(stats()["token_requests"], 2)

    def test_run_not_due_no_request(self):
        self.add_provider()
        self.add_token(refresh=mint(), expires="+3600s")
        r = self.check(self.hive_run("-e", "T={{tok.access_token}}", "--", "sh", "-c", 'printf %s "$T"'), 0)
        self.assertEqual(r.stdout, b"old")
        self.assertEqual(stats()["token_requests"], 0)
        # a fresh 60 s token is due only in the last third of its life
        self.check(self.refresh()[0], 0)
        new = self.value(self.stored(), "access_token")
        r = self.check(self.hive_run("-e", "T={{tok.access_token}}", "--", "sh", "-c", 'printf %s "$T"'), 0)
        self.assertEqual(r.stdout, new.encode())
        self.assertEqual(stats()["token_requests"], 1, "a just-refreshed token was refreshed again")

    def test_run_no_refresh_expired(self):
        self.add_provider()
        self.add_token(refresh=mint(), expires="2020-01-01T00:00:00Z")
        before = self.snapshot()
        r = self.check(self.hive_run("--no-refresh", "-e", "T={{tok.access_token}}", "--", "true"), EXIT_FAIL)
        self.assertEqual(stats()["token_requests"], 0)
        self.assertEqual(self.snapshot(), before)

    def test_run_failed_refresh(self):
        rt = mint()
        admin("POST", "/test/revoke?token=" + rt)
        self.add_provider()
        # due (inside the 300 s margin) but not expired: a warning, the old value
        self.add_token(refresh=rt, expires="+100s")
        r = self.check(self.hive_run("-e", "T={{tok.access_token}}", "--", "sh", "-c", 'printf %s "$T"'), 0)
        self.assertEqual(r.stdout, b"old")
        self.assertIn((INVALID_GRANT_MSG % "tok").encode(), r.stderr)
        # expired: hive-run fails before running the program
        self.add_token(refresh=rt, expires="2020-01-01T00:00:00Z")
        r = self.check(self.hive_run("-e", "T={{tok.access_token}}", "--", "sh", "-c", "echo ran"), EXIT_FAIL)
        self.assertNotIn(b"ran", r.stdout)
        self.assertEqual(stats()["token_requests"], 2)

    # --- issue 12: what is due, once per launch ------------------------------------

    def add_oidc(self, cid="tok", access_expires="+3600s", provider="idp"):
        """A credential as an OpenID Connect login leaves it: an access token,
        and a refresh token and an id_token whose expiries have passed (a
        refresh renews neither)."""
        text = "access_token=old\nrefresh_token=%s\nid_token=old-id-token\n" % mint()
        self.check(self.cred("add", cid, "--type", "oauth2", "--provider-id", provider, "--auto-refresh",
                             "--expires", "access_token=" + access_expires,
                             "--expires", "id_token=2020-01-01T00:00:00Z",
                             "--expires", "refresh_token=2020-01-01T00:00:00Z", stdin=text), 0)

    def test_run_fresh_access_token_with_expired_id_token_no_request(self):
        # was: due after every refresh, so each launch refreshed twice
        self.add_provider()
        self.add_oidc()
        for _ in range(3):
            r = self.check(self.hive_run("-e", "T={{tok.access_token}}", "--", "sh", "-c", 'printf %s "$T"'), 0)
            self.assertEqual(r.stdout, b"old")
        self.assertEqual(stats()["token_requests"], 0)
        # a template naming the expired id_token: no refresh (it would not
        # renew it); the launch fails as for any expired key, saying why
        r = self.check(self.hive_run("-e", "T={{tok.id_token}}", "--", "sh", "-c", "echo ran"), EXIT_FAIL)
        self.assertNotIn(b"ran", r.stdout)
        self.assertIn(b"key 'id_token' of credential 'tok' expired at 2020-01-01", r.stderr)
        self.assertIn(b"a refresh renews only the access token", r.stderr)
        r = self.check(self.hive_run("--allow-expired", "-e", "T={{tok.id_token}}", "--", "sh", "-c",
                                     'printf %s "$T"'), 0)
        self.assertEqual(r.stdout, b"old-id-token")
        self.assertEqual(stats()["token_requests"], 0)

    def test_run_refreshes_once_and_passes_on_the_stored_token(self):
        # was: two token requests per launch, the program getting the first
        # token while the store kept the second
        self.add_provider()
        self.add_oidc(access_expires="2020-01-01T00:00:00Z")
        out = os.path.join(self.tmp, "out")
        self.check(self.hive_run("--mask", "-e", "T={{tok.access_token}}", "-e", "U=Bearer {{tok}}", "--",
                                 "sh", "-c", 'printf "%s\n%s" "$T" "$U" > "$0"', out), 0)
        with open(out, encoding="utf-8") as f:
            got = f.read().split("\n")
        stored = self.value(self.stored(), "access_token")
        self.assertNotIn(stored, ("", "old"))
        self.assertEqual(got, [stored, "Bearer " + stored], "the program did not get the stored token")
        self.assertEqual(stats()["token_requests"], 1)
        # the next launch finds it fresh
        r = self.check(self.hive_run("-e", "T={{tok.access_token}}", "--", "sh", "-c", 'printf %s "$T"'), 0)
        self.assertEqual(r.stdout, stored.encode())
        self.assertEqual(stats()["token_requests"], 1)
        # and the stored refresh token is the live one; what hive-cred
        # refresh reports is the access token's new expiry, not the
        # id_token's old one
        r, _, t0, t1 = self.refresh()
        self.check(r, 0)
        m = re.match(rb"refreshed tok; expires (\S+)\n$", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        self.assertEqual(epoch(m.group(1).decode()), epoch(self.stored()["keys"]["access_token"]["expires_at"]))
        self.assert_expires_about(self.stored(), ACCESS_TTL, t0, t1)

    def test_fresh_refresher_no_storm(self):
        # was: the --fresh refresher found the credential due after every
        # refresh and made about 1,600 token requests in 3 seconds
        env = dict(self.env, HIVE_PRELOAD=HIVE_PRELOAD)
        # the hive-run under test may be an ASan build; the program inherits the preload
        asan = env.get("ASAN_OPTIONS", "")
        if "verify_asan_link_order" not in asan:
            env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "verify_asan_link_order=0"
        self.add_provider()
        for access_expires, requests in (("+3600s", 0), ("2020-01-01T00:00:00Z", 1)):
            with self.subTest(access_token=access_expires):
                self.add_oidc(access_expires=access_expires)
                admin("POST", "/test/reset")
                r = subprocess.run([HIVE_RUN, "--fresh", "-e", "T={{tok.access_token}}", "--", "sleep", "3"],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=env, timeout=TIMEOUT, cwd=self.tmp)
                self.check(r, 0)
                self.assertEqual(stats()["token_requests"], requests,
                                 "a 60 s access token beside an expired id_token, 3 s under --fresh")

    # --- issue 12: a refresh against add and delete --------------------------------

    def start_slow_refresh(self, cid="tok"):
        """hive-cred refresh cid, held inside its token request by the server."""
        admin("POST", "/test/delay?ms=3000")
        p = subprocess.Popen([HIVE_CRED, "refresh", cid], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=self.env, cwd=self.tmp)
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.communicate()))
        deadline = time.monotonic() + TIMEOUT
        while stats()["token_requests"] == 0:
            if p.poll() is not None or time.monotonic() > deadline:
                out, err = p.communicate(timeout=TIMEOUT)
                self.fail("the refresh never reached the token endpoint: %r %r" % (out, err))
            time.sleep(0.02)
        return p

    def test_add_during_a_refresh_is_kept(self):
        self.add_provider()
        self.add_token(refresh=mint(), expires="+3600s")
        p = self.start_slow_refresh()
        self.check(self.cred("add", "tok", "--type", "oauth2", "--provider-id", "idp", "--auto-refresh",
                             "--expires", "access_token=+7200s",
                             stdin="access_token=from-add\nrefresh_token=rt-from-add\n"), 0)
        out, err = p.communicate(timeout=TIMEOUT)
        self.assertEqual(p.returncode, 0, "the refresh: %r %r" % (out, err))
        c = self.stored()
        self.assertEqual((self.value(c, "access_token"), self.value(c, "refresh_token")),
                         ("from-add", "rt-from-add"), "the refresh saved over what add saved")
        r = self.check(self.hive_run("-e", "T={{tok.access_token}}", "--", "sh", "-c", 'printf %s "$T"'), 0)
        self.assertEqual(r.stdout, b"from-add")
        self.assertEqual(stats()["token_requests"], 1)

    def test_delete_during_a_refresh_stays_deleted(self):
        self.add_provider()
        self.add_token(refresh=mint(), expires="+3600s")
        p = self.start_slow_refresh()
        self.check(self.cred("delete", "tok"), 0)
        out, err = p.communicate(timeout=TIMEOUT)
        self.assertEqual(p.returncode, 0, "the refresh: %r %r" % (out, err))
        self.assertFalse(os.path.exists(os.path.join(self.store, "credentials", "tok.enc")),
                         "the refresh brought a deleted credential back")
        self.check(self.cred("get", "tok", "access_token"), 3)
        self.assertNotIn("tok", self.check(self.cred("list"), 0).stdout.decode().split())

    def test_writer_that_takes_no_lock_is_not_overwritten(self):
        # Hive itself writes the .enc file without hive's lock: the refresh
        # reads the credential again before saving and keeps what it finds
        self.add_provider()
        self.add_token(refresh=mint(), expires="+3600s")
        path = os.path.join(self.store, "credentials", "tok.enc")
        doc = self.stored()
        doc["keys"]["access_token"]["value"] = "written-by-hive"
        p = self.start_slow_refresh()
        tmp = path + ".hive"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(self.fernet.encrypt(json.dumps(doc).encode()))
        os.rename(tmp, path)
        out, err = p.communicate(timeout=TIMEOUT)
        self.assertEqual(p.returncode, 6, "the refresh: %r %r" % (out, err))
        self.assertIn(b"Credential 'tok' was changed by another writer while it was being refreshed", err)
        self.assertEqual(self.value(self.stored(), "access_token"), "written-by-hive")
        # and a file removed behind hive's back stays removed
        self.add_token(refresh=mint(), expires="+3600s")
        admin("POST", "/test/reset")
        p = self.start_slow_refresh()
        os.remove(path)
        out, err = p.communicate(timeout=TIMEOUT)
        self.assertEqual(p.returncode, 3, "the refresh: %r %r" % (out, err))
        self.assertIn(b"Credential 'tok' was deleted while it was being refreshed", err)
        self.assertFalse(os.path.exists(path), "the refresh brought a deleted credential back")

    # --- issue 12: what the server says is printed with the secrets taken out --------

    def test_server_text_never_shows_what_the_request_carried(self):
        rt = "rt/with+odd=chars&-" + os.urandom(8).hex()
        form = urllib.parse.quote_plus
        header = BASIC_HEADER.split()[1]
        for method in ("client_secret_post", "client_secret_basic"):
            with self.subTest(auth_method=method):
                self.add_provider(url=fail_url("/reflect"), client_id=BASIC_ID, secret=BASIC_SECRET,
                                  auth_method=method)
                self.add_token(refresh=rt, expires="+100s")
                r, _, _, _ = self.refresh()
                self.assert_refresh_fails(r)
                # launched: the failed refresh is a warning
                w = self.check(self.hive_run("-e", "T={{tok.access_token}}", "--", "sh", "-c",
                                             'printf %s "$T"'), 0)
                self.assertEqual(w.stdout, b"old")
                for out in (r.stderr, w.stderr):
                    self.assertIn(b"Failed to refresh credential 'tok': HTTP 400: invalid_request", out)
                    self.assertIn(b"cannot use client ", out)
                    for secret in (BASIC_SECRET, form(BASIC_SECRET), rt, form(rt), header, "s3cr3t"):
                        self.assertNotIn(secret.encode(), out, "%s on stderr" % secret)
                    for bad in (b"\x1b", b"\\x1b", b"\r", b"\\x0d"):
                        self.assertNotIn(bad, out)
                    for line in out.decode("utf-8", "replace").splitlines():
                        self.assertFalse(line.startswith("hive-cred: error: forged"), out)

    # --- 11: plain http only to loopback ---------------------------------------

    def test_plain_http_non_loopback_refused(self):
        # Any network attempt would go through this proxy, the fail server,
        # which counts it.
        env = dict(self.env, http_proxy=fail_url(""), HTTPS_PROXY=fail_url(""), ALL_PROXY=fail_url(""))
        for url in ["http://example.com/token", "http://127.0.0.1@example.com/token",
                    "http://10.255.255.1/token"]:
            with self.subTest(url=url):
                self.add_provider(url=url)
                self.add_token(refresh=mint())
                before = self.snapshot()
                r, took, _, _ = self.refresh(env=env)
                self.assert_refresh_fails(r)
                self.assertIn(b"https", r.stderr)
                self.assertLess(took, 3, "looks like a network attempt")
                self.assertEqual(fail_stats(), {}, "a request went out")
                self.assertEqual(self.snapshot(), before)
        self.assertEqual(stats()["token_requests"], 0)


def main():
    hivetest.main(binaries=["hive-run", "hive-cred"], prerequisite=missing_prerequisite)


if __name__ == "__main__":
    main()
