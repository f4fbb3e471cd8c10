#!/usr/bin/env python3
"""The etcd store (--store etcd://...), tested against a real etcd.

Run:  python3 tests/etcd/test_etcd.py [unittest options]

Needs `etcd` and `etcdctl` (Debian's etcd-server and etcd-client, 3.4);
without them the suite cannot run and fails saying why (scripts/setup
installs them). The fleet-refresh test also needs the OAuth2 test server
(node and `npm ci --prefix tests/oauth`, which scripts/test runs) and fails
without it.

Environment:
  HIVE_RUN      path of the hive-run binary  (default: <repo>/build/launcher/hive-run)
  HIVE_CRED     path of the hive-cred binary (default: <repo>/build/launcher/hive-cred)
  HIVE_FIXTURE  the fixture Hive home written by Python Hive
                (default: <repo>/tests/data/fixtures/hive-home)

One single-member etcd on 127.0.0.1 (free ports) serves most tests; the
failover test starts a three-member cluster, and so does the fleet test
(20 machines in waves, with faults, against the OAuth2 server, in under a
minute), the offline test an etcd of
its own that it stops, and EtcdSecurityTest one with TLS and client
certificates (made with the `openssl` command, which scripts/setup installs)
and one with user authentication. Every test has its own key PREFIX (/t-<test>),
its own HIVE_CREDENTIAL_KEY shared by all its "machines", and one
HIVE_HOME per machine (so one local etcd cache per machine). What etcd
holds is read through its v3 JSON gateway and decrypted with Fernet.
Standard library plus `cryptography`.
"""

import base64
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lib"))
import hivetest  # noqa: E402  (tests/lib/hivetest.py)

HIVE_RUN = hivetest.HIVE_RUN
HIVE_CRED = hivetest.HIVE_CRED
FIXTURE = hivetest.FIXTURE
OAUTH_DIR = REPO / "tests" / "oauth"
sys.path.insert(0, str(OAUTH_DIR))
from oauth_server import OAuthServer, missing as oauth_missing  # noqa: E402
ETCD = shutil.which("etcd")
ETCDCTL = shutil.which("etcdctl")

TIMEOUT = hivetest.scaled(60)   # per hive command
EXIT_NO, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_KEY, EXIT_DECRYPT, EXIT_STORE = 1, 2, 3, 4, 5, 6
EXIT_FAIL = 125       # hive-run failed before running the program

PROXY_VARS = hivetest.PROXY_VARS
HIVE_VARS = ["HIVE_HOME", "HIVE_CREDENTIAL_KEY", "HIVE_NEW_CREDENTIAL_KEY", "HIVE_ETCD_USER",
             "HIVE_ETCD_PASSWORD"]

MAIN = None           # the single-member etcd most tests share
_tmp = None


def missing_prerequisite():
    """Why the tests cannot run, or None."""
    if ETCD is None or ETCDCTL is None:
        return "etcd or etcdctl is not on PATH (scripts/setup installs etcd-server and etcd-client)"
    return None


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 (bound to port 0 together, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def quiet_env():
    """The environment for etcd and etcdctl: none of the caller's ETCD* settings, no proxy."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD") and k not in PROXY_VARS}
    env["ETCDCTL_API"] = "3"
    return env


# --- etcd processes -------------------------------------------------------------

class Member:
    """One etcd member on loopback; start() again restarts it on its data."""

    extra_args = ()      # more etcd options (TlsMember: the TLS ones)

    def __init__(self, root, name, client_port, peer_port, cluster, token):
        self.name = name
        self.data = os.path.join(root, name + ".etcd")
        self.log = os.path.join(root, name + ".log")
        self.endpoint = "127.0.0.1:%d" % client_port
        self.client_url = "http://" + self.endpoint
        self.peer_url = "http://127.0.0.1:%d" % peer_port
        self.cluster = cluster
        self.token = token
        self.proc = None

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [ETCD, "--name", self.name, "--data-dir", self.data,
                 "--listen-client-urls", self.client_url, "--advertise-client-urls", self.client_url,
                 "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
                 "--initial-cluster", self.cluster, "--initial-cluster-token", self.token,
                 "--initial-cluster-state", "new", *self.extra_args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=quiet_env())

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self):
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def healthy(self):
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                    self.client_url + "/health", timeout=2) as r:
                return json.loads(r.read()).get("health") == "true"
        except (OSError, ValueError, urllib.error.URLError):
            return False


class TlsMember(Member):
    """A single member whose clients must speak TLS and show a certificate
    signed by the test CA (--client-cert-auth); peers stay on http."""

    def __init__(self, root, name, certs, token):
        os.makedirs(root, exist_ok=True)
        client_port, peer_port = free_ports(2)
        super().__init__(root, name, client_port, peer_port, "%s=http://127.0.0.1:%d" % (name, peer_port), token)
        self.client_url = "https://" + self.endpoint
        self.extra_args = ("--cert-file", certs["server_cert"], "--key-file", certs["server_key"],
                           "--client-cert-auth", "--trusted-ca-file", certs["ca"])
        self.tls = ssl.create_default_context(cafile=certs["ca"])
        self.tls.load_cert_chain(certs["client_cert"], certs["client_key"])

    def healthy(self):
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=self.tls)).open(
                    self.client_url + "/health", timeout=2) as r:
                return json.loads(r.read()).get("health") == "true"
        except (OSError, ValueError, urllib.error.URLError):
            return False


def make_certs(d):
    """With the openssl CLI, in d: a CA, a server certificate for IP
    127.0.0.1 and a client certificate, both signed by the CA (ECDSA P-256).
    The server certificate is also good for clientAuth: etcd's own HTTP
    gateway presents it to etcd's gRPC server, which --client-cert-auth
    checks. Paths by role."""
    os.makedirs(d, exist_ok=True)
    f = {"ca": "ca.pem", "ca_key": "ca.key", "server_cert": "server.pem", "server_key": "server.key",
         "client_cert": "client.pem", "client_key": "client.key"}
    f = {k: os.path.join(d, v) for k, v in f.items()}

    def openssl(*args):
        r = subprocess.run(["openssl", *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, cwd=d, timeout=30)
        if r.returncode != 0:
            raise AssertionError("openssl %s: exit %d: %r" % (" ".join(args), r.returncode, r.stderr))

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    openssl("req", "-x509", *ec, "-keyout", f["ca_key"], "-out", f["ca"], "-days", "2",
            "-subj", "/CN=hive-test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for who, ext in [("server", "serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1"), ("client", "clientAuth")]:
        csr, extfile = os.path.join(d, who + ".csr"), os.path.join(d, who + ".ext")
        with open(extfile, "w") as out:
            out.write(("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                       "extendedKeyUsage=%s\n") % ext)
        openssl("req", "-new", *ec, "-keyout", f[who + "_key"], "-out", csr, "-subj", "/CN=hive-test-" + who)
        openssl("x509", "-req", "-in", csr, "-CA", f["ca"], "-CAkey", f["ca_key"], "-CAcreateserial",
                "-days", "2", "-out", f[who + "_cert"], "-extfile", extfile)
    return f


def start_cluster(root, size, token):
    """size members forming one cluster, all healthy (a leader elected)."""
    os.makedirs(root, exist_ok=True)
    ports = free_ports(2 * size)
    names = ["n%d" % i for i in range(size)]
    cluster = ",".join("%s=http://127.0.0.1:%d" % (n, ports[2 * i + 1]) for i, n in enumerate(names))
    members = [Member(root, n, ports[2 * i], ports[2 * i + 1], cluster, token) for i, n in enumerate(names)]
    try:
        for m in members:
            m.start()
        wait_healthy(members)
    except BaseException:
        for m in members:
            m.stop(signal.SIGKILL)
        raise
    return members


def wait_healthy(members, timeout=hivetest.scaled(45)):
    deadline = time.monotonic() + timeout
    for m in members:
        while not m.healthy():
            if not m.running():
                raise RuntimeError("etcd member %s exited with %s:\n%s"
                                   % (m.name, m.proc.returncode if m.proc else None, m.log_tail()))
            if time.monotonic() > deadline:
                raise RuntimeError("etcd member %s was not healthy in %d s:\n%s" % (m.name, timeout, m.log_tail()))
            time.sleep(0.05)


def setUpModule():
    global MAIN, _tmp
    why = missing_prerequisite()
    if why:
        raise RuntimeError("cannot run: " + why)
    for what, path in [("hive-run", HIVE_RUN), ("hive-cred", HIVE_CRED)]:
        if not os.access(path, os.X_OK):
            raise RuntimeError("%s not found at %s (set %s)" % (what, path, what.upper().replace("-", "_")))
    _tmp = tempfile.mkdtemp(prefix="hive-etcd-test-")
    try:
        MAIN = start_cluster(os.path.join(_tmp, "main"), 1, "hive-test-main")[0]
    except BaseException:
        tearDownModule()    # not called when setUpModule fails
        raise


def tearDownModule():
    if MAIN is not None:
        MAIN.stop()
    if _tmp:
        shutil.rmtree(_tmp, ignore_errors=True)


# --- etcd's v3 JSON gateway, and etcdctl --------------------------------------------

def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def gateway(endpoint, path, body):
    rq = urllib.request.Request("http://%s%s" % (endpoint, path), data=json.dumps(body).encode(), method="POST")
    rq.add_header("Content-Type", "application/json")
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(rq, timeout=10) as r:
        return json.loads(r.read())


def prefix_end(p):
    b = p.encode()
    return b[:-1] + bytes([b[-1] + 1])


def etcd_get(endpoint, key, revision=None):
    """{key, value (bytes), mod_revision, create_revision, version} or None."""
    body = {"key": b64(key)}
    if revision is not None:
        body["revision"] = str(revision)
    kvs = gateway(endpoint, "/v3/kv/range", body).get("kvs") or []
    if not kvs:
        return None
    kv = kvs[0]
    return {"key": base64.b64decode(kv["key"]).decode(), "value": base64.b64decode(kv.get("value", "")),
            "mod_revision": int(kv["mod_revision"]), "create_revision": int(kv["create_revision"]),
            "version": int(kv["version"])}


def etcd_scan(endpoint, prefix):
    """key -> value (bytes) of every key under prefix."""
    ans = gateway(endpoint, "/v3/kv/range", {"key": b64(prefix), "range_end": b64(prefix_end(prefix))})
    return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", ""))
            for kv in ans.get("kvs") or []}


def etcdctl(endpoint, *args):
    r = subprocess.run([ETCDCTL, "--endpoints=" + endpoint, *args], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=quiet_env(), timeout=30)
    if r.returncode != 0:
        raise AssertionError("etcdctl %s: exit %d: %r" % (" ".join(args), r.returncode, r.stderr))
    return r.stdout.decode()


def leader_of(members):
    """The member that leads the cluster now."""
    ids = {}
    leader = None
    for m in members:
        st = gateway(m.endpoint, "/v3/maintenance/status", {})
        ids[st["header"]["member_id"]] = m
        leader = st["leader"]
    return ids[leader]


# --- token endpoints --------------------------------------------------------------

class TokenStub:
    """A token endpoint on 127.0.0.1 that answers every refresh with new
    tokens (stub-access-N, stub-refresh-N), records when each request came,
    and holds requests while `gate` is clear."""

    def __init__(self):
        self.requests = []           # (time.time(), form)
        self.arrived = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self.refuse = False          # answer invalid_grant instead
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                form = dict(urllib.parse.parse_qsl(body.decode()))
                stub.requests.append((time.time(), form))
                n = len(stub.requests)
                stub.arrived.set()
                stub.gate.wait(30)
                data = json.dumps({"access_token": "stub-access-%d" % n, "token_type": "Bearer",
                                   "expires_in": 3600, "refresh_token": "stub-refresh-%d" % n}).encode()
                if stub.refuse:
                    data = json.dumps({"error": "invalid_grant",
                                       "error_description": "stub refuses refresh %d" % n}).encode()
                try:
                    self.send_response(400 if stub.refuse else 200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass     # the client is gone

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d/token" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class Proxy:
    """A TCP proxy on 127.0.0.1 in front of an etcd endpoint, counting the
    connections it accepts. mode "forward" passes bytes both ways; "silent"
    accepts and reads, but never answers: a member that is stopped
    (SIGSTOP) or cut off by a partition after the TCP handshake."""

    def __init__(self, target):
        self.target = target
        self.mode = "forward"
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.endpoint = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.held = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            if self.mode == "silent":
                self.held.append(c)
                threading.Thread(target=self._drain, args=(c,), daemon=True).start()
                continue
            host, port = self.target.rsplit(":", 1)
            try:
                u = socket.create_connection((host, int(port)), timeout=10)
            except OSError:
                c.close()
                continue
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _drain(c):
        try:
            while c.recv(65536):
                pass
        except OSError:
            pass

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for x in (a, b):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            a.close()     # each socket is `a` of one of the two pipes

    def close(self):
        self.closed = True
        self.sock.close()
        for c in self.held:
            c.close()


class GatewayStub:
    """etcd's JSON gateway for reads, played on 127.0.0.1 with raw sockets,
    to answer in the shapes HTTP allows: mode "length" (Content-Length,
    kept alive), "chunked" (odd-sized chunks), "close" (Connection: close),
    "eof" (HTTP/1.0, no length: the body ends when the connection does),
    "idle-close" (kept alive, then closed after each answer without saying
    so, as a server whose idle time-out ran out). kvs: key -> value bytes."""

    def __init__(self, kvs, mode):
        self.kvs, self.mode = kvs, mode
        self.connections = 0
        self.requests = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.endpoint = "127.0.0.1:%d" % self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _range(self, rq):
        key = base64.b64decode(rq["key"])
        if "range_end" in rq:
            end = base64.b64decode(rq["range_end"])
            keys = sorted(k for k in self.kvs if key <= k < end)
        else:
            keys = [key] if key in self.kvs else []
        return {"header": {"revision": "9"}, "count": str(len(keys)),
                "kvs": [{"key": b64(k), "value": b64(self.kvs[k]), "mod_revision": "7", "create_revision": "7",
                         "version": "1"} for k in keys]}

    def _answer(self, path, rq):
        if path == "/v3/kv/range":
            return self._range(rq)
        if path == "/v3/kv/txn":
            return {"header": {"revision": "9"}, "succeeded": True,
                    "responses": [{"response_range": self._range(op["request_range"])} for op in rq["success"]]}
        return {"error": "not played here"}

    def _serve(self, c):
        buf = b""
        with c:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = c.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode().split("\r\n")
                path = lines[0].split(" ")[1]
                n = int([ln.split(":", 1)[1] for ln in lines if ln.lower().startswith("content-length:")][0])
                while len(buf) < n:
                    buf += c.recv(65536)
                body, buf = buf[:n], buf[n:]
                self.requests += 1
                out = json.dumps(self._answer(path, json.loads(body))).encode()
                if self.mode == "chunked":
                    parts = [out[i:i + 7] for i in range(0, len(out), 7)]
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              b"Transfer-Encoding: chunked\r\n\r\n" +
                              b"".join(b"%x\r\n%s\r\n" % (len(x), x) for x in parts) + b"0\r\n\r\n")
                elif self.mode == "eof":
                    c.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + out)
                    return
                else:
                    extra = b"Connection: close\r\n" if self.mode == "close" else b""
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s"
                              % (extra, len(out), out))
                    if self.mode in ("close", "idle-close"):
                        return

    def close(self):
        self.sock.close()


# --- the tests ----------------------------------------------------------------------

class EtcdTest(unittest.TestCase):
    """PREFIX /t-<test>, one Fernet key for every machine of the test, a
    HIVE_HOME per machine (self.env: machine m0)."""

    maxDiff = None

    def setUp(self):
        self.tmp = hivetest.temp_dir(self, "hive-etcd-")
        self.key = Fernet.generate_key().decode()
        self.fernet = Fernet(self.key)
        self.prefix = "/t-" + self._testMethodName
        self.ep = MAIN.endpoint
        self.url = "etcd://%s%s" % (self.ep, self.prefix)
        base = hivetest.clean_env()
        base["HIVE_CREDENTIAL_KEY"] = self.key
        self.base_env = base
        self.env = self.machine("m0")

    # --- helpers -------------------------------------------------------

    def machine(self, name, **extra):
        """The environment of machine `name`: its own HIVE_HOME (and so its own cache)."""
        env = dict(self.base_env, HIVE_HOME=os.path.join(self.tmp, name))
        env.update(extra)
        return env

    def cred(self, *args, stdin=b"", env=None, url=None, store=True):
        """hive-cred --store URL ARGS (store=False: no --store)."""
        argv = [HIVE_CRED] + (["--store", url or self.url] if store else []) + list(args)
        return hivetest.run(argv, env or self.env, stdin=stdin, timeout=TIMEOUT, cwd=self.tmp)

    def hive_run(self, *args, env=None, url=None):
        return hivetest.run([HIVE_RUN, "--store", url or self.url, *args], env or self.env,
                            timeout=TIMEOUT, cwd=self.tmp)

    def check(self, r, code, what=""):
        self.assertEqual(r.returncode, code,
                         "%s: exit %d, expected %d\nstdout: %r\nstderr: %r"
                         % (what or " ".join(map(str, r.args[1:]))[:300], r.returncode, code,
                            r.stdout[:2000], r.stderr[:3000]))
        return r

    def add(self, cid, values, *opts, env=None, url=None):
        text = "".join("%s=%s\n" % kv for kv in values.items())
        return self.check(self.cred("add", cid, *opts, stdin=text, env=env, url=url), 0)

    def add_provider(self, token_url, pid="idp", client_id="hive-post", secret="post-secret-123", **kw):
        self.add(pid, {"token_url": token_url, "client_id": client_id, "client_secret": secret},
                 "--type", "custom", **kw)

    def add_token(self, cid="tok", refresh="rt0", access="old", expires="2020-01-01T00:00:00Z", **kw):
        self.add(cid, {"access_token": access, "refresh_token": refresh}, "--type", "oauth2",
                 "--provider-id", "idp", "--auto-refresh", "--expires", "access_token=" + expires, **kw)

    def in_etcd(self, cid, endpoint=None, prefix=None):
        """The credential etcd holds for cid, decrypted: (JSON, kv) or (None, None)."""
        kv = etcd_get(endpoint or self.ep, "%s/credentials/%s" % (prefix or self.prefix, cid))
        if kv is None:
            return None, None
        return json.loads(self.fernet.decrypt(kv["value"])), kv

    def value_in_etcd(self, cid, key, **kw):
        c, _ = self.in_etcd(cid, **kw)
        self.assertIsNotNone(c, "etcd holds no credential '%s'" % cid)
        return c["keys"][key]["value"]

    def warnings(self, r):
        return [ln for ln in r.stderr.decode("utf-8", "replace").splitlines() if ": warning: " in ln]

    def assert_offline_warning(self, r):
        w = self.warnings(r)
        self.assertEqual(len(w), 1, "want one warning about etcd: %r" % r.stderr)
        self.assertIn("etcd", w[0])
        self.assertIn("cache", w[0])

    # --- 1: the store over etcd ------------------------------------------------

    def test_store_over_etcd(self):
        self.add("svc/prod/api", {"api_key": "k-api-1", "extra": "x=1 2"}, "-d", "an id with slashes",
                 "--tag", "prod")
        self.add("smtp", {"username": "alice@example.com", "password": "p@ss w\u00f6rd \u2713"},
                 "--type", "basic_auth")
        # another machine (its own cache) reads all of it from etcd
        other = self.machine("m1")
        for cid, key, value in [("svc/prod/api", "api_key", "k-api-1"), ("svc/prod/api", "extra", "x=1 2"),
                                ("smtp", "username", "alice@example.com"),
                                ("smtp", "password", "p@ss w\u00f6rd \u2713")]:
            with self.subTest(cid=cid, key=key):
                r = self.check(self.cred("get", cid, key, env=other), 0)
                self.assertEqual(r.stdout.decode("utf-8"), value + "\n")
                self.assertEqual(r.stderr, b"")
        self.assertEqual(self.check(self.cred("get", "svc/prod/api", env=other), 0).stdout, b"k-api-1\n")
        self.assertEqual(self.check(self.cred("get", "smtp", env=other), 0).stdout, b"alice@example.com\n")
        self.check(self.cred("get", "smtp", "nokey", env=other), EXIT_NOT_FOUND)
        self.check(self.cred("get", "nothing", env=other), EXIT_NOT_FOUND)

        r = self.check(self.cred("show", "svc/prod/api", env=other), 0)
        out = r.stdout.decode()
        self.assertRegex(out, r"(?m)^id +svc/prod/api$")
        self.assertRegex(out, r"(?m)^type +api_key$")
        self.assertRegex(out, r"(?m)^description +an id with slashes$")
        self.assertRegex(out, r"(?m)^tags +prod$")
        self.assertRegex(out, r"(?m)^  api_key +\*+$")
        self.assertNotIn("k-api-1", out)
        shown = json.loads(self.check(self.cred("show", "smtp", "--json", "--reveal", env=other), 0).stdout)
        self.assertEqual(shown["keys"]["password"]["value"], "p@ss w\u00f6rd \u2713")
        self.assertEqual(shown["credential_type"], "basic_auth")

        self.assertEqual(self.check(self.cred("list", env=other), 0).stdout, b"smtp\nsvc/prod/api\n")
        self.check(self.cred("exists", "svc/prod/api", env=other), 0)
        self.check(self.cred("exists", "svc/prod", env=other), EXIT_NO)
        self.check(self.cred("exists", "nothing", env=other), EXIT_NO)

        r = self.check(self.cred("resolve", "user={{smtp}} pass={{smtp.password}}", env=other), 0)
        self.assertEqual(r.stdout.decode("utf-8"), "user=alice@example.com pass=p@ss w\u00f6rd \u2713\n")
        r = self.check(self.hive_run("-e", "X={{smtp.password}}", "--", "printenv", "X", env=other), 0)
        self.assertEqual(r.stdout.decode("utf-8"), "p@ss w\u00f6rd \u2713\n")

        # what etcd holds: one Fernet token per credential, nothing in the clear
        held = etcd_scan(self.ep, self.prefix + "/")
        self.assertEqual(sorted(held), [self.prefix + "/credentials/smtp", self.prefix + "/credentials/svc/prod/api"])
        for k, v in held.items():
            self.assertTrue(v.startswith(b"gAAAAA"), "%s: not a Fernet token: %r" % (k, v[:40]))
            for secret in (b"k-api-1", b"alice@example.com", "p@ss w\u00f6rd".encode()):
                self.assertNotIn(secret, v)
        c, _ = self.in_etcd("svc/prod/api")
        self.assertEqual(c["id"], "svc/prod/api")
        self.assertEqual(c["credential_type"], "api_key")
        self.assertEqual({k: v["value"] for k, v in c["keys"].items()}, {"api_key": "k-api-1", "extra": "x=1 2"})
        self.assertEqual(c["description"], "an id with slashes")
        self.assertEqual(c["tags"], ["prod"])
        c, _ = self.in_etcd("smtp")
        self.assertEqual(c["keys"]["password"]["value"], "p@ss w\u00f6rd \u2713")

        # replacing keeps created_at; the new value reaches the other machine
        created = self.in_etcd("smtp")[0]["created_at"]
        self.add("smtp", {"username": "bob@example.com", "password": "new"}, "--type", "basic_auth")
        self.assertEqual(self.in_etcd("smtp")[0]["created_at"], created)
        self.assertEqual(self.check(self.cred("get", "smtp", "username", env=other), 0).stdout,
                         b"bob@example.com\n")

        # delete, from the other machine
        self.check(self.cred("delete", "svc/prod/api", env=other), 0)
        self.assertEqual(self.in_etcd("svc/prod/api"), (None, None))
        self.check(self.cred("get", "svc/prod/api"), EXIT_NOT_FOUND)
        self.check(self.cred("exists", "svc/prod/api"), EXIT_NO)
        self.check(self.cred("delete", "svc/prod/api"), EXIT_NOT_FOUND)
        self.assertEqual(self.check(self.cred("list"), 0).stdout, b"smtp\n")

    def test_copy_fixture_round_trip(self):
        with open(os.path.join(FIXTURE, "fixture-expected.json"), encoding="utf-8") as f:
            expected = json.load(f)
        src_home = os.path.join(self.tmp, "fixture")
        shutil.copytree(FIXTURE, src_home)
        os.remove(os.path.join(src_home, "fixture-expected.json"))
        for root, dirs, files in os.walk(src_home):
            os.chmod(root, 0o700)
            for f in files:
                os.chmod(os.path.join(root, f), 0o600)
        fernet = Fernet(expected["key"])
        env = self.machine("m0", HIVE_CREDENTIAL_KEY=expected["key"])
        ids = sorted(c["id"] for c in expected["credentials"])
        self.assertIn("brave_search/work", ids)     # an id with '/'

        r = self.check(self.cred("copy", os.path.join(src_home, "credentials"), self.url, env=env, store=False), 0)
        self.assertEqual(r.stdout, ("copied %d of %d credential(s)\n" % (len(ids), len(ids))).encode())
        self.assertEqual(r.stderr, b"")
        held = etcd_scan(self.ep, self.prefix + "/")
        self.assertEqual(sorted(held), sorted("%s/credentials/%s" % (self.prefix, i) for i in ids))
        for c in expected["credentials"]:
            with self.subTest(id=c["id"], where="etcd"):
                got = json.loads(fernet.decrypt(held["%s/credentials/%s" % (self.prefix, c["id"])]))
                self.assertEqual(got, json.loads(c["plaintext_json"]))
        self.assertEqual(self.check(self.cred("list", env=env), 0).stdout.decode().split("\n")[:-1], ids)

        # and back, on another machine, into a new directory
        back = os.path.join(self.tmp, "back", "credentials")
        env2 = self.machine("m1", HIVE_CREDENTIAL_KEY=expected["key"])
        r = self.check(self.cred("copy", self.url, back, env=env2, store=False), 0)
        self.assertEqual(r.stdout, ("copied %d of %d credential(s)\n" % (len(ids), len(ids))).encode())
        self.assertEqual(self.check(self.cred("list", env=env2, url=back), 0).stdout.decode().split("\n")[:-1], ids)
        for c in expected["credentials"]:
            with self.subTest(id=c["id"], where="copied back"):
                with open(os.path.join(back, "credentials", os.path.basename(c["file"])), "rb") as f:
                    got = json.loads(fernet.decrypt(f.read().strip()))
                self.assertEqual(got, json.loads(c["plaintext_json"]))
                for name, value in c["keys"].items():
                    r = self.check(self.cred("get", c["id"], name, env=env2, url=back), 0)
                    self.assertEqual(r.stdout.decode("utf-8"), value + "\n")

    # --- 2: concurrent writers -----------------------------------------------------

    def test_concurrent_writers(self):
        rounds, writers = 20, 2
        results = [[] for _ in range(writers)]

        def writer(n):
            env = self.machine("w%d" % n)
            for i in range(rounds):
                value = "w%d-%02d" % (n, i)
                r = self.cred("add", "same", stdin="api_key=%s\n" % value, env=env)
                results[n].append((value, r))

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        written = set()
        for n in range(writers):
            for value, r in results[n]:
                self.check(r, 0, "writer %d: add same (api_key=%s)" % (n, value))
                written.add(value)
        c, kv = self.in_etcd("same")
        # each writer's adds are sequential: the last value stored is the last of one writer
        self.assertIn(c["keys"]["api_key"]["value"], {"w%d-%02d" % (n, rounds - 1) for n in range(writers)})
        # Every add that exited 0 is in etcd's history of the key, and every
        # version there is one that was written (no compaction on this etcd).
        history = {}
        for rev in range(kv["create_revision"], kv["mod_revision"] + 1):
            old = etcd_get(self.ep, "%s/credentials/same" % self.prefix, revision=rev)
            if old is not None and old["mod_revision"] == rev:
                history[rev] = json.loads(self.fernet.decrypt(old["value"]))
        seen = {h["keys"]["api_key"]["value"] for h in history.values()}
        self.assertEqual(seen, written, "writes that exited 0 but never reached etcd: %r; versions nobody wrote: %r"
                         % (sorted(written - seen), sorted(seen - written)))
        self.assertEqual(kv["version"], writers * rounds, "%d adds, %d versions" % (writers * rounds, kv["version"]))
        # created_at is the first writer's, kept by every replacement (a read-modify-write)
        first = history[kv["create_revision"]]["created_at"]
        self.assertEqual({h["created_at"] for h in history.values()}, {first})

    def test_read_modify_write_conflict(self):
        """Machine A reads tok and refreshes it (a read-modify-write); while
        its token request is held, machine B replaces tok. A's save must be
        refused (compare-and-swap on the revision A read) and B's value kept."""
        stub = TokenStub()
        self.addCleanup(stub.close)
        self.add_provider(stub.url)
        self.add_token(refresh="rt-a", expires="+3600s")
        _, kv_before = self.in_etcd("tok")
        stub.gate.clear()
        a = subprocess.Popen([HIVE_CRED, "--store", self.url, "refresh", "tok"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.machine("a"), cwd=self.tmp)
        try:
            self.assertTrue(stub.arrived.wait(30), "A's token request never came")
            self.add_token(access="from-b", refresh="rt-b", expires="+3600s", env=self.machine("b"))
            _, kv_b = self.in_etcd("tok")
            self.assertGreater(kv_b["mod_revision"], kv_before["mod_revision"])
        finally:
            stub.gate.set()
            out, err = a.communicate(timeout=TIMEOUT)
        r = subprocess.CompletedProcess(a.args, a.returncode, out, err)
        self.check(r, EXIT_STORE, "A: refresh over B's write")
        self.assertIn(b"changed", err)
        self.assertIn(b"etcd", err)
        c, kv = self.in_etcd("tok")
        self.assertEqual(kv["mod_revision"], kv_b["mod_revision"], "A wrote over B")
        self.assertEqual(c["keys"]["access_token"]["value"], "from-b")
        self.assertEqual(c["keys"]["refresh_token"]["value"], "rt-b")
        self.assertEqual(len(stub.requests), 1)
        self.assertEqual(stub.requests[0][1].get("refresh_token"), "rt-a")

    # --- 3: one refresh for the whole fleet -----------------------------------------

    def test_fleet_refresh_one_token_request(self):
        why = oauth_missing()
        if why:
            self.fail("cannot run: " + why)
        server = OAuthServer(self.tmp, access_ttl=60)
        self.addCleanup(server.close)
        self.add_provider(server.token_url)
        self.add_token(refresh=server.mint())
        self.assertEqual(server.stats()["token_requests"], 0)
        n = 20
        procs = [subprocess.Popen([HIVE_RUN, "--store", self.url, "-e", "T={{tok.access_token}}", "--",
                                   "printenv", "T"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=self.machine("fleet%02d" % i), cwd=self.tmp) for i in range(n)]
        results = []
        for p in procs:
            out, err = p.communicate(timeout=TIMEOUT * 2)
            results.append((p.returncode, out, err))
        for i, (rc, out, err) in enumerate(results):
            self.assertEqual(rc, 0, "machine %d: hive-run exit %d: %r" % (i, rc, err))
        values = {out for _, out, _ in results}
        self.assertEqual(len(values), 1, "the machines got different tokens: %r" % values)
        value = values.pop().decode().rstrip("\n")
        self.assertNotIn(value, ("", "old"))
        s = server.stats()
        self.assertEqual(s["token_requests"], 1, "%d machines caused %d token requests: %r\n%s"
                         % (n, s["token_requests"], s, server.log_tail()))
        c, _ = self.in_etcd("tok")
        self.assertEqual(c["keys"]["access_token"]["value"], value)
        self.assertIsNotNone(c["last_refreshed"])
        self.assertIsNone(etcd_get(self.ep, self.prefix + "/locks/tok"), "the refresh lock was left behind")
        # the rotated refresh token that was stored still works (a second use
        # of a spent one would have made the server revoke the grant)
        self.check(self.cred("refresh", "tok", env=self.machine("fleet00")), 0,
                   "refresh with the stored refresh token after the fleet")
        self.assertEqual(server.stats()["token_requests"], 2)
        self.assertNotEqual(self.value_in_etcd("tok", "access_token"), value)

    # --- 4: a lock whose holder died ---------------------------------------------------

    def dead_holder_lock(self, ttl=3):
        """PREFIX/locks/tok on a lease of ttl s that nobody keeps alive; its grant time."""
        t0 = time.time()
        out = etcdctl(self.ep, "lease", "grant", str(ttl))
        m = re.search(r"lease ([0-9a-f]+) granted", out)
        self.assertIsNotNone(m, out)
        etcdctl(self.ep, "put", "--lease=" + m.group(1), self.prefix + "/locks/tok", "dead-holder")
        self.assertIsNotNone(etcd_get(self.ep, self.prefix + "/locks/tok"))
        return t0

    def lock_setup(self):
        """A token stub, idp and an expired tok, and the URL with lock_ttl=3."""
        stub = TokenStub()
        self.addCleanup(stub.close)
        url = self.url + "?lock_ttl=3"
        self.add_provider(stub.url, url=url)
        self.add_token(url=url)
        return stub, url

    def test_lock_released_when_holder_dies(self):
        """A lock put with etcdctl on a lease nobody keeps alive: of 3 s (as
        long as hive's own lock_ttl), and of 5 s (longer: hive waits longer
        than its own lease lasts)."""
        stub, url = self.lock_setup()
        for ttl in (3, 5):
            with self.subTest(dead_lease=ttl):
                self.add_token(url=url)
                stub.requests.clear()
                t0 = self.dead_holder_lock(ttl)
                r = self.cred("refresh", "tok", url=url)
                t1 = time.time()
                self.check(r, 0, "refresh %.1f s after a dead holder's lock on a %d s lease" % (t1 - t0, ttl))
                self.assertEqual(len(stub.requests), 1)
                self.assertGreaterEqual(stub.requests[0][0] - t0, ttl - 0.5,
                                        "the token request came %.1f s after the lock was taken on a %d s lease"
                                        % (stub.requests[0][0] - t0, ttl))
                self.assertLessEqual(t1 - t0, ttl + 5, "the refresh took %.1f s after a %d s lease" % (t1 - t0, ttl))
                self.assertEqual(self.value_in_etcd("tok", "access_token"), "stub-access-%d" % len(stub.requests))
                self.assertIsNone(etcd_get(self.ep, self.prefix + "/locks/tok"), "hive left its lock behind")

    def test_lock_released_when_hive_holder_killed(self):
        """hive's own lease: a holder killed in the middle of its refresh."""
        stub, url = self.lock_setup()
        stub.gate.clear()
        a = subprocess.Popen([HIVE_CRED, "--store", url, "refresh", "tok"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.machine("a"),
                             cwd=self.tmp)
        try:
            self.assertTrue(stub.arrived.wait(30), "the first holder's token request never came")
            self.assertIsNotNone(etcd_get(self.ep, self.prefix + "/locks/tok"), "no lock while refreshing")
            t0 = time.time()
            a.kill()
        finally:
            a.wait()
            stub.gate.set()
        r = self.cred("refresh", "tok", url=url, env=self.machine("b"))
        t1 = time.time()
        self.check(r, 0, "refresh %.1f s after the holder was killed (3 s lease)" % (t1 - t0))
        self.assertLessEqual(t1 - t0, 8, "the refresh took %.1f s after a 3 s lease" % (t1 - t0))
        self.assertEqual(len(stub.requests), 2)
        self.assertEqual(self.value_in_etcd("tok", "access_token"), "stub-access-2")
        self.assertIsNone(etcd_get(self.ep, self.prefix + "/locks/tok"))

    def lock_lease(self):
        """The lease the refresh lock PREFIX/locks/tok is on (decimal), or None."""
        kvs = gateway(self.ep, "/v3/kv/range", {"key": b64(self.prefix + "/locks/tok")}).get("kvs") or []
        return kvs[0].get("lease") if kvs else None

    def held_refresh(self, stub, url, name="a", env=None):
        """hive-cred refresh tok on machine `name` (or env), held at the token
        endpoint (stub.gate clear); returns the process once its token
        request came."""
        stub.gate.clear()
        a = subprocess.Popen([HIVE_CRED, "--store", url, "refresh", "tok"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env or self.machine(name),
                             cwd=self.tmp)
        self.addCleanup(lambda: (a.kill(), a.communicate()))
        self.assertTrue(stub.arrived.wait(30), "the holder's token request never came")
        return a

    def test_lock_kept_alive_through_a_slow_refresh(self):
        """A token endpoint slower than lock_ttl (3 s): the holder keeps its
        lease alive, so a second machine waits instead of spending the same
        refresh token, and then uses what the first saved."""
        stub, url = self.lock_setup()
        a = self.held_refresh(stub, url)
        lease = self.lock_lease()
        self.assertIsNotNone(lease, "no lock while refreshing")
        b = subprocess.Popen([HIVE_RUN, "--store", url, "-e", "T={{tok.access_token}}", "--", "printenv", "T"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=self.machine("b"), cwd=self.tmp)
        self.addCleanup(lambda: (b.kill(), b.communicate()))
        time.sleep(7)    # more than two lock_ttl
        self.assertEqual(self.lock_lease(), lease, "the holder's lock was lost while its refresh was out")
        self.assertEqual(len(stub.requests), 1, "a second machine sent a token request while the first refreshed")
        stub.gate.set()
        out, err = a.communicate(timeout=TIMEOUT)
        self.assertEqual(a.returncode, 0, err)
        out, err = b.communicate(timeout=TIMEOUT)
        self.assertEqual(b.returncode, 0, err)
        self.assertEqual(out, b"stub-access-1\n")
        self.assertEqual(len(stub.requests), 1)
        self.assertEqual(self.value_in_etcd("tok", "refresh_token"), "stub-refresh-1")
        self.assertIsNone(etcd_get(self.ep, self.prefix + "/locks/tok"), "the refresh lock was left behind")

    def revoke_lock(self):
        lease = self.lock_lease()
        self.assertIsNotNone(lease, "no lock while refreshing")
        etcdctl(self.ep, "lease", "revoke", "%x" % int(lease))
        self.assertIsNone(etcd_get(self.ep, self.prefix + "/locks/tok"))

    def test_holder_that_lost_its_lock_cannot_save(self):
        """The holder's lease is revoked while its token request is out (as
        when it was cut off from etcd for longer than lock_ttl and another
        machine refreshed meanwhile): its save is fenced, says so, and what
        etcd holds stays."""
        stub, url = self.lock_setup()
        a = self.held_refresh(stub, url)
        self.revoke_lock()
        # another machine refreshes meanwhile (the lock is free)
        stub.gate.set()
        self.check(self.cred("refresh", "tok", url=url, env=self.machine("b")), 0, "refresh by a second machine")
        self.assertEqual(self.value_in_etcd("tok", "access_token"), "stub-access-2")
        out, err = a.communicate(timeout=TIMEOUT)
        text = err.decode()
        self.assertEqual(a.returncode, EXIT_STORE, text)
        self.assertIn("lost the refresh lock on etcd while refreshing 'tok' (lease expired): the new tokens "
                      "were not saved", text)
        self.assertNotIn("unknown error", text)
        self.assertNotIn("stub-", text)
        self.assertEqual(self.value_in_etcd("tok", "access_token"), "stub-access-2",
                         "the holder that lost its lock overwrote newer tokens")
        self.assertIsNone(etcd_get(self.ep, self.prefix + "/locks/tok"))

    def test_failed_refresh_message_survives_a_lost_lease(self):
        """A refresh that fails after its lease is gone: the unlock (whose
        revoke etcd refuses) keeps the refresh's own message."""
        stub, url = self.lock_setup()
        stub.refuse = True
        a = self.held_refresh(stub, url)
        self.revoke_lock()
        stub.gate.set()
        out, err = a.communicate(timeout=TIMEOUT)
        text = err.decode()
        self.assertNotEqual(a.returncode, 0, text)
        self.assertIn("Refresh token for 'tok' is invalid or revoked", text)
        self.assertNotIn("unknown error", text)
        self.assertEqual(self.value_in_etcd("tok", "access_token"), "old")

    # --- 4b: a fleet under load and faults --------------------------------------------

    def test_fleet_under_load_and_faults(self):
        """20 machines launch hive-run in waves through a 3-member cluster
        against a rotating OAuth2 server whose tokens last 6 s (due after two
        thirds of that, 4 s), one wave per expiry: healthy, a member stopped, the leader killed, a token
        endpoint slower than lock_ttl. Every wave makes one token request and
        no launch fails; a wave with a member stopped costs a bounded factor
        of a healthy wave's median launch time. Last, a holder is killed
        after the server rotated the token and before its answer came: the
        documented window, in which the rotating grant is lost - the next
        refresh replays the spent token, the server revokes the grant, and
        that is the only failure."""
        why = oauth_missing()
        if why:
            self.fail("cannot run: " + why)
        members = start_cluster(os.path.join(self.tmp, "cluster"), 3, "hive-test-" + self._testMethodName)

        def stop_all():
            for m in members:
                m.stop(signal.SIGKILL)
        self.addCleanup(stop_all)
        server = OAuthServer(self.tmp, access_ttl=6)
        self.addCleanup(server.close)
        # the member to stop is listed first: every machine starts there
        stopped = [m for m in members if m is not leader_of(members)][0]
        order = [stopped] + [m for m in members if m is not stopped]
        url = "etcd://%s%s?lock_ttl=3" % (",".join(m.endpoint for m in order), self.prefix)
        self.add_provider(server.token_url, url=url)
        self.add_token(refresh=server.mint(), url=url)
        machines = [self.machine("fleet%02d" % i) for i in range(20)]
        argv = [HIVE_RUN, "--store", url, "-e", "T={{tok.access_token}}", "--", "printenv", "T"]
        issued = []     # monotonic time of each wave's token

        def launch(env):
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env, cwd=self.tmp)

        def wave(what):
            """All machines at once: [(exit, stdout, stderr, seconds)]."""
            if issued:   # until the stored token is due
                time.sleep(max(0.0, issued[-1] + 5.2 - time.monotonic()))
            before = server.stats()["token_requests"]
            t0 = time.monotonic()
            procs = [launch(env) for env in machines]
            results = []
            for p in procs:
                out, err = p.communicate(timeout=TIMEOUT * 2)
                results.append((p.returncode, out, err, time.monotonic() - t0))
            issued.append(time.monotonic())
            made = server.stats()["token_requests"] - before
            for i, (rc, out, err, _) in enumerate(results):
                self.assertEqual(rc, 0, "%s: machine %d: exit %d: %r" % (what, i, rc, err))
            values = {out for _, out, _, _ in results}
            self.assertEqual(len(values), 1, "%s: the machines got different tokens: %r" % (what, values))
            self.assertEqual(made, 1, "%s: %d token requests for one expiry\n%s" % (what, made, server.log_tail()))
            return sorted(r[3] for r in results)[len(results) // 2]

        wave("the first wave")
        healthy = wave("healthy")
        stopped.stop(signal.SIGTERM)
        sick = wave("a member stopped")
        self.assertLess(sick / healthy, 4, "median launch %.2f s with a member stopped, %.2f s without"
                        % (sick, healthy))
        stopped.start()
        wait_healthy(members)
        leader = leader_of(members)
        leader.stop(signal.SIGKILL)
        wait_healthy([m for m in members if m is not leader])
        wave("the leader killed")
        leader.start()
        wait_healthy(members)
        server.admin("POST", "/test/delay?ms=4500")   # longer than lock_ttl: the lease is kept alive
        wave("a slow token endpoint")
        server.admin("POST", "/test/delay?ms=0")

        # the documented window: the server rotated the token, the holder dies before its answer
        time.sleep(max(0.0, issued[-1] + 5.2 - time.monotonic()))
        server.admin("POST", "/test/delay?ms=3000&after=1")
        spent = self.value_in_etcd("tok", "refresh_token", endpoint=members[0].endpoint)
        before = server.stats()["token_requests"]
        holder = launch(machines[0])
        deadline = time.monotonic() + 30
        while server.stats()["token_requests"] == before and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(server.stats()["token_requests"], before + 1, "the holder's token request never came")
        time.sleep(0.5)     # the provider rotates, then holds its answer
        holder.kill()
        holder.communicate()
        server.admin("POST", "/test/delay?ms=0&after=1")
        self.assertEqual(self.value_in_etcd("tok", "refresh_token", endpoint=members[0].endpoint), spent,
                         "the killed holder saved")
        # once the access token has expired (and the holder's lease with it)
        time.sleep(max(0.0, issued[-1] + 7.5 - time.monotonic()))
        procs = [launch(env) for env in machines]
        results = [p.communicate(timeout=TIMEOUT * 2) + (p.returncode,) for p in procs]
        for out, err, rc in results:
            self.assertEqual((rc, out), (EXIT_FAIL, b""), err)
            self.assertEqual(err.decode().splitlines()[0],
                             "hive-run: warning: Refresh token for 'tok' is invalid or revoked. "
                             "Re-authorization required.")
            self.assertIn("key 'access_token' of credential 'tok' expired", err.decode())
        self.assertIsNone(etcd_get(members[0].endpoint, self.prefix + "/locks/tok"))

    # --- 5: a three-member cluster loses a member -------------------------------------

    def test_cluster_member_stopped(self):
        members = start_cluster(os.path.join(self.tmp, "cluster"), 3, "hive-test-" + self._testMethodName)

        def stop_all():
            for m in members:
                m.stop(signal.SIGKILL)
        self.addCleanup(stop_all)
        # the leader goes down; the URL lists it first, so hive tries it first
        victim = leader_of(members)
        order = [victim] + [m for m in members if m is not victim]
        url = "etcd://%s%s" % (",".join(m.endpoint for m in order), self.prefix)
        expected = {}
        for i in range(5):
            cid = "c%d" % i if i else "c/0"
            expected[cid] = "before-%d" % i
            self.add(cid, {"api_key": expected[cid]}, url=url)

        victim.stop(signal.SIGTERM)
        wait_healthy([m for m in members if m is not victim])
        fresh = self.machine("after-stop")        # an empty cache: it reads etcd or nothing
        for cid, value in expected.items():
            r = self.check(self.cred("get", cid, env=fresh, url=url), 0)
            self.assertEqual(r.stdout.decode(), value + "\n")
            self.assertEqual(self.warnings(r), [], "served from the cache, not etcd")
        expected["c1"] = "during-1"
        self.add("c1", {"api_key": "during-1"}, url=url, env=fresh)
        expected["new"] = "during-new"
        self.add("new", {"api_key": "during-new"}, url=url, env=fresh)
        self.check(self.cred("delete", "c2", env=fresh, url=url), 0)
        del expected["c2"]
        r = self.check(self.cred("list", env=fresh, url=url), 0)
        self.assertEqual(r.stdout.decode().split("\n")[:-1], sorted(expected))
        self.assertEqual(self.warnings(r), [])

        # restart it: it catches up, and serves everything alone
        victim.start()
        wait_healthy(members)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            held = etcd_scan(victim.endpoint, self.prefix + "/credentials/")
            if len(held) == len(expected) and self.prefix + "/credentials/c2" not in held:
                break
            time.sleep(0.2)
        only = "etcd://%s%s" % (victim.endpoint, self.prefix)
        again = self.machine("restarted")
        self.assertEqual(self.check(self.cred("list", env=again, url=only), 0).stdout.decode().split("\n")[:-1],
                         sorted(expected))
        for cid, value in expected.items():
            r = self.check(self.cred("get", cid, env=again, url=only), 0)
            self.assertEqual(r.stdout.decode(), value + "\n")
            self.assertEqual(self.value_in_etcd(cid, "api_key", endpoint=victim.endpoint), value)

    # --- 6: etcd gone -------------------------------------------------------------------

    def test_offline_falls_back_to_cache(self):
        own = start_cluster(os.path.join(self.tmp, "own"), 1, "hive-test-" + self._testMethodName)[0]
        self.addCleanup(own.stop, signal.SIGKILL)
        url = "etcd://%s%s" % (own.endpoint, self.prefix)
        writer = self.machine("writer")
        self.add("a", {"api_key": "va", "extra": "ea"}, env=writer, url=url)
        self.add("b/c", {"username": "ub", "password": "pb"}, "--type", "basic_auth", env=writer, url=url)
        self.add("d", {"api_key": "vd"}, env=writer, url=url)
        # machine h reads a and b/c while etcd is up: its cache holds them
        h = self.machine("h")
        self.assertEqual(self.check(self.cred("get", "a", env=h, url=url), 0).stdout, b"va\n")
        self.assertEqual(self.check(self.cred("get", "b/c", "password", env=h, url=url), 0).stdout, b"pb\n")

        own.stop(signal.SIGTERM)
        r = self.check(self.cred("get", "a", env=h, url=url), 0)
        self.assertEqual(r.stdout, b"va\n")
        self.assert_offline_warning(r)
        r = self.check(self.cred("get", "a", "extra", env=h, url=url), 0)
        self.assertEqual(r.stdout, b"ea\n")
        r = self.check(self.cred("get", "b/c", "password", env=h, url=url), 0)
        self.assertEqual(r.stdout, b"pb\n")
        self.assert_offline_warning(r)
        r = self.check(self.cred("show", "b/c", env=h, url=url), 0)
        self.assertRegex(r.stdout.decode(), r"(?m)^id +b/c$")
        self.assert_offline_warning(r)
        r = self.check(self.cred("list", env=h, url=url), 0)
        self.assertEqual(r.stdout, b"a\nb/c\n")
        self.assert_offline_warning(r)
        r = self.check(self.cred("exists", "a", env=h, url=url), 0)
        self.assert_offline_warning(r)
        r = self.check(self.hive_run("-e", "X={{a.extra}}", "--", "printenv", "X", env=h, url=url), 0)
        self.assertEqual(r.stdout, b"ea\n")
        self.assert_offline_warning(r)
        # d was never read on h: not in its cache
        r = self.cred("get", "d", env=h, url=url)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"etcd", r.stderr)

        # writes need etcd
        for args, stdin in [(("add", "a"), "api_key=offline\n"), (("add", "new"), "api_key=x\n"),
                            (("delete", "a"), "")]:
            with self.subTest(args=args):
                r = self.check(self.cred(*args, stdin=stdin, env=h, url=url), EXIT_STORE)
                err = r.stderr.decode()
                self.assertRegex(err, r"(?m)^hive-cred: error: .*etcd.*unreachable")
                self.assertRegex(err, r"(?m)^hint: .*etcd")
        # and the failed writes changed nothing, here or in etcd
        self.assertEqual(self.check(self.cred("get", "a", env=h, url=url), 0).stdout, b"va\n")
        own.start()
        wait_healthy([own])
        self.assertEqual(self.value_in_etcd("a", "api_key", endpoint=own.endpoint), "va")
        self.assertEqual(self.in_etcd("new", endpoint=own.endpoint), (None, None))
        r = self.check(self.cred("get", "a", env=h, url=url), 0)
        self.assertEqual(self.warnings(r), [])

    def test_unanswering_etcd_times_out(self):
        """A listener that never answers: timeout=1 bounds every call."""
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        self.addCleanup(s.close)
        url = "etcd://127.0.0.1:%d%s?timeout=1" % (s.getsockname()[1], self.prefix)
        t0 = time.monotonic()
        r = self.cred("add", "x", stdin="api_key=v\n", url=url)
        took = time.monotonic() - t0
        self.check(r, EXIT_STORE)
        self.assertIn(b"etcd", r.stderr)
        self.assertLess(took, 10, "timeout=1, but the write took %.1f s" % took)
        t0 = time.monotonic()
        r = self.cred("get", "x", url=url)
        took = time.monotonic() - t0
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"etcd", r.stderr)
        self.assertLess(took, 10, "timeout=1, but the read took %.1f s" % took)

    # --- 8: a sick member, the local copy, one request per launch ------------------------

    def proxies(self, n):
        ps = [Proxy(self.ep) for _ in range(n)]
        for p in ps:
            self.addCleanup(p.close)
        return ps

    def copies(self, env):
        """path -> (inode, mtime_ns) of every file of the machine's local etcd copies."""
        root = os.path.join(env["HIVE_HOME"], "etcd-cache")
        out = {}
        for d, _, files in os.walk(root):
            for f in files:
                st = os.stat(os.path.join(d, f))
                out[os.path.join(d, f)] = (st.st_ino, st.st_mtime_ns)
        return out

    def test_sick_member_costs_one_short_attempt(self):
        """A member that accepts connections and never answers, listed first:
        a machine tries it once, briefly, and then starts with the member
        that answered (remembered in its local copy), whatever the order."""
        self.add("x", {"api_key": "vx"})
        sick = Proxy(self.ep)
        self.addCleanup(sick.close)
        sick.mode = "silent"
        url = "etcd://%s,%s%s" % (sick.endpoint, self.ep, self.prefix)
        m = self.machine("m-sick")
        t0 = time.monotonic()
        r = self.check(self.hive_run("-e", "X={{x}}", "--", "printenv", "X", env=m, url=url), 0)
        took = time.monotonic() - t0
        self.assertEqual(r.stdout, b"vx\n")
        self.assertEqual(self.warnings(r), [], "served from etcd, not the copy")
        self.assertEqual(sick.connections, 1)
        # a sick member costs one short attempt, not the 5 s time-out
        self.assertLess(took, 3, "the first launch took %.1f s" % took)
        for i in range(4):
            r = self.check(self.hive_run("-e", "X={{x}}", "--", "printenv", "X", env=m, url=url), 0)
            self.assertEqual(r.stdout, b"vx\n")
        self.check(self.cred("get", "x", env=m, url=url), 0)
        self.assertEqual(sick.connections, 1, "later launches tried the sick member again")
        # the same members listed the other way round: the same copy, the same memory
        url2 = "etcd://%s,%s%s" % (self.ep, sick.endpoint, self.prefix)
        self.assertEqual(self.check(self.cred("get", "x", env=m, url=url2), 0).stdout, b"vx\n")
        self.assertEqual(sick.connections, 1)

    def test_cut_off_machine_reads_its_copy(self):
        """Every member silent: the launch is bounded (one short attempt,
        then one time-out), reads come from the copy made through the same
        members listed in any order, and what is not there is said so."""
        p1, p2 = self.proxies(2)
        self.add("a", {"api_key": "va"})
        self.add("b", {"api_key": "vb"})
        self.add("never-read", {"api_key": "vn"})
        m = self.machine("m-cut")
        url = "etcd://%s,%s%s?timeout=2" % (p1.endpoint, p2.endpoint, self.prefix)
        r = self.check(self.hive_run("-e", "A={{a}}", "-e", "B={{b}}", "--", "sh", "-c", 'echo "$A $B"',
                                     env=m, url=url), 0)
        self.assertEqual(r.stdout, b"va vb\n")
        p1.mode = p2.mode = "silent"
        url_reordered = "etcd://%s,%s%s?timeout=2" % (p2.endpoint, p1.endpoint, self.prefix)
        t0 = time.monotonic()
        r = self.check(self.hive_run("-e", "A={{a}}", "-e", "B={{b}}", "--", "sh", "-c", 'echo "$A $B"',
                                     env=m, url=url_reordered), 0)
        took = time.monotonic() - t0
        self.assertEqual(r.stdout, b"va vb\n")
        self.assert_offline_warning(r)
        w = self.warnings(r)[0]
        self.assertIn(p1.endpoint, w)
        self.assertIn(p2.endpoint, w)
        # 0.4 s on the first member, the 2 s time-out on the last, once for the whole launch
        self.assertLess(took, 4.5, "a cut-off launch took %.1f s" % took)
        r = self.check(self.cred("get", "never-read", env=m, url=url_reordered), EXIT_STORE)
        err = r.stderr.decode()
        self.assertRegex(err, r"(?m)^hive-cred: error: etcd .*unreachable.*, and 'never-read' is not in the local copy")
        self.assertNotIn("not found", err)
        # the machine remembers that the cluster was unreachable: the next
        # launches, even with the default 5 s time-out, wait briefly
        url_default = "etcd://%s,%s%s" % (p1.endpoint, p2.endpoint, self.prefix)
        t0 = time.monotonic()
        r = self.check(self.hive_run("-e", "A={{a}}", "--", "printenv", "A", env=m, url=url_default), 0)
        took = time.monotonic() - t0
        self.assertEqual(r.stdout, b"va\n")
        self.assert_offline_warning(r)
        self.assertLess(took, 3, "a cut-off launch with the default time-out took %.1f s" % took)
        # the members are back: etcd again, at once
        p1.mode = p2.mode = "forward"
        self.add("a", {"api_key": "va2"})
        for _ in range(2):
            r = self.check(self.hive_run("-e", "A={{a}}", "--", "printenv", "A", env=m, url=url_default), 0)
            self.assertEqual(r.stdout, b"va2\n")
            self.assertEqual(self.warnings(r), [])
        self.assertFalse([f for f in self.copies(m) if f.endswith("/down")])

    def test_copy_written_only_when_the_revision_changed(self):
        self.add("a", {"api_key": "v1"})
        m = self.machine("m-copy")
        self.assertEqual(self.check(self.cred("get", "a", env=m), 0).stdout, b"v1\n")
        before = self.copies(m)
        self.assertEqual(len([f for f in before if f.endswith(".enc")]), 1, before)
        self.assertFalse([f for f in before if "index" in f or "metadata" in f], "an index is kept: %r" % before)
        for _ in range(3):
            self.check(self.cred("get", "a", env=m), 0)
            self.check(self.hive_run("-e", "X={{a}}", "--", "true", env=m), 0)
        self.assertEqual(self.copies(m), before, "the copy was written again for the same revision")
        self.add("a", {"api_key": "v2"})
        self.assertEqual(self.check(self.cred("get", "a", env=m), 0).stdout, b"v2\n")
        after = self.copies(m)
        enc = [f for f in after if f.endswith(".enc")][0]
        self.assertNotEqual(after[enc], before[enc])
        _, kv = self.in_etcd("a")
        with open(enc, "rb") as f:
            lines = f.read().split(b"\n")
        self.assertEqual(lines[1], str(kv["mod_revision"]).encode())
        self.assertEqual(lines[2], b"a")
        self.assertEqual(lines[3], kv["value"])

    def test_five_credentials_one_request(self):
        p, = self.proxies(1)
        for i in range(5):
            self.add("c%d" % i, {"api_key": "v%d" % i})
        url = "etcd://%s%s" % (p.endpoint, self.prefix)
        m = self.machine("m-five")
        args = []
        for i in range(5):
            args += ["-e", "V%d={{c%d}}" % (i, i)]
        r = self.check(self.hive_run(*args, "--", "sh", "-c", 'echo "$V0 $V1 $V2 $V3 $V4"', env=m, url=url), 0)
        self.assertEqual(r.stdout, b"v0 v1 v2 v3 v4\n")
        self.assertEqual(p.connections, 1, "5 credentials took %d requests" % p.connections)
        # one of them missing: the others still come in the one request, the
        # missing one is reported as before
        r = self.check(self.hive_run(*args, "-e", "M={{missing}}", "--", "true", env=m, url=url), EXIT_FAIL)
        self.assertIn(b"Credential 'missing' not found", r.stderr)

    def test_fifty_writers_one_id(self):
        """50 machines add the same id at once: every add succeeds (backing
        off at random), etcd holds 50 versions, the last is one of them and
        decrypts."""
        n = 50
        procs = [subprocess.Popen([HIVE_CRED, "--store", self.url, "add", "hot"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.machine("w%02d" % i),
                                  cwd=self.tmp) for i in range(n)]
        for i, p in enumerate(procs):
            p.stdin.write(b"api_key=writer-%02d\n" % i)
            p.stdin.close()
        results = [(p.wait(timeout=TIMEOUT * 2), p.stdout.read(), p.stderr.read()) for p in procs]
        for p in procs:
            p.stdout.close()
            p.stderr.close()
        for i, (rc, out, err) in enumerate(results):
            self.assertEqual(rc, 0, "writer %d: exit %d: %r" % (i, rc, err))
        c, kv = self.in_etcd("hot")
        self.assertIn(c["keys"]["api_key"]["value"], {"writer-%02d" % i for i in range(n)})
        self.assertEqual(kv["version"], n)

    def test_gateway_answers_in_every_http_shape(self):
        """etcd:// is spoken without libcurl: every way HTTP/1.x may frame
        an answer is read, and a kept-alive connection the server closed is
        opened again."""
        kvs = {}
        for i in range(3):
            doc = {"id": "s%d" % i, "credential_type": "api_key",
                   "keys": {"api_key": {"name": "api_key", "value": "stub-%d" % i, "expires_at": None,
                                        "metadata": {}}},
                   "provider_id": None, "last_refreshed": None, "auto_refresh": False, "last_used": None,
                   "use_count": 0, "description": "", "tags": [], "created_at": "2026-03-01T12:00:00Z",
                   "updated_at": "2026-03-01T12:00:00Z"}
            kvs[("/g/credentials/s%d" % i).encode()] = self.fernet.encrypt(json.dumps(doc).encode())
        for mode in ["length", "chunked", "close", "eof", "idle-close"]:
            with self.subTest(mode=mode):
                stub = GatewayStub(kvs, mode)
                self.addCleanup(stub.close)
                url = "etcd://%s/g" % stub.endpoint
                m = self.machine("m-" + mode)
                r = self.check(self.cred("get", "s1", env=m, url=url), 0)
                self.assertEqual(r.stdout, b"stub-1\n")
                self.assertEqual(r.stderr, b"")
                r = self.check(self.hive_run("-e", "A={{s0}}", "-e", "B={{s2}}", "--", "sh", "-c", 'echo "$A $B"',
                                             env=m, url=url), 0)
                self.assertEqual(r.stdout, b"stub-0 stub-2\n")
                self.assertEqual(r.stderr, b"")
                # a list, then a load per id: several requests in one process
                dest = os.path.join(self.tmp, "dump-" + mode)
                r = self.check(self.cred("copy", url, dest, env=m, store=False), 0)
                self.assertEqual(sorted(os.listdir(os.path.join(dest, "credentials"))),
                                 ["s0.enc", "s1.enc", "s2.enc"])
                kept = mode in ("length", "chunked")
                # kept alive: one connection per process; otherwise one per request
                if kept:
                    self.assertEqual(stub.connections, 3, "%d requests" % stub.requests)
                else:
                    self.assertEqual(stub.connections, stub.requests)


    # --- 9: fleet URLs ---------------------------------------------------------------------

    def test_password_in_url_refused_unrepeated(self):
        for url in ["etcd://hiveuser:Sekr1t-pw@%s%s" % (self.ep, self.prefix),
                    "etcd://hiveuser:Sekr1t-pw@%s,127.0.0.1:9%s" % (self.ep, self.prefix)]:
            r = self.check(self.cred("list", url=url), EXIT_USAGE)
            self.assertRegex(r.stderr.decode(), r"(?m)^hive-cred: error: .*password.*HIVE_ETCD_PASSWORD")
            self.assertNotIn(b"Sekr1t", r.stdout + r.stderr)
            r = self.check(self.hive_run("-e", "X=1", "--", "true", url=url), EXIT_FAIL)
            self.assertNotIn(b"Sekr1t", r.stdout + r.stderr)

    # --- 7: bad URLs, wrong key ---------------------------------------------------------

    def test_bad_urls(self):
        ep = self.ep
        for url, message in [
                ("etcd://", "etcd://HOST:PORT"),
                ("etcd://%s" % ep, "etcd://HOST:PORT"),
                ("etcd://%s/" % ep, "PREFIX"),               # an empty prefix
                ("etcd://%s?lock_ttl=3" % ep, "etcd://HOST:PORT"),
                ("etcd://%s/p?colour=blue" % ep, "colour"),
                ("etcd://%s/p?lock_ttl=3&bogus=1" % ep, "bogus"),
                ("etcd://%s/p?lock_ttl=1" % ep, "lock_ttl"),
        ]:
            with self.subTest(url=url):
                r = self.cred("list", url=url)
                self.check(r, EXIT_USAGE)
                self.assertRegex(r.stderr.decode(), r"(?m)^hive-cred: error: .*%s" % re.escape(message))
                r = self.hive_run("-e", "X=1", "--", "true", url=url)
                self.check(r, EXIT_FAIL)
                self.assertRegex(r.stderr.decode(), r"(?m)^hive-run: error: .*%s" % re.escape(message))

    def test_wrong_key(self):
        self.add("s", {"api_key": "secret-v"})
        other = self.machine("m1", HIVE_CREDENTIAL_KEY=Fernet.generate_key().decode())
        r = self.check(self.cred("get", "s", env=other), EXIT_DECRYPT)
        self.assertIn(b"decrypt", r.stderr)
        self.assertNotIn(b"secret-v", r.stdout + r.stderr)
        self.check(self.cred("resolve", "{{s}}", env=other), EXIT_DECRYPT)
        r = self.check(self.hive_run("-e", "X={{s}}", "--", "printenv", "X", env=other), EXIT_FAIL)
        self.assertNotIn(b"secret-v", r.stdout)
        self.assertEqual(self.value_in_etcd("s", "api_key"), "secret-v")
        nokey = dict(self.machine("m2"))
        nokey.pop("HIVE_CREDENTIAL_KEY")
        self.check(self.cred("get", "s", env=nokey), EXIT_KEY)


class EtcdSecurityTest(unittest.TestCase):
    """etcds:// with client certificates, and etcd's user authentication;
    each test on an etcd of its own. EtcdTest's helpers (machines, hive-cred,
    exit checks) are borrowed rather than inherited, so that its tests do not
    run twice."""

    maxDiff = None
    setUp = EtcdTest.setUp
    machine = EtcdTest.machine
    cred = EtcdTest.cred
    check = EtcdTest.check
    add = EtcdTest.add
    warnings = EtcdTest.warnings

    def cached(self, env, cid):
        """Files of the machine's local etcd caches named after cid."""
        stem = cid.replace("/", "_") + ".enc"
        root = os.path.join(env["HIVE_HOME"], "etcd-cache")
        return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files if f == stem]

    def test_tls_client_certificates(self):
        if shutil.which("openssl") is None:
            self.fail("cannot run: the openssl command is not on PATH (scripts/setup installs it)")
        certs = make_certs(os.path.join(self.tmp, "pki"))
        own = TlsMember(os.path.join(self.tmp, "tls"), "n0", certs, "hive-test-" + self._testMethodName)
        own.start()
        self.addCleanup(own.stop, signal.SIGKILL)
        wait_healthy([own])
        base = "etcds://%s/pfx" % own.endpoint
        url = "%s?ca_file=%s&cert_file=%s&key_file=%s" % (base, certs["ca"], certs["client_cert"],
                                                          certs["client_key"])
        tls_ctl = ("--cacert", certs["ca"], "--cert", certs["client_cert"], "--key", certs["client_key"])

        def held():
            out = etcdctl(own.client_url, *tls_ctl, "get", "--prefix", "--keys-only", "/pfx/")
            return sorted(k for k in out.split("\n") if k)

        self.add("svc/tls", {"api_key": "tls-v1"}, url=url)
        self.add("plain", {"username": "u", "password": "tls-pw"}, "--type", "basic_auth", url=url)
        other = self.machine("m1")
        r = self.check(self.cred("get", "svc/tls", env=other, url=url), 0)
        self.assertEqual(r.stdout, b"tls-v1\n")
        self.assertEqual(r.stderr, b"")
        r = self.check(self.cred("get", "plain", "password", env=other, url=url), 0)
        self.assertEqual(r.stdout, b"tls-pw\n")
        r = self.check(self.cred("list", env=other, url=url), 0)
        self.assertEqual(r.stdout, b"plain\nsvc/tls\n")
        self.assertEqual(r.stderr, b"")
        self.assertEqual(held(), ["/pfx/credentials/plain", "/pfx/credentials/svc/tls"])
        token = etcdctl(own.client_url, *tls_ctl, "get", "--print-value-only", "/pfx/credentials/svc/tls")
        self.assertEqual(json.loads(self.fernet.decrypt(token.strip().encode()))["keys"]["api_key"]["value"],
                         "tls-v1")

        # a refresh held past lock_ttl keeps its lock over etcds:// too (the
        # keep-alive thread's own requests through libcurl)
        stub = TokenStub()
        self.addCleanup(stub.close)
        locked = url + "&lock_ttl=3"
        EtcdTest.add_provider(self, stub.url, url=locked)
        EtcdTest.add_token(self, url=locked)
        a = EtcdTest.held_refresh(self, stub, locked, env=other)
        time.sleep(5)
        self.assertIn("/pfx/locks/tok", held(), "the lock was lost while the refresh was out")
        stub.gate.set()
        out, err = a.communicate(timeout=TIMEOUT)
        self.assertEqual(a.returncode, 0, err)
        self.assertEqual(len(stub.requests), 1)
        token = etcdctl(own.client_url, *tls_ctl, "get", "--print-value-only", "/pfx/credentials/tok")
        self.assertEqual(json.loads(self.fernet.decrypt(token.strip().encode()))["keys"]["access_token"]["value"],
                         "stub-access-1")
        for cid in ("tok", "idp"):
            self.check(self.cred("delete", cid, url=url), 0)

        # the server's certificate checked against the system's CAs only: refused
        no_ca = "%s?cert_file=%s&key_file=%s" % (base, certs["client_cert"], certs["client_key"])
        for what, plain_url in [("no ca_file", no_ca), ("plain http to the TLS port", "etcd://%s/pfx" % own.endpoint)]:
            with self.subTest(what):
                env = self.machine("fresh-" + what.replace(" ", "-"))
                r = self.check(self.cred("add", "nope", stdin="api_key=never\n", env=env, url=plain_url), EXIT_STORE)
                err = r.stderr.decode()
                if plain_url == no_ca:
                    self.assertRegex(err, r"(?m)^hive-cred: error: .*certificate")
                else:
                    self.assertRegex(err, r"(?m)^hive-cred: error: .*etcd.*unreachable")
                self.assertEqual(held(), ["/pfx/credentials/plain", "/pfx/credentials/svc/tls"], "written anyway")
                self.assertEqual(self.cached(env, "nope"), [], "written to the local cache anyway")
                r = self.cred("get", "svc/tls", env=env, url=plain_url)
                self.assertNotEqual(r.returncode, 0, r)
                self.assertNotIn(b"tls-v1", r.stdout)
                if plain_url == no_ca:
                    self.check(r, EXIT_STORE)
                    self.assertRegex(r.stderr.decode(), r"(?m)^hive-cred: error: .*certificate")
                else:
                    self.assertRegex(r.stderr.decode(), r"(?m)^hive-cred: (error|warning): .*etcd.*unreachable")

    def test_user_authentication(self):
        own = start_cluster(os.path.join(self.tmp, "auth"), 1, "hive-test-" + self._testMethodName)[0]
        self.addCleanup(own.stop, signal.SIGKILL)
        ep = own.endpoint
        for args in [("user", "add", "root:rootpw"), ("user", "add", "hiveuser:hivepw"), ("role", "add", "hive"),
                     ("role", "grant-permission", "hive", "--prefix=true", "readwrite", "/h"),
                     ("user", "grant-role", "hiveuser", "hive"), ("auth", "enable")]:
            etcdctl(ep, *args)
        root = ("--user", "root:rootpw")
        url = "etcd://hiveuser@%s/h" % ep
        env = self.machine("m0", HIVE_ETCD_PASSWORD="hivepw")
        outputs = []

        def cred(*args, **kw):
            r = self.cred(*args, **kw)
            outputs.append(r.stdout + r.stderr)
            return r

        self.check(cred("add", "a", stdin="api_key=auth-v1\n", env=env, url=url), 0)
        self.check(cred("add", "b/c", "--type", "basic_auth", stdin="username=u\npassword=pb\n", env=env,
                        url=url), 0)
        other = self.machine("m1", HIVE_ETCD_PASSWORD="hivepw")
        r = self.check(cred("get", "a", env=other, url=url), 0)
        self.assertEqual(r.stdout, b"auth-v1\n")
        self.assertEqual(r.stderr, b"")
        self.assertEqual(self.check(cred("get", "b/c", "password", env=other, url=url), 0).stdout, b"pb\n")
        r = self.check(cred("list", env=other, url=url), 0)
        self.assertEqual(r.stdout, b"a\nb/c\n")
        self.assertEqual(r.stderr, b"")
        token = etcdctl(ep, *root, "get", "--print-value-only", "/h/credentials/a")
        self.assertEqual(json.loads(self.fernet.decrypt(token.strip().encode()))["keys"]["api_key"]["value"],
                         "auth-v1")

        def held(prefix):
            out = etcdctl(ep, *root, "get", "--prefix", "--keys-only", prefix)
            return sorted(k for k in out.split("\n") if k)

        # no password: refused before anything is read or written
        nopw = self.machine("m0")
        for args, stdin in [(("list",), ""), (("get", "a"), ""), (("add", "x"), "api_key=x\n")]:
            with self.subTest("no HIVE_ETCD_PASSWORD", args=args):
                r = self.check(cred(*args, stdin=stdin, env=nopw, url=url), EXIT_STORE)
                self.assertRegex(r.stderr.decode(), r"(?m)^hive-cred: error: .*HIVE_ETCD_PASSWORD")
                self.assertEqual(r.stdout, b"")
        # a wrong password: refused too, and nothing served from machine m0's cache
        wrong = self.machine("m0", HIVE_ETCD_PASSWORD="wrong-pw-4711")
        for args, stdin in [(("get", "a"), ""), (("list",), ""), (("add", "x"), "api_key=x\n")]:
            with self.subTest("wrong password", args=args):
                r = self.check(cred(*args, stdin=stdin, env=wrong, url=url), EXIT_STORE)
                self.assertRegex(r.stderr.decode(), r"(?m)^hive-cred: error: .*authentication failed")
                self.assertEqual(r.stdout, b"")
                self.assertNotIn(b"wrong-pw-4711", r.stderr)
        self.assertEqual(held("/h/"), ["/h/credentials/a", "/h/credentials/b/c"])
        # a prefix outside the user's role
        out_url = "etcd://hiveuser@%s/other" % ep
        for args, stdin in [(("add", "a"), "api_key=o\n"), (("get", "a"), ""), (("list",), "")]:
            with self.subTest("outside the role", args=args):
                r = self.check(cred(*args, stdin=stdin, env=env, url=out_url), EXIT_STORE)
                self.assertRegex(r.stderr.decode(), r"(?m)^hive-cred: error: .*permission denied")
                self.assertEqual(r.stdout, b"")
        self.assertEqual(held("/other"), [])
        self.assertEqual(self.cached(env, "x"), [])
        # the password is only ever in the environment, never in what hive-cred says
        for out in outputs:
            self.assertNotIn(b"hivepw", out)
            self.assertNotIn(b"rootpw", out)


    def short_auth_etcd(self):
        """An etcd of the test's own whose auth tokens live 1 s (300 s by
        default), with auth on: root (rootpw), and hiveuser (hivepw) who may
        read and write /h."""
        root_dir = os.path.join(self.tmp, "auth-ttl")
        os.makedirs(root_dir)
        cp, pp = free_ports(2)
        own = Member(root_dir, "n0", cp, pp, "n0=http://127.0.0.1:%d" % pp, "hive-test-" + self._testMethodName)
        own.extra_args = ("--auth-token", "simple", "--auth-token-ttl", "1")
        own.start()
        self.addCleanup(own.stop, signal.SIGKILL)
        wait_healthy([own])
        for args in [("user", "add", "root:rootpw"), ("user", "add", "hiveuser:hivepw"), ("role", "add", "hive"),
                     ("role", "grant-permission", "hive", "--prefix=true", "readwrite", "/h"),
                     ("user", "grant-role", "hiveuser", "hive"), ("auth", "enable")]:
            etcdctl(own.endpoint, *args)
        return own

    def test_auth_token_renewed_by_a_long_lived_refresher(self):
        """etcd's auth token lives 1 s here (300 s by default): the --fresh
        refresher, idle between refreshes, outlives it, authenticates again
        and keeps refreshing through etcd."""
        why = oauth_missing()
        if why:
            self.fail("cannot run: " + why)
        own = self.short_auth_etcd()
        url = "etcd://hiveuser@%s/h" % own.endpoint
        env = self.machine("m0", HIVE_ETCD_PASSWORD="hivepw")
        server = OAuthServer(self.tmp, access_ttl=3)
        self.addCleanup(server.close)
        EtcdTest.add_provider(self, server.token_url, url=url, env=env)
        EtcdTest.add_token(self, refresh=server.mint(), url=url, env=env)
        reader = ("import ctypes, time\n"
                  "libc = ctypes.CDLL(None); libc.getenv.restype = ctypes.c_char_p\n"
                  "for _ in range(16):\n"
                  "    print(libc.getenv(b'T').decode(), flush=True); time.sleep(0.5)\n")
        # Python is refused under bare --fresh (os.environ is a copy); its
        # ctypes getenv() reads through the preload all the same
        r = subprocess.run([HIVE_RUN, "--store", url, "--fresh", "--allow-launch-values",
                            "-e", "T={{tok.access_token}}", "--", sys.executable, "-c", reader], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=env, timeout=TIMEOUT, cwd=self.tmp)
        self.check(r, 0, "hive-run --fresh")
        seen = list(dict.fromkeys(r.stdout.decode().split()))
        self.assertNotIn(b"invalid auth token", r.stderr)
        # 3 s tokens over 8 s: refreshed through etcd after its auth token expired
        self.assertGreaterEqual(len(seen), 3, "tokens seen: %r\nstderr: %r" % (seen, r.stderr[-2000:]))
        token = etcdctl(own.endpoint, "--user", "root:rootpw", "get", "--print-value-only", "/h/credentials/tok")
        stored = json.loads(self.fernet.decrypt(token.strip().encode()))["keys"]["access_token"]["value"]
        # the last token seen, or one refreshed after the program's last look
        self.assertNotIn(stored, seen[:-1])
        self.assertNotIn(b"hivepw", r.stdout + r.stderr)

    def test_lock_kept_alive_past_the_auth_token(self):
        """With etcd's auth token living 1 s, a refresh held 5 s at the token
        endpoint (lock_ttl 3 s) keeps its lock (the keep-alive thread sends
        the token it had at the lock) and saves."""
        own = self.short_auth_etcd()
        url = "etcd://hiveuser@%s/h?lock_ttl=3" % own.endpoint
        env = self.machine("m0", HIVE_ETCD_PASSWORD="hivepw")
        stub = TokenStub()
        self.addCleanup(stub.close)
        EtcdTest.add_provider(self, stub.url, url=url, env=env)
        EtcdTest.add_token(self, url=url, env=env)
        a = EtcdTest.held_refresh(self, stub, url, env=env)
        time.sleep(5)
        stub.gate.set()
        out, err = a.communicate(timeout=TIMEOUT)
        self.assertEqual(a.returncode, 0, err)
        token = etcdctl(own.endpoint, "--user", "root:rootpw", "get", "--print-value-only", "/h/credentials/tok")
        stored = json.loads(self.fernet.decrypt(token.strip().encode()))["keys"]["access_token"]["value"]
        self.assertEqual(stored, "stub-access-1")
        self.assertEqual(len(stub.requests), 1)


class EtcdRemoteTest(unittest.TestCase):
    """etcd on an address that is not loopback: a network namespace made by
    the test (ip netns, a veth pair 10.231.x.1 <-> 10.231.x.2), etcd inside
    it on its default client port. Needs root and iproute2; fails without."""

    maxDiff = None
    setUp = EtcdTest.setUp
    machine = EtcdTest.machine
    cred = EtcdTest.cred
    hive_run = EtcdTest.hive_run
    check = EtcdTest.check
    add = EtcdTest.add
    warnings = EtcdTest.warnings

    def ip(self, *args):
        r = subprocess.run(["ip", *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        if r.returncode != 0:
            raise AssertionError("ip %s: exit %d: %r" % (" ".join(args), r.returncode, r.stderr))

    def remote_etcd(self):
        if os.geteuid() != 0 or shutil.which("ip") is None:
            self.fail("cannot run: needs root and the ip command (iproute2) to make a network namespace")
        n = os.getpid() % 250 + 1
        ns, host_if, ns_if = "hive-etcd-%d" % os.getpid(), "hve%d" % os.getpid(), "hvn%d" % os.getpid()
        self.ip("netns", "add", ns)
        self.addCleanup(subprocess.run, ["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        self.ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        self.addCleanup(subprocess.run, ["ip", "link", "del", host_if], stderr=subprocess.DEVNULL)
        self.ip("link", "set", ns_if, "netns", ns)
        self.ip("addr", "add", "10.231.%d.1/30" % n, "dev", host_if)
        self.ip("link", "set", host_if, "up")
        self.ip("-n", ns, "addr", "add", "10.231.%d.2/30" % n, "dev", ns_if)
        self.ip("-n", ns, "link", "set", ns_if, "up")
        self.ip("-n", ns, "link", "set", "lo", "up")
        addr = "10.231.%d.2" % n
        data = os.path.join(self.tmp, "remote.etcd")
        log = open(os.path.join(self.tmp, "remote.log"), "ab")
        self.addCleanup(log.close)
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, ETCD, "--name", "r0", "--data-dir", data,
             "--listen-client-urls", "http://%s:2379" % addr, "--advertise-client-urls", "http://%s:2379" % addr,
             "--listen-peer-urls", "http://%s:2380" % addr, "--initial-advertise-peer-urls", "http://%s:2380" % addr,
             "--initial-cluster", "r0=http://%s:2380" % addr, "--initial-cluster-state", "new"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=quiet_env())

        def stop():
            proc.kill()
            proc.wait()
        self.addCleanup(stop)
        deadline = time.monotonic() + 45
        while True:
            try:
                with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                        "http://%s:2379/health" % addr, timeout=2) as r:
                    if json.loads(r.read()).get("health") == "true":
                        break
            except (OSError, ValueError, urllib.error.URLError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the etcd in the namespace did not start")
            time.sleep(0.1)
        return addr

    def test_readme_example_on_a_remote_address(self):
        addr = self.remote_etcd()
        url = "etcd://%s:2379/hive" % addr          # the README's example, another address
        r = self.check(self.cred("add", "gh", stdin="access_token=remote-v1\n", url=url), 0)
        w = self.warnings(r)
        self.assertEqual(len(w), 1, r.stderr)
        self.assertIn("%s:2379" % addr, w[0])
        self.assertIn("plain http", w[0])
        other = self.machine("m1")
        r = self.check(self.hive_run("-e", "T={{gh.access_token}}", "--", "printenv", "T", env=other, url=url), 0)
        self.assertEqual(r.stdout, b"remote-v1\n")
        # no port: etcd's 2379
        r = self.check(self.cred("get", "gh", env=other, url="etcd://%s/hive" % addr), 0)
        self.assertEqual(r.stdout, b"remote-v1\n")
        # with a user, the password would cross the network in the clear: refused
        env = self.machine("m2", HIVE_ETCD_PASSWORD="remote-pw-77")
        for u in ["etcd://hiveuser@%s:2379/hive" % addr, "etcd://hiveuser@%s/hive" % addr]:
            r = self.check(self.cred("get", "gh", env=env, url=u), EXIT_USAGE)
            self.assertRegex(r.stderr.decode(), r"(?m)^hive-cred: error: .*plain http.*etcds://")
            self.assertNotIn(b"remote-pw-77", r.stderr)
            self.assertEqual(r.stdout, b"")


def main():
    hivetest.main(binaries=["hive-run", "hive-cred"], prerequisite=missing_prerequisite)


if __name__ == "__main__":
    main()
