#!/usr/bin/env python3
"""The credential helpers, each in its tool's own protocol, with the real
tools where they run here:

  git-credential-hive       git credential fill, and a clone and a push over
                            HTTP (git-http-backend) from a server demanding
                            Basic auth with the current token
  hive-cred exec-credential kubectl get --raw against an HTTPS endpoint that
                            checks the bearer token (v1 and v1beta1)
  hive-cred aws-credential-process  botocore (what the aws CLI runs) reading
                            credential_process from a profile
  docker-credential-hive    the docker-credential-helpers protocol's cases (no
                            Docker engine runs here)

The clone, the push and the kubectl run go across a refresh: the stored
OAuth2 token is due, its provider is the OAuth2 test server
(tests/oauth/server.js), and the endpoints accept only the token the store
holds after the refresh. The push comes after the clone, its token expired
again, so the helper refreshes a second time; git's store and erase calls
leave the store as it was.

Needs git (and git-http-backend), kubectl, openssl, botocore, node and
tests/oauth/node_modules; without one the suite fails saying why.

Environment: HIVE_CRED, GIT_CREDENTIAL_HIVE, DOCKER_CREDENTIAL_HIVE (the
binaries; defaults: <repo>/build/launcher/...).
"""

import base64
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lib"))
import hivetest  # noqa: E402  (tests/lib/hivetest.py)

HIVE_CRED = hivetest.HIVE_CRED
GIT_HELPER = hivetest.path_from_env("GIT_CREDENTIAL_HIVE", hivetest.BUILD / "launcher" / "git-credential-hive")
DOCKER_HELPER = hivetest.path_from_env("DOCKER_CREDENTIAL_HIVE",
                                       hivetest.BUILD / "launcher" / "docker-credential-hive")
HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"
TIMEOUT = hivetest.scaled(60)
ACCESS_TTL = hivetest.scaled_int(3600)
K8S = "client.authentication.k8s.io/"
# what the HTTPS endpoint answers kubectl (it asks /version before --raw)
ANSWERS = {"/api": {"kind": "APIVersions", "versions": ["v1"]},
           "/version": {"major": "1", "minor": "32", "gitVersion": "v1.32.0"}}

_server = None
_tmp = None


def missing_prerequisite():
    why = []
    for name, path, var in [("hive-cred", HIVE_CRED, "HIVE_CRED"), ("git-credential-hive", GIT_HELPER,
                            "GIT_CREDENTIAL_HIVE"), ("docker-credential-hive", DOCKER_HELPER,
                            "DOCKER_CREDENTIAL_HIVE")]:
        if not os.access(path, os.X_OK):
            why.append("%s not found at %s (set %s)" % (name, path, var))
    for tool, package in [("git", "git"), ("kubectl", "kubectl"), ("openssl", "openssl")]:
        if shutil.which(tool) is None:
            why.append("%s is not on PATH (Debian package %s)" % (tool, package))
    if not os.access(HTTP_BACKEND, os.X_OK):
        why.append("%s is missing (Debian package git)" % HTTP_BACKEND)
    try:
        import botocore.session  # noqa: F401
    except ImportError:
        why.append("botocore cannot be imported (Debian package python3-botocore)")
    oauth = hivetest.missing_oauth_server()
    if oauth:
        why.append(oauth)
    return "; ".join(why) or None


def setUpModule():
    global _server, _tmp
    _tmp = tempfile.mkdtemp(prefix="hive-helpers-test-")
    try:
        _server = hivetest.start_oauth_server(_tmp, ACCESS_TTL)
    except BaseException:
        tearDownModule()
        raise


def tearDownModule():
    if _server is not None:
        _server.close()
    if _tmp:
        shutil.rmtree(_tmp, ignore_errors=True)


def kubectl_exec_versions():
    """The exec plugin apiVersions the kubectl here speaks: v1beta1, and v1
    from kubectl 1.22 on (Debian bookworm's kubernetes-client is 1.20; the
    v1 answer's shape is checked without kubectl in test_exec_credential_json)."""
    out = subprocess.run(["kubectl", "version", "--client", "-o", "json"], stdout=subprocess.PIPE,
                         timeout=TIMEOUT, check=True).stdout
    v = json.loads(out)["clientVersion"]
    minor = int("".join(c for c in v["minor"] if c.isdigit()))
    return ["v1beta1"] + (["v1"] if (int(v["major"]), minor) >= (1, 22) else [])


class Endpoint:
    """A local HTTP(S) server in a thread; handler(request) answers."""

    def __init__(self, handler_class, context=None):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
        if context is not None:
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


class HelperTest(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.tmp = hivetest.temp_dir(self, "hive-helpers-")
        self.home = os.path.join(self.tmp, "home")
        self.env = hivetest.clean_env(self.home, HOME=self.tmp, GIT_CONFIG_NOSYSTEM="1",
                                      GIT_TERMINAL_PROMPT="0")
        self.env.pop("KUBERNETES_EXEC_INFO", None)
        self.check(self.run_(HIVE_CRED, "init"), 0)

    # --- helpers -------------------------------------------------------

    def run_(self, *argv, stdin=b"", env=None):
        return hivetest.run(argv, env or self.env, stdin=stdin, timeout=TIMEOUT, cwd=self.tmp)

    def check(self, r, code):
        self.assertEqual(r.returncode, code, "%s: exit %d, expected %d\nstdout: %r\nstderr: %r"
                         % (" ".join(map(str, r.args))[:300], r.returncode, code, r.stdout[:2000],
                            r.stderr[:3000]))
        return r

    def add(self, cid, keys, *opts):
        text = "".join("%s=%s\n" % kv for kv in keys.items())
        self.check(self.run_(HIVE_CRED, "add", cid, *opts, stdin=text), 0)

    def stored(self, cid, key):
        return self.check(self.run_(HIVE_CRED, "get", cid, key), 0).stdout.decode().rstrip("\n")

    def add_due_token(self, cid="tok", **extra):
        """An OAuth2 token due for refresh, its provider the test server."""
        self.add("idp", {"token_url": _server.token_url, "client_id": _server.POST_ID,
                         "client_secret": _server.POST_SECRET}, "--type", "custom")
        keys = {"access_token": "old-access", "refresh_token": _server.mint()}
        keys.update(extra)
        self.add(cid, keys, "--type", "oauth2", "--provider-id", "idp", "--auto-refresh",
                 "--expires", "access_token=+10s")

    def assert_refreshed(self, cid="tok"):
        token = self.stored(cid, "access_token")
        self.assertNotEqual(token, "old-access", "the helper did not refresh")
        return token

    def assert_error(self, r, code, words, secrets=()):
        self.check(r, code)
        err = r.stderr.decode()
        self.assertIn("error:", err)
        for w in words:
            self.assertIn(w, err)
        for s in secrets:
            self.assertNotIn(s, err)
            self.assertNotIn(s, r.stdout.decode())

    def git(self, *args, cwd=None):
        return hivetest.run(["git", *args], self.env, timeout=TIMEOUT, cwd=cwd or self.tmp)

    def test_a_failed_refresh_is_an_error_never_a_stale_token(self):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()    # nothing listens there now
        self.add("idp", {"token_url": "http://127.0.0.1:%d/token" % port, "client_id": "c",
                         "client_secret": "client-secret-x"}, "--type", "custom")
        self.add("tok", {"access_token": "stale-access", "refresh_token": "refresh-x", "username": "u",
                         "server_url": "reg.example.com", "aws_access_key_id": "AKID",
                         "aws_secret_access_key": "stale-sk"},
                 "--type", "oauth2", "--provider-id", "idp", "--auto-refresh", "--expires", "access_token=+10s")
        secrets = ["stale-access", "refresh-x", "client-secret-x", "stale-sk"]
        for r in (self.git_get("tok", "get"), self.run_(HIVE_CRED, "exec-credential", "tok"),
                  self.run_(HIVE_CRED, "aws-credential-process", "tok"), self.docker("get", "reg.example.com")):
            self.assert_error(r, 7, ["refresh", "'tok'"], secrets)
            self.assertEqual(r.stdout, b"")

    # --- git -----------------------------------------------------------

    def git_get(self, *args, stdin="protocol=https\nhost=github.com\npath=x/y.git\n\n"):
        return self.run_(GIT_HELPER, *args, stdin=stdin)

    def test_git_get(self):
        self.add("gh", {"token": "ghp-secret-1", "other": "o-secret"}, "--expires", "token=1900000000")
        r = self.check(self.git_get("gh", "get"), 0)
        self.assertEqual(r.stdout.decode(), "username=x-access-token\npassword=ghp-secret-1\n"
                         "password_expiry_utc=1900000000\n")
        self.assertEqual(r.stderr, b"")
        r = self.check(self.git_get("--key", "other", "--username", "bob", "gh", "get"), 0)
        self.assertEqual(r.stdout.decode(), "username=bob\npassword=o-secret\n")
        self.add("u", {"token": "t2", "username": "alice"})
        r = self.check(self.git_get("--username", "bob", "u", "get", stdin=""), 0)
        self.assertEqual(r.stdout.decode(), "username=alice\npassword=t2\n")

    def test_git_store_and_erase_change_nothing(self):
        self.add("gh", {"token": "ghp-secret-1"})
        before = self.stored("gh", "token")
        for action in ("store", "erase", "capability-of-the-future"):
            r = self.check(self.git_get("gh", action, stdin="protocol=https\nhost=h\nusername=u\n"
                                        "password=other\n\n"), 0)
            self.assertEqual((r.stdout, r.stderr), (b"", b""))
        self.assertEqual(self.stored("gh", "token"), before)

    def test_git_bad_input(self):
        self.check(self.run_(HIVE_CRED, "set", "gh", "token", stdin="line1\nline2-secret"), 0)
        self.assert_error(self.git_get("gh", "get"), 2, ["newline", "'gh'"], ["line2-secret", "line1"])
        self.assert_error(self.git_get("nope", "get"), 3, ["Credential 'nope' not found"])
        self.assert_error(self.git_get("--key", "missing", "gh", "get"), 3, ["Key 'missing'"])
        self.assert_error(self.git_get("gh", "get", stdin="protocol=https\nhost\n\n"), 2, ["key=value"])
        self.assert_error(self.git_get("gh", "get", stdin="host=a\0b\n\n"), 2, ["NUL"])
        self.check(self.git_get("gh"), 2)

    def test_git_credential_fill(self):
        self.add("gh", {"token": "ghp-fill-secret", "username": "octo"})
        r = hivetest.run(["git", "-c", "credential.helper=", "-c", "credential.helper=%s gh" % GIT_HELPER,
                          "credential", "fill"], self.env, stdin="protocol=https\nhost=github.com\n\n",
                         timeout=TIMEOUT, cwd=self.tmp)
        self.check(r, 0)
        self.assertEqual(r.stdout.decode(), "protocol=https\nhost=github.com\nusername=octo\n"
                         "password=ghp-fill-secret\n")

    def make_repo(self):
        root = os.path.join(self.tmp, "repos")
        work = os.path.join(self.tmp, "work")
        ident = ["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]
        self.check(self.git(*ident, "init", "-q", "--bare", os.path.join(root, "r.git")), 0)
        self.check(self.git(*ident, "init", "-q", work), 0)
        with open(os.path.join(work, "hello.txt"), "w") as f:
            f.write("hello over http\n")
        self.check(self.git(*ident, "add", "hello.txt", cwd=work), 0)
        self.check(self.git(*ident, "commit", "-q", "-m", "first", cwd=work), 0)
        self.check(self.git("push", "-q", os.path.join(root, "r.git"), "HEAD:main", cwd=work), 0)
        return root

    def git_http_server(self, cid, root):
        """git-http-backend serving root over HTTP, behind Basic auth that
        accepts only x-access-token with the access token cid holds now, once
        refreshed (never "old-access"). seen["ok"]: (method, path, token) of
        each request let through; seen["rejected"]: the 401s; seen["deny"]
        set: every request is refused."""
        test = self
        seen = {"ok": [], "rejected": 0, "deny": False}

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def token(self):
                auth = self.headers.get("Authorization", "")
                if seen["deny"] or not auth.startswith("Basic "):
                    return None
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                current = test.stored(cid, "access_token")   # a plain read: hive-cred get never refreshes
                ok = user == "x-access-token" and password == current and current != "old-access"
                return password if ok else None

            def serve(self):
                token = self.token()
                if token is None:
                    seen["rejected"] += 1
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="hive"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                seen["ok"].append((self.command, path, token))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                # REMOTE_USER: an authenticated user, for whom git-http-backend
                # enables receive-pack (http.receivepack stays unset)
                env = {"GIT_PROJECT_ROOT": root, "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path,
                       "QUERY_STRING": query, "REQUEST_METHOD": self.command, "REMOTE_USER": "x-access-token",
                       "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                       "CONTENT_LENGTH": str(len(body)), "PATH": os.environ.get("PATH", "")}
                if self.headers.get("Git-Protocol"):
                    env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
                out = subprocess.run([HTTP_BACKEND], input=body, env=env, stdout=subprocess.PIPE,
                                     timeout=TIMEOUT).stdout
                head, _, rest = out.partition(b"\r\n\r\n")
                status = 200
                headers = []
                for line in head.split(b"\r\n"):
                    k, _, v = line.decode().partition(":")
                    if k.lower() == "status":
                        status = int(v.split()[0])
                    elif k:
                        headers.append((k, v.strip()))
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(rest)))
                self.end_headers()
                self.wfile.write(rest)

            do_GET = do_POST = serve

        srv = Endpoint(Handler)
        self.addCleanup(srv.close)
        return "http://127.0.0.1:%d/r.git" % srv.port, seen

    def git_clone_over_http(self, cid):
        """A clone over HTTP through the helper serving cid, whose token is
        due: the helper refreshes it and the server takes only the new one."""
        self.add_due_token(cid)
        root = self.make_repo()
        url, seen = self.git_http_server(cid, root)
        dest = os.path.join(self.tmp, "clone")
        r = self.git("-c", "credential.helper=", "-c", "credential.helper=%s %s" % (GIT_HELPER, cid), "clone", "-q",
                     url, dest)
        self.check(r, 0)
        with open(os.path.join(dest, "hello.txt")) as f:
            self.assertEqual(f.read(), "hello over http\n")
        token = self.assert_refreshed(cid)
        self.assertGreaterEqual(seen["rejected"], 1, "git never asked the helper")
        self.assertTrue(seen["ok"] and {t for _, _, t in seen["ok"]} == {token}, seen)
        self.assertNotIn(token, r.stderr.decode())
        return root, url, seen, dest, token

    def test_git_clone_over_http_across_a_refresh(self):
        self.git_clone_over_http("tok")

    def refused(self, url, token):
        """Whether the server answers 401 to x-access-token:token."""
        req = urllib.request.Request(url + "/info/refs?service=git-upload-pack", headers={
            "Authorization": "Basic " + base64.b64encode(b"x-access-token:" + token.encode()).decode()})
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
                return resp.status == 401
        except urllib.error.HTTPError as e:
            return e.code == 401

    def test_git_push_over_http_across_a_refresh(self):
        root, url, seen, dest, first = self.git_clone_over_http("tok")
        bare = os.path.join(root, "r.git")
        # the push goes to the HTTP server, never to r.git's path
        origin = self.check(self.git("remote", "get-url", "origin", cwd=dest), 0).stdout.decode().strip()
        self.assertEqual(origin, url)
        # the token has expired: the push must refresh it once more
        self.check(self.run_(HIVE_CRED, "set", "tok", "access_token", "--expires", "access_token=-1m",
                             stdin=first), 0)
        before = self.show("tok")
        # git runs the helper through this wrapper, which logs each action and
        # keeps the credential as it stands after each get
        log = os.path.join(self.tmp, "actions")
        wrapper = os.path.join(self.tmp, "helper.sh")
        with open(wrapper, "w") as f:
            f.write('#!/bin/sh\n'
                    '"$GIT_HELPER" tok "$1"\n'
                    'rc=$?\n'
                    'echo "$1" >>"$ACTIONS"\n'
                    'if [ "$1" = get ]; then\n'
                    '    "$HIVE_CRED" show tok --json --reveal </dev/null >"$ACTIONS.after-get" || exit 1\n'
                    'fi\n'
                    'exit $rc\n')
        os.chmod(wrapper, 0o700)
        env = dict(self.env, GIT_HELPER=str(GIT_HELPER), HIVE_CRED=str(HIVE_CRED), ACTIONS=log)
        ident = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
        helper = ["-c", "credential.helper=", "-c", "credential.helper=" + wrapper]

        def push(message):
            with open(os.path.join(dest, "hello.txt"), "a") as f:
                f.write(message + "\n")
            self.check(self.git(*ident, "commit", "-q", "-a", "-m", message, cwd=dest), 0)
            head = self.check(self.git("rev-parse", "HEAD", cwd=dest), 0).stdout.decode().strip()
            open(log, "w").close()
            seen["ok"].clear()
            seen["rejected"] = 0
            r = hivetest.run(["git", *helper, "push", "origin", "HEAD:main"], env, timeout=TIMEOUT, cwd=dest)
            with open(log) as f:
                return r, head, f.read().split()

        def bare_main():
            r = self.check(self.git("--git-dir", bare, "rev-parse", "refs/heads/main"), 0)
            return r.stdout.decode().strip()

        r, head, actions = push("second, pushed over http")
        self.check(r, 0)
        token = self.assert_refreshed("tok")
        self.assertNotEqual(token, first, "the push did not refresh the token again")
        self.assertEqual(bare_main(), head, "receive-pack did not update r.git")
        self.assertGreaterEqual(seen["rejected"], 1, "git never asked the helper")
        self.assertIn(("POST", "/r.git/git-receive-pack", token), seen["ok"])
        self.assertEqual({t for _, _, t in seen["ok"]}, {token}, seen)
        self.assertEqual(actions, ["get", "store"])
        # store changed nothing: the credential is as the get (and its refresh) left it
        after_get = self.read_json(log + ".after-get")
        self.assertEqual(self.show("tok"), after_get)
        self.assert_only_refreshed(before, after_get)
        for t in (first, "old-access"):
            self.assertTrue(self.refused(url, t), "the server took a superseded token")
        self.assertFalse(self.refused(url, token))
        err = r.stderr.decode()
        for t in (token, first, after_get["keys"]["refresh_token"]["value"]):
            self.assertNotIn(t, err)

        # the server now refuses the token: git erases it, which changes nothing
        settled = self.show("tok")
        seen["deny"] = True
        r, _, actions = push("third, refused")
        self.assertNotEqual(r.returncode, 0, r.stderr)
        self.assertEqual(actions, ["get", "erase"])
        self.assertEqual(bare_main(), head)
        self.assertEqual(self.show("tok"), settled)
        self.assertEqual(self.read_json(log + ".after-get"), settled)
        self.assertNotIn(token, r.stderr.decode())

    def show(self, cid):
        return json.loads(self.check(self.run_(HIVE_CRED, "show", cid, "--json", "--reveal"), 0).stdout)

    def read_json(self, path):
        with open(path) as f:
            return json.load(f)

    def assert_only_refreshed(self, before, after):
        """after is before with what a refresh renews: the tokens, their
        expiries, the refresh and update times."""
        renewed = {"access_token", "refresh_token", "scope", "token_type", "id_token"}
        b, a = dict(before), dict(after)
        bk, ak = b.pop("keys"), a.pop("keys")
        for t in ("updated_at", "last_refreshed"):
            b.pop(t, None)
            a.pop(t, None)
        self.assertEqual(a, b)
        self.assertEqual({k: v for k, v in ak.items() if k not in renewed},
                         {k: v for k, v in bk.items() if k not in renewed})
        self.assertNotEqual(ak["access_token"]["value"], bk["access_token"]["value"])

    # --- kubectl -------------------------------------------------------

    def exec_credential(self, *args, info=None):
        env = dict(self.env)
        if info is not None:
            env["KUBERNETES_EXEC_INFO"] = info
        return self.run_(HIVE_CRED, "exec-credential", *args, env=env)

    def test_exec_credential_json(self):
        self.add("k", {"token": "k8s-secret", "other": "o"}, "--expires", "token=1900000000")
        r = self.check(self.exec_credential("k"), 0)
        self.assertEqual(json.loads(r.stdout), {"apiVersion": K8S + "v1beta1", "kind": "ExecCredential",
                                                "status": {"token": "k8s-secret",
                                                           "expirationTimestamp": "2030-03-17T17:46:40Z"}})
        info = json.dumps({"kind": "ExecCredential", "apiVersion": K8S + "v1", "spec": {"interactive": False}})
        r = self.check(self.exec_credential("k", "--key", "other", info=info), 0)
        self.assertEqual(json.loads(r.stdout), {"apiVersion": K8S + "v1", "kind": "ExecCredential",
                                                "status": {"token": "o"}})
        self.assertEqual(r.stderr, b"")

    def test_exec_credential_bad_input(self):
        self.add("k", {"token": "k8s-secret"})
        self.assert_error(self.exec_credential("k", info='{"apiVersion": "%sv2"}' % K8S), 2, ["v2"],
                          ["k8s-secret"])
        self.assert_error(self.exec_credential("k", info="{nope"), 2, ["not JSON"], ["k8s-secret"])
        self.assert_error(self.exec_credential("nope"), 3, ["Credential 'nope' not found"])
        self.assert_error(self.exec_credential("k", "--key", "missing"), 3, ["Key 'missing'"], ["k8s-secret"])
        self.assert_error(self.exec_credential("k", "--header", "a=b"), 2, ["--header"])
        self.assert_error(self.exec_credential("k", "--key", "a", "--key", "b"), 2, ["takes one --key"])

    def make_cert(self):
        cert, key = os.path.join(self.tmp, "cert.pem"), os.path.join(self.tmp, "key.pem")
        self.check(self.run_("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                             "-keyout", key, "-out", cert), 0)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        return cert, ctx

    def test_kubectl_across_a_refresh(self):
        self.add_due_token("tok")
        cert, ctx = self.make_cert()
        test = self
        seen = {"ok": 0, "rejected": 0}

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                current = test.stored("tok", "access_token")
                ok = self.headers.get("Authorization") == "Bearer " + current and current != "old-access"
                path = self.path.partition("?")[0]
                body = ANSWERS.get(path) if ok else {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                                     "reason": "Unauthorized", "code": 401}
                seen["ok" if ok else "rejected"] += 1
                if not ok:
                    seen.setdefault("why", []).append(self.path)
                body = json.dumps(body).encode()
                self.send_response((200 if ANSWERS.get(path) else 404) if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        srv = Endpoint(Handler, ctx)
        self.addCleanup(srv.close)
        versions = kubectl_exec_versions()
        for version in versions:
            config = os.path.join(self.tmp, "kubeconfig-" + version)
            with open(config, "w") as f:
                json.dump({"apiVersion": "v1", "kind": "Config", "current-context": "c",
                           "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:%d" % srv.port,
                                                                   "certificate-authority": cert}}],
                           "users": [{"name": "u", "user": {"exec": {
                               "apiVersion": K8S + version, "command": HIVE_CRED,
                               "args": ["exec-credential", "tok"], "interactiveMode": "Never"}}}],
                           "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}, f)
            r = self.run_("kubectl", "--kubeconfig", config, "get", "--raw", "/api")
            self.check(r, 0)
            self.assertEqual(json.loads(r.stdout), {"kind": "APIVersions", "versions": ["v1"]})
        token = self.assert_refreshed("tok")
        # each kubectl run authenticated at least once (kubectl 1.20, Debian
        # bookworm's, asks only the path; newer ones ask /version first)
        self.assertGreaterEqual(seen["ok"], len(versions), seen)
        self.assertEqual(seen["rejected"], 0, seen)
        self.assertNotIn(token, r.stderr.decode())

    # --- AWS -----------------------------------------------------------

    def aws_process(self, cid):
        return self.run_(HIVE_CRED, "aws-credential-process", cid)

    def test_aws_json(self):
        self.add("aws", {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "sk-secret",
                         "aws_session_token": "st-secret"},
                 "--expires", "aws_session_token=1900000000", "--expires", "aws_access_key_id=1900000100")
        r = self.check(self.aws_process("aws"), 0)
        self.assertEqual(json.loads(r.stdout), {"Version": 1, "AccessKeyId": "AKIDEXAMPLE",
                                                "SecretAccessKey": "sk-secret", "SessionToken": "st-secret",
                                                "Expiration": "2030-03-17T17:46:40Z"})
        self.add("plain", {"aws_access_key_id": "AKID2", "aws_secret_access_key": "sk2"})
        r = self.check(self.aws_process("plain"), 0)
        self.assertEqual(json.loads(r.stdout), {"Version": 1, "AccessKeyId": "AKID2", "SecretAccessKey": "sk2"})

    def test_aws_bad_input(self):
        self.add("half", {"aws_access_key_id": "AKID3"})
        self.assert_error(self.aws_process("half"), 3, ["aws_secret_access_key"], ["AKID3"])
        self.assert_error(self.aws_process("nope"), 3, ["Credential 'nope' not found"])

    def test_botocore_reads_credential_process(self):
        self.add("aws", {"aws_access_key_id": "AKIDBOTO", "aws_secret_access_key": "sk-boto",
                         "aws_session_token": "st-boto"}, "--expires", "aws_session_token=+2h")
        config = os.path.join(self.tmp, "aws-config")
        with open(config, "w") as f:
            f.write("[profile hive]\ncredential_process = %s aws-credential-process aws\n" % HIVE_CRED)
        code = ("import botocore.session, json\n"
                "c = botocore.session.Session(profile='hive').get_credentials()\n"
                "f = c.get_frozen_credentials()\n"
                "print(json.dumps([type(c).__name__, f.access_key, f.secret_key, f.token]))\n")
        env = dict(self.env, AWS_CONFIG_FILE=config, AWS_SHARED_CREDENTIALS_FILE=os.path.join(self.tmp, "none"),
                   AWS_EC2_METADATA_DISABLED="true")
        r = self.check(self.run_(sys.executable, "-c", code, env=env), 0)
        self.assertEqual(json.loads(r.stdout), ["RefreshableCredentials", "AKIDBOTO", "sk-boto", "st-boto"])

    # --- docker --------------------------------------------------------

    def docker(self, action, stdin=b""):
        return self.run_(DOCKER_HELPER, action, stdin=stdin)

    def test_docker_get_and_list(self):
        self.add("reg", {"token": "reg-secret", "username": "alice", "server_url": "https://reg.example.com/"})
        self.add("hub", {"token": "hub-secret", "username": "bob",
                         "server_url": "https://index.docker.io/v1/"})
        self.add("plain", {"token": "p"})
        for url in ("reg.example.com", "https://reg.example.com", "https://reg.example.com/\n"):
            r = self.check(self.docker("get", url), 0)
            self.assertEqual(json.loads(r.stdout), {"ServerURL": "https://reg.example.com/", "Username": "alice",
                                                    "Secret": "reg-secret"})
            self.assertEqual(r.stderr, b"")
        r = self.check(self.docker("get", "https://index.docker.io/v1/"), 0)
        self.assertEqual(json.loads(r.stdout)["Secret"], "hub-secret")
        r = self.check(self.docker("list"), 0)
        self.assertEqual(json.loads(r.stdout), {"https://reg.example.com/": "alice",
                                                "https://index.docker.io/v1/": "bob"})
        self.check(self.docker("version"), 0)

    def test_docker_get_refreshes(self):
        self.add_due_token("tok", username="oauth2accesstoken", server_url="https://gcr.example.com")
        r = self.check(self.docker("get", "gcr.example.com"), 0)
        self.assertEqual(json.loads(r.stdout)["Secret"], self.assert_refreshed("tok"))

    def test_docker_store_and_erase_change_nothing(self):
        self.add("reg", {"token": "reg-secret", "username": "alice", "server_url": "reg.example.com"})
        r = self.check(self.docker("store", '{"ServerURL": "reg.example.com", "Username": "x", "Secret": "y"}'), 0)
        self.assertEqual((r.stdout, r.stderr), (b"", b""))
        r = self.check(self.docker("erase", "reg.example.com"), 0)
        self.assertEqual((r.stdout, r.stderr), (b"", b""))
        self.assertEqual(self.stored("reg", "token"), "reg-secret")

    def test_docker_bad_input(self):
        self.add("a", {"token": "a-secret", "username": "u", "server_url": "dup.example.com"})
        self.add("b", {"token": "b-secret", "username": "u", "server_url": "https://dup.example.com/"})
        self.add("nouser", {"token": "n-secret", "server_url": "nouser.example.com"})
        r = self.docker("get", "other.example.com")
        self.assert_error(r, 3, ["other.example.com"])
        self.assertEqual(r.stdout, b"credentials not found in native keychain\n")
        r = self.docker("get", "")
        self.assert_error(r, 2, ["no server URL"])
        self.assertEqual(r.stdout, b"no credentials server URL\n")
        self.assert_error(self.docker("get", "dup.example.com"), 2, ["'a'", "'b'"], ["a-secret", "b-secret"])
        self.assert_error(self.docker("get", "nouser.example.com"), 3, ["username"], ["n-secret"])
        self.assert_error(self.docker("frobnicate"), 2, ["unknown action"])


if __name__ == "__main__":
    hivetest.main(prerequisite=missing_prerequisite)
