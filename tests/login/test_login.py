#!/usr/bin/env python3
"""hive-cred login and revoke, against a real authorization server and a
real browser.

Run:  python3 tests/login/test_login.py [unittest options]

The server is tests/oauth/server.js (oidc-provider with its device flow,
revocation, introspection and development login/consent pages on, plus
fake device endpoints for slow_down, expiry and denial: see
tests/oauth/README.md). The user is a headless Chromium (Debian's
`chromium`, scripts/setup) driven by playwright-core (tests/oauth's npm
packages) through tests/login/browser.mjs: it opens the address hive-cred
prints, signs in and consents on the server's own pages. Without node,
the packages or Chromium the suite cannot run, and fails saying why.

Environment: HIVE_CRED (as tests/oauth), CHROMIUM (default
/usr/bin/chromium).
"""

import fcntl
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
import urllib.parse
from pathlib import Path

from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO / "tests" / "lib"))
import hivetest  # noqa: E402  (tests/lib/hivetest.py)

HIVE_CRED = hivetest.HIVE_CRED
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
TIMEOUT = hivetest.scaled(60)
ACCESS_TTL = hivetest.scaled_int(120)

LOGIN_ID, LOGIN_SECRET = "hive-login", "login-s3cret/+%"
PUBLIC_ID = "hive-public"
INVALID_GRANT_MSG = "Refresh token for '%s' is invalid or revoked. Re-authorization required."
EXIT_NOT_FOUND, EXIT_USAGE, EXIT_REFRESH = 3, 2, 7

SERVER = {}
_server = None   # the server, for the whole run (LoginTest.setUpClass)


def missing_prerequisite():
    why = hivetest.missing_oauth_server()
    if why:
        return why
    if not (REPO / "tests" / "oauth" / "node_modules" / "playwright-core").is_dir():
        return "playwright-core is missing: run 'npm ci --prefix tests/oauth'"
    if not os.access(CHROMIUM, os.X_OK):
        return "no Chromium at %s: apt-get install chromium (scripts/setup), or set CHROMIUM" % CHROMIUM
    return None


def http_url(path):
    return "http://127.0.0.1:%d%s" % (SERVER["http"], path)


def fail_url(path):
    return "http://127.0.0.1:%d%s" % (SERVER["fail"], path)


def introspect(token, client=LOGIN_ID, secret=LOGIN_SECRET):
    status, body = _server.request("POST", "/token/introspection",
                                   {"token": token, "client_id": client, "client_secret": secret})
    assert status == 200, (status, body)
    return body


def browser(*args):
    """browser.mjs with args: the final page {"url", "text"}."""
    r = subprocess.run(["node", str(HERE / "browser.mjs"), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=hivetest.scaled(90), env=dict(hivetest.clean_env(), CHROMIUM=CHROMIUM))
    if r.returncode != 0:
        raise AssertionError("browser.mjs failed (%d): %s" % (r.returncode, r.stderr.decode(errors="replace")[-3000:]))
    return json.loads(r.stdout)


class Login:
    """A hive-cred login running in the background; its stderr read as it comes."""

    def __init__(self, test, *args):
        self.proc = subprocess.Popen([HIVE_CRED, "login", *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=test.env, cwd=test.tmp)
        test.addCleanup(hivetest.reap, self.proc)
        self.lines = []
        self.fields = {}
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            m = re.match(r"^(authorization_url|verification_uri|user_code|verification_uri_complete): (.*)$", line)
            if m:
                self.fields[m.group(1)] = m.group(2)
            if "authorization_url" in self.fields or "user_code" in self.fields:
                self.ready.set()
        self.ready.set()

    def wait_prompt(self):
        if not self.ready.wait(TIMEOUT):
            raise AssertionError("no prompt from hive-cred login")
        time.sleep(0.2)   # the lines after the first field
        return self.fields

    def finish(self):
        self.proc.wait(TIMEOUT)
        out = self.proc.stdout.read()
        self.reader.join(TIMEOUT)
        return self.proc.returncode, out.decode(), "\n".join(self.lines)


class LoginTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        global _server
        why = missing_prerequisite()
        if why:
            raise RuntimeError("cannot run: " + why)
        tmp = tempfile.mkdtemp(prefix="hive-login-test-")
        cls.addClassCleanup(shutil.rmtree, tmp, ignore_errors=True)
        _server = hivetest.start_oauth_server(tmp, ACCESS_TTL)
        cls.addClassCleanup(_server.close)
        SERVER.update(_server.ports)

    def setUp(self):
        self.tmp = hivetest.temp_dir(self, "hive-login-")
        self.home = os.path.join(self.tmp, "home")
        self.store = os.path.join(self.home, "credentials")
        self.env = hivetest.clean_env(self.home)
        self.env.pop("DISPLAY", None)           # no browser of the user's is opened
        self.env.pop("WAYLAND_DISPLAY", None)
        self.check(self.cred("init"), 0)
        with open(os.path.join(self.home, "secrets", "credential_key"), "rb") as f:
            self.fernet = Fernet(f.read().strip())
        _server.admin("POST", "/test/reset")
        self.assertEqual(_server.request("POST", "/test/reset", port=SERVER["fail"])[0], 200)

    def cred(self, *args, stdin=b""):
        return hivetest.run([HIVE_CRED, *args], self.env, stdin=stdin, timeout=TIMEOUT, cwd=self.tmp)

    def check(self, r, code):
        self.assertEqual(r.returncode, code, "%r: exit %d, expected %d\nstdout: %r\nstderr: %r"
                         % (r.args[1:], r.returncode, code, r.stdout[:2000], r.stderr[:3000]))
        return r

    def add_provider(self, pid="idp", client_id=LOGIN_ID, secret=LOGIN_SECRET, **extra):
        keys = {"token_url": http_url("/token"), "client_id": client_id}
        if secret is not None:
            keys["client_secret"] = secret
        keys.update(extra)
        self.check(self.cred("add", pid, "--type", "custom",
                             stdin="".join("%s=%s\n" % kv for kv in keys.items())), 0)

    def stored(self, cid="tok"):
        path = os.path.join(self.store, "credentials", cid + ".enc")
        if not os.path.exists(path):
            return None
        with open(path, "rb") as f:
            return json.loads(self.fernet.decrypt(f.read().strip()))

    def value(self, cred, key):
        k = cred["keys"].get(key)
        return None if k is None else k["value"]

    def raw(self, cid="tok"):
        """The credential's file, as it is on disk."""
        with open(os.path.join(self.store, "credentials", cid + ".enc"), "rb") as f:
            return f.read()

    def assert_no_secret(self, text, *secrets):
        for s in (LOGIN_SECRET, urllib.parse.quote(LOGIN_SECRET, safe=""), *secrets):
            if s:
                self.assertNotIn(s, text)

    def audited(self, event, *secrets):
        """The audit log's records of event (each checked to hold none of secrets)."""
        with open(os.path.join(self.home, "audit.log"), encoding="utf-8") as f:
            text = f.read()
        self.assert_no_secret(text, *secrets)
        return [r for r in map(json.loads, text.splitlines()) if r["event"] == event]

    def browser_login(self, *args, cancel=False):
        """hive-cred login ... driven by Chromium: (exit, stdout, stderr, query of the login address)."""
        login = Login(self, *args)
        fields = login.wait_prompt()
        self.assertIn("authorization_url", fields, "\n".join(login.lines))
        page = browser("--url", fields["authorization_url"], *(["--cancel"] if cancel else []))
        code, out, err = login.finish()
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(fields["authorization_url"]).query)
        return code, out, err, query, page

    # --- the browser login ------------------------------------------------

    def test_browser_login_creates_the_credential_from_discovery(self):
        self.add_provider(issuer=http_url(""), scope="openid api:read")
        code, out, err, q, page = self.browser_login("tok", "--provider-id", "idp", "--no-browser",
                                                     "--scope", "api:write", "--scope", "api:read openid")
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"^logged in tok; expires \S+Z; refresh token saved\n$")
        self.assertIn("Logged in", page["text"])
        # the request: PKCE S256, a loopback redirect on an ephemeral port, state, the scopes once each
        self.assertEqual(q["response_type"], ["code"])
        self.assertEqual(q["client_id"], [LOGIN_ID])
        self.assertEqual(q["code_challenge_method"], ["S256"])
        self.assertRegex(q["code_challenge"][0], r"^[A-Za-z0-9_-]{43}$")
        self.assertRegex(q["state"][0], r"^[A-Za-z0-9_-]{22}$")
        self.assertEqual(q["scope"], ["openid api:read api:write"])
        redirect = urllib.parse.urlsplit(q["redirect_uri"][0])
        self.assertEqual((redirect.scheme, redirect.hostname, redirect.path), ("http", "127.0.0.1", "/callback"))
        self.assertNotIn("code_verifier", q)
        # the port is closed once the one answer came
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", redirect.port), timeout=5).close()
        # saved as a refresh saves: tokens, expiry, auto refresh on
        c = self.stored()
        self.assertEqual((c["credential_type"], c["provider_id"], c["auto_refresh"]), ("oauth2", "idp", True))
        self.assertTrue(c["last_refreshed"])
        self.assertTrue(c["keys"]["access_token"]["expires_at"])
        access, refresh = self.value(c, "access_token"), self.value(c, "refresh_token")
        info = introspect(access)
        self.assertTrue(info["active"], info)
        self.assertEqual(set(info["scope"].split()), {"openid", "api:read", "api:write"})
        self.assert_no_secret(out + err, access, refresh)
        # and the refresh token works
        r = self.check(self.cred("refresh", "tok"), 0)
        self.assertIn(b"refreshed tok", r.stdout)

    def test_browser_login_into_an_existing_credential_keeps_the_rest(self):
        # a public client (PKCE alone), the endpoint as a key of its own, no issuer
        self.add_provider(client_id=PUBLIC_ID, secret=None, authorization_endpoint=http_url("/auth"))
        self.check(self.cred("add", "tok", "--type", "oauth2", "--provider-id", "idp", "-d", "mine",
                             "--tag", "t1", stdin="account=alice\nrefresh_token=stale-from-before\n"), 0)
        code, out, err, q, _ = self.browser_login("tok", "--no-browser", "--scope", "api:read")
        self.assertEqual(code, 0, err)
        self.assertEqual(q["scope"], ["api:read"])
        c = self.stored()
        self.assertEqual((c["description"], c["tags"], c["auto_refresh"]), ("mine", ["t1"], True))
        self.assertEqual(self.value(c, "account"), "alice")
        self.assertNotEqual(self.value(c, "refresh_token"), "stale-from-before")
        self.check(self.cred("refresh", "tok"), 0)

    def fake_xdg_open(self):
        """An xdg-open first on PATH that notes its arguments and is the user: Chromium at that address."""
        bindir = os.path.join(self.tmp, "bin")
        os.mkdir(bindir)
        log = os.path.join(self.tmp, "xdg-open.log")
        with open(os.path.join(bindir, "xdg-open"), "w") as f:
            f.write('#!/bin/sh\nprintf "%%s\\n" "$@" > "%s"\nenv > "%s.env"\nexec node "%s" --url "$1" > "%s.page"\n'
                    % (log, log, HERE / "browser.mjs", log))
        os.chmod(os.path.join(bindir, "xdg-open"), 0o755)
        self.env["PATH"] = bindir + os.pathsep + self.env["PATH"]
        self.env["CHROMIUM"] = CHROMIUM
        return log

    def test_with_a_display_the_browser_is_opened(self):
        self.add_provider(issuer=http_url(""), scope="api:read")
        log = self.fake_xdg_open()
        self.env["DISPLAY"] = ":99"
        # the store's key and the remotes' secrets never reach the browser, which outlives hive-cred
        with open(os.path.join(self.home, "secrets", "credential_key")) as f:
            self.env["HIVE_CREDENTIAL_KEY"] = f.read().strip()
        self.env["ADEN_API_KEY"] = "aden-secret-for-the-test"
        r = self.check(hivetest.run([HIVE_CRED, "login", "tok", "--provider-id", "idp", "--timeout", "60"], self.env,
                                    timeout=hivetest.scaled(120), cwd=self.tmp), 0)
        err = r.stderr.decode()
        url = re.search(r"^authorization_url: (.*)$", err, re.M).group(1)
        self.assertIn("the login page is opening in your browser", err)
        with open(log) as f:
            self.assertEqual(f.read(), url + "\n")   # one argument: the address
        with open(log + ".env") as f:
            seen_env = f.read()
        self.assertNotIn(self.env["HIVE_CREDENTIAL_KEY"], seen_env)
        self.assertNotIn("aden-secret-for-the-test", seen_env)
        self.assertIn("DISPLAY=:99", seen_env)
        # the browser writes what it saw once the page loaded: maybe after hive-cred has exited
        deadline = time.monotonic() + TIMEOUT
        while True:
            with open(log + ".page") as f:
                seen = f.read()
            if seen.endswith("\n"):
                break
            self.assertLess(time.monotonic(), deadline, "the browser never said what it saw")
            time.sleep(0.1)
        self.assertIn("Logged in", json.loads(seen)["text"])
        self.assertTrue(self.value(self.stored(), "refresh_token"))

    def test_no_browser_or_no_display_opens_none(self):
        self.add_provider(authorization_endpoint=http_url("/auth"))
        log = self.fake_xdg_open()
        for display, extra in [(":99", ["--no-browser"]), (None, [])]:
            with self.subTest(display=display, extra=extra):
                if display:
                    self.env["DISPLAY"] = display
                else:
                    self.env.pop("DISPLAY", None)
                r = self.check(self.cred("login", "tok", "--provider-id", "idp", "--timeout", "1", *extra),
                               EXIT_REFRESH)
                self.assertIn(b"to log in, open authorization_url in a browser", r.stderr)
                self.assertFalse(os.path.exists(log))

    def test_browser_cancel_is_reported_and_saves_nothing(self):
        self.add_provider(issuer=http_url("/"))
        code, out, err, _, page = self.browser_login("tok", "--provider-id", "idp", "--no-browser", cancel=True)
        self.assertEqual(code, EXIT_REFRESH, err)
        self.assertIn("hive-cred: error: Failed to log in for credential 'tok': the authorization server "
                      "answered access_denied", err)
        self.assertIn("Login failed", page["text"])
        self.assertEqual(out, "")
        self.assertIsNone(self.stored())

    def test_loopback_refuses_all_but_the_redirect_without_echoing_it(self):
        self.add_provider(issuer=http_url(""), scope="api:read")   # oidc-provider denies a login of no scope
        login = Login(self, "tok", "--provider-id", "idp", "--no-browser")
        url = login.wait_prompt()["authorization_url"]
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        port = urllib.parse.urlsplit(q["redirect_uri"][0]).port
        state = q["state"][0]
        probes = [
            (b"GET /other?code=probe-code-1&state=" + state.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"404"),
            (b"GET /callback?code=probe-code-2&state=wrong-state HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
            (b"GET /callback?code=probe-code-3 HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
            (b"GET /callbackx?code=probe-code-4&state=" + state.encode() + b" HTTP/1.1\r\n\r\n", b"404"),
            (b"POST /callback?code=probe-code-5&state=" + state.encode() + b" HTTP/1.1\r\n\r\n", b"405"),
            (b"\x16\x03\x01 not http\r\n\r\n", b"405"),
        ]
        for request, status in probes:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(request)
                answer = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
            self.assertTrue(answer.startswith(b"HTTP/1.1 " + status), (request, answer[:200]))
            self.assertNotIn(b"probe-code", answer)
            self.assertNotIn(state.encode(), answer)
        # still waiting for the real one
        page = browser("--url", url)
        code, out, err = login.finish()
        self.assertEqual(code, 0, err)
        self.assertIn("Logged in", page["text"])
        self.assertNotIn("probe-code", json.dumps(self.stored()))

    def test_login_time_limit(self):
        self.add_provider(authorization_endpoint=http_url("/auth"))
        login = Login(self, "tok", "--provider-id", "idp", "--timeout", "2")
        url = login.wait_prompt()["authorization_url"]
        port = urllib.parse.urlsplit(urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["redirect_uri"][0]).port
        code, out, err = login.finish()
        self.assertEqual(code, EXIT_REFRESH, err)
        self.assertIn("Failed to log in for credential 'tok': no login came back from the browser within 2 s", err)
        self.assertIn("waiting 2 s", err)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        self.assertIsNone(self.stored())

    # --- the device login -------------------------------------------------

    def test_device_login(self):
        self.add_provider(issuer=http_url(""), scope="openid api:read")
        login = Login(self, "tok", "--device", "--provider-id", "idp")
        fields = login.wait_prompt()
        self.assertEqual(fields["verification_uri"], http_url("/device"))
        self.assertRegex(fields["user_code"], r"^[A-Z]{4}-[A-Z]{4}$")
        self.assertEqual(fields["verification_uri_complete"], http_url("/device?user_code=" + fields["user_code"]))
        page = browser("--device", fields["verification_uri"], "--code", fields["user_code"])
        self.assertIn("Sign-in Success", page["text"])
        code, out, err = login.finish()
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"^logged in tok; expires \S+Z; refresh token saved\n$")
        c = self.stored()
        self.assertTrue(c["auto_refresh"])
        info = introspect(self.value(c, "access_token"))
        self.assertTrue(info["active"], info)
        self.assertEqual(set(info["scope"].split()), {"openid", "api:read"})
        self.assert_no_secret(out + err, self.value(c, "access_token"), self.value(c, "refresh_token"))
        self.check(self.cred("refresh", "tok"), 0)

    def test_login_asks_for_the_usage_specs_scopes_and_records_the_grant(self):
        # the provider asks for openid only; a usage spec naming tok needs api:read
        self.add_provider(issuer=http_url(""), scope="openid")
        self.check(self.cred("add", "tok", "-t", "oauth2", "--provider-id", "idp",
                             stdin=b"access_token=none\n"), 0)
        self.check(self.cred("usage", "add", "tok", "--scope", "api:read", "--env", "T={{tok}}"), 0)
        r = self.cred("validate", "tok")
        self.assertIn(b"has no record of its token's scopes", r.stdout + r.stderr)
        login = Login(self, "tok", "--device")
        fields = login.wait_prompt()
        page = browser("--device", fields["verification_uri"], "--code", fields["user_code"])
        self.assertIn("Sign-in Success", page["text"])
        code, out, err = login.finish()
        self.assertEqual(code, 0, err)
        c = self.stored()
        info = introspect(self.value(c, "access_token"))
        self.assertEqual(set(info["scope"].split()), {"openid", "api:read"})
        # the grant is recorded where the scope check reads it
        self.assertEqual(set(self.value(c, "scope").split()), {"openid", "api:read"})
        r = self.check(self.cred("validate", "tok"), 0)
        self.assertNotIn(b"scope", r.stdout + r.stderr)

    def device_provider(self, mode):
        self.add_provider(token_url=fail_url("/device/token"),
                          device_authorization_endpoint=fail_url("/device/code?mode=" + mode))

    def test_device_slow_down_adds_five_seconds(self):
        self.device_provider("slow")
        r = self.check(self.cred("login", "tok", "--device", "--provider-id", "idp"), 0)
        err = r.stderr.decode()
        self.assertIn("\nverification_uri: https://example.test/device\nuser_code: WDJB-MJHT\n", err)
        self.assertNotIn("verification_uri_complete", err)
        # the server answers a token only to a poll that waited 1 + 5 s after its slow_down
        self.assertEqual(_server.request("GET", "/test/stats", port=SERVER["fail"])[1]["by_path"]["/device/token"], 2)
        c = self.stored()
        self.assertEqual(self.value(c, "refresh_token"), "device-refresh-1")
        # recorded: the keys saved, by name only
        [rec] = self.audited("login", self.value(c, "access_token"), "device-refresh-1")
        self.assertEqual((rec["tool"], rec["command"], rec["id"], rec["ok"]), ("hive-cred", "login", "tok", True))
        self.assertEqual(rec["keys"], ["access_token", "refresh_token", "scope"])

    def test_login_saves_under_the_refresh_lock(self):
        # the lock a refresh of tok holds (.refresh/tok.lock): the login gets its tokens, then waits
        self.device_provider("slow")
        self.check(self.cred("add", "tok", "--type", "oauth2", "--provider-id", "idp", stdin="account=alice\n"), 0)
        os.makedirs(os.path.join(self.store, ".refresh"), mode=0o700, exist_ok=True)
        lock = os.open(os.path.join(self.store, ".refresh", "tok.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        self.addCleanup(os.close, lock)
        fcntl.flock(lock, fcntl.LOCK_EX)
        login = Login(self, "tok", "--device")
        deadline = time.monotonic() + TIMEOUT
        while _server.request("GET", "/test/stats", port=SERVER["fail"])[1]["by_path"].get("/device/token", 0) < 2:
            self.assertLess(time.monotonic(), deadline, "no token request")
            self.assertIsNone(login.proc.poll(), "\n".join(login.lines))
            time.sleep(0.2)
        time.sleep(1)
        self.assertIsNone(login.proc.poll(), "did not wait for the lock")
        self.assertNotIn("access_token", self.stored()["keys"])
        fcntl.flock(lock, fcntl.LOCK_UN)
        code, out, err = login.finish()
        self.assertEqual(code, 0, err)
        c = self.stored()
        self.assertEqual((self.value(c, "refresh_token"), self.value(c, "account")), ("device-refresh-1", "alice"))

    def test_device_code_expiry_stops_the_wait(self):
        self.device_provider("expire")
        r = self.check(self.cred("login", "tok", "--device", "--provider-id", "idp"), EXIT_REFRESH)
        self.assertIn(b"Failed to log in for credential 'tok': the device code expired before the login was "
                      b"completed (the user had 3 s to enter it)", r.stderr)
        self.assertIsNone(self.stored())

    def test_device_denied(self):
        self.device_provider("deny")
        r = self.check(self.cred("login", "tok", "--device", "--provider-id", "idp"), EXIT_REFRESH)
        self.assertIn(b"the user denied the request (access_denied)", r.stderr)
        self.assertIsNone(self.stored())
        [rec] = self.audited("login")
        self.assertEqual((rec["id"], rec["ok"], rec["keys"]), ("tok", False, []))
        self.assertIn("the user denied the request (access_denied)", rec["error"])

    def test_a_server_quoting_the_request_gets_no_secret_out(self):
        self.add_provider(device_authorization_endpoint=fail_url("/reflect"))
        r = self.check(self.cred("login", "tok", "--device", "--provider-id", "idp"), EXIT_REFRESH)
        err = r.stderr.decode()
        self.assertIn("the device authorization endpoint answered HTTP 400: invalid_request?[31m", err)
        self.assertIn("[redacted]", err)
        self.assert_no_secret(err)
        self.assertNotIn("\x1b", err)
        self.assertEqual([line for line in err.splitlines() if line.startswith("hive-cred: error:")],
                         [err.splitlines()[0]], "a forged line")

    # --- bad input -------------------------------------------------------------

    def test_login_refusals(self):
        r = self.check(self.cred("login", "nope"), EXIT_NOT_FOUND)
        self.assertIn(b"Credential 'nope' not found", r.stderr)
        self.assertIn(b"--provider-id P creates it", r.stderr)
        self.check(self.cred("add", "key", stdin="api_key=k\n"), 0)
        r = self.check(self.cred("login", "key"), EXIT_USAGE)
        self.assertIn(b"it has type api_key", r.stderr)
        self.add_provider()
        r = self.check(self.cred("login", "tok", "--provider-id", "idp"), EXIT_REFRESH)
        self.assertIn(b"provider 'idp' has no authorization_endpoint: add the key authorization_endpoint", r.stderr)
        r = self.check(self.cred("login", "tok", "--device", "--provider-id", "idp"), EXIT_REFRESH)
        self.assertIn(b"has no device_authorization_endpoint", r.stderr)
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()
        self.check(self.cred("add", "idp2", "--type", "custom", stdin="token_url=%s\nclient_id=%s\n"
                             "device_authorization_endpoint=http://127.0.0.1:%d/device\n"
                             % (http_url("/token"), PUBLIC_ID, port)), 0)
        r = self.check(self.cred("login", "tok", "--device", "--provider-id", "idp2"), EXIT_REFRESH)
        self.assertIn(b"Failed to log in for credential 'tok': the device authorization endpoint did not answer",
                      r.stderr)
        self.check(self.cred("login", "tok", "--device", "--no-browser"), EXIT_USAGE)
        self.check(self.cred("login", "tok", "--timeout", "0"), EXIT_USAGE)
        self.check(self.cred("refresh", "tok", "--scope", "x"), EXIT_USAGE)
        self.check(self.cred("show", "tok", "--device"), EXIT_USAGE)
        for order in (["--tag", "t", "--provider-id", "idp"], ["--provider-id", "idp", "--tag", "t"]):
            r = self.check(self.cred("login", "tok", *order), EXIT_USAGE)
            self.assertIn(b"option --tag applies to 'add' only", r.stderr)
        r = self.check(self.cred("get", "tok", "--provider-id", "idp"), EXIT_USAGE)
        self.assertIn(b"option --provider-id applies to 'add' and 'login' only", r.stderr)
        self.assertIsNone(self.stored())

    # --- revoke -------------------------------------------------------------------

    def minted(self, cid="tok", **provider):
        """A credential with a real grant of hive-login: refresh token minted, access token refreshed."""
        self.add_provider(**provider)
        rt = _server.mint(LOGIN_ID)
        self.check(self.cred("add", cid, "--type", "oauth2", "--provider-id", "idp", "--auto-refresh",
                             "-d", "kept", stdin="refresh_token=%s\naccount=alice\n" % rt), 0)
        self.check(self.cred("refresh", cid), 0)
        c = self.stored(cid)
        return self.value(c, "access_token"), self.value(c, "refresh_token")

    def test_revoke(self):
        access, refresh = self.minted(issuer=http_url(""))
        self.assertTrue(introspect(access)["active"])
        self.assertTrue(introspect(refresh)["active"])
        # another copy of the grant (another machine's store)
        self.check(self.cred("add", "copy", "--type", "oauth2", "--provider-id", "idp",
                             stdin="refresh_token=%s\n" % refresh), 0)
        r = self.check(self.cred("revoke", "tok"), 0)
        self.assertEqual(r.stdout, b"revoked 2 tokens of tok and removed them\n")
        self.assert_no_secret((r.stdout + r.stderr).decode(), access, refresh)
        [rec] = self.audited("revoke", access, refresh)
        self.assertEqual((rec["tool"], rec["command"], rec["id"], rec["ok"]), ("hive-cred", "revoke", "tok", True))
        self.assertEqual(rec["keys"], ["access_token", "refresh_token"])
        self.assertFalse(introspect(access)["active"])
        self.assertFalse(introspect(refresh)["active"])
        c = self.stored()
        self.assertNotIn("access_token", c["keys"])
        self.assertNotIn("refresh_token", c["keys"])
        self.assertEqual((self.value(c, "account"), c["description"], c["auto_refresh"]), ("alice", "kept", False))
        r = self.check(self.cred("refresh", "copy"), EXIT_REFRESH)
        self.assertIn((INVALID_GRANT_MSG % "copy").encode(), r.stderr)
        self.check(self.cred("refresh", "tok"), EXIT_REFRESH)
        r = self.check(self.cred("revoke", "tok"), EXIT_NOT_FOUND)
        self.assertIn(b"Credential 'tok' holds no refresh_token or access_token to revoke", r.stderr)

    def test_revoke_without_an_endpoint_names_the_key(self):
        self.minted()
        before = self.raw()
        r = self.check(self.cred("revoke", "tok"), EXIT_REFRESH)
        self.assertIn(b"provider 'idp' has no revocation_endpoint: add the key revocation_endpoint to it", r.stderr)
        self.assertEqual(self.raw(), before)

    def test_revoke_server_error_keeps_the_tokens(self):
        access, refresh = self.minted(revocation_endpoint=fail_url("/500"))
        before = self.raw()
        r = self.check(self.cred("revoke", "tok"), EXIT_REFRESH)
        self.assertIn(b"Failed to revoke the tokens of credential 'tok': the revocation endpoint answered "
                      b"HTTP 500: server_error", r.stderr)
        self.assertEqual(self.raw(), before)
        self.assertTrue(introspect(refresh)["active"])
        [rec] = self.audited("revoke", access, refresh)
        self.assertEqual((rec["id"], rec["ok"], rec["keys"]), ("tok", False, []))
        self.assertIn("the revocation endpoint answered HTTP 500: server_error", rec["error"])

    def test_revoke_unknown_credential(self):
        r = self.check(self.cred("revoke", "nope"), EXIT_NOT_FOUND)
        self.assertIn(b"Credential 'nope' not found in store", r.stderr)


def main():
    hivetest.main(binaries=["hive-cred"], prerequisite=missing_prerequisite)


if __name__ == "__main__":
    main()
