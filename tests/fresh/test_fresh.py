#!/usr/bin/env python3
"""hive-run --fresh, tested against a real OAuth2 server with 3-second tokens.

Run:  python3 tests/fresh/test_fresh.py [unittest options]

Needs `node` and the server's packages (`npm ci --prefix tests/oauth`);
without them the suite cannot run and fails saying why (scripts/test runs
`npm ci`).

Environment (ctest sets them all):
  HIVE_RUN      path of the hive-run binary  (default: <repo>/build/launcher/hive-run)
  HIVE_CRED     path of the hive-cred binary (default: <repo>/build/launcher/hive-cred)
  HIVE_PRELOAD  path of libhive-preload.so   (default: <repo>/build/preload/libhive-preload.so)
  FRESH_BIN     where tests/fresh/CMakeLists.txt built the helper programs
                (default: <repo>/build/tests/fresh)

One server process (tests/oauth/server.js, --access-ttl 3) serves the whole
run. HIVE_TEST_TIME_SCALE stretches the whole timeline: the token lifetime
(rounded up to whole seconds: the server counts seconds) and, in proportion
to it, every run, read interval, delay and slack below; the counts of
tokens and requests depend on their ratios alone, so they stay. Every program runs in a Hive home of its own, with a freshly minted
refresh token and a stored access token that expired long ago, so that
hive-run refreshes at launch and its refresher every ~2 s after (two thirds
of a 3-second lifetime). The long runs (15 s of token reading, 10 s of
threads, the runtimes) start together in setUpModule and run in parallel
while the short tests run; each test then checks its own run. The counting
run uses the client hive-basic, which nothing else uses, so that its token
requests can be told apart from the others' on the shared server.

What the runtimes see (checked by test_runtimes, and written in the docs):
C getenv(), Python through ctypes and Node's process.env see fresh values;
Python's os.environ, Perl's %ENV, Java's System.getenv(), sh and bash copy
the environment at start and see only the launch-time value.
"""

import concurrent.futures
import http.server
import json
import math
import os
import re
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO / "tests" / "lib"))
import hivetest  # noqa: E402  (tests/lib/hivetest.py)

HIVE_RUN = hivetest.HIVE_RUN
HIVE_CRED = hivetest.HIVE_CRED
HIVE_PRELOAD = hivetest.HIVE_PRELOAD
FRESH_BIN = hivetest.path_from_env("FRESH_BIN", REPO / "build" / "tests" / "fresh")

EXIT_FAIL = 125
# 3 s tokens, stretched by HIVE_TEST_TIME_SCALE; every duration of the
# timeline is given at time scale 1 and stretched with it (T(15): 15 s of
# reading), so that the ratios between them stay what the tests count on
ACCESS_TTL = hivetest.scaled_int(3)
UNIT = ACCESS_TTL / 3.0


def T(seconds):
    """seconds of the timeline (as at time scale 1), stretched with the
    token lifetime."""
    return seconds * UNIT


def T_arg(seconds):
    """T(seconds) as a helper's seconds argument."""
    return "%g" % T(seconds)


def T_ms(ms):
    """ms milliseconds of the timeline, stretched, as a helper's interval
    argument."""
    return str(int(round(ms * UNIT)))


READ_SECONDS = T(15)   # the long readers' runs
TIMEOUT = hivetest.scaled(60)
POST_ID, POST_SECRET = "hive-post", "post-secret-123"
BASIC_ID, BASIC_SECRET = "hive-basic", "b@sic:s3cr3t/+%&="
SECRETS = {POST_ID: POST_SECRET, BASIC_ID: BASIC_SECRET}
# oidc-provider's opaque access tokens: 43 base64url characters
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{20,200}\Z")
TOKEN_LEN = ("20", "200")

PROXY_VARS = hivetest.PROXY_VARS
HELPERS = ["token_reader", "thread_reader", "fork_reader", "ctor_main", "libctor_lib.so", "probe",
           "static_prog", "fake_go", "libnoop_preload.so", "tamper"]

SERVER = {}
_server = None
_tmp = None
_pool = None
JOBS = {}


def helper(name):
    return os.path.join(FRESH_BIN, name)


def missing_prerequisite():
    """Why the tests cannot run at all, or None."""
    return hivetest.missing_oauth_server()


def check_binaries():
    for what, path in [("HIVE_RUN", HIVE_RUN), ("HIVE_CRED", HIVE_CRED), ("HIVE_PRELOAD", HIVE_PRELOAD)]:
        if not os.path.exists(path):
            raise RuntimeError("%s not found at %s (set %s)" % (os.path.basename(path), path, what))
    for h in HELPERS:
        if not os.path.exists(helper(h)):
            raise RuntimeError("%s not found in %s (set FRESH_BIN)" % (h, FRESH_BIN))


def server_log():
    return _server.log_tail() if _server else ""


def setUpModule():
    global _server, _tmp, _pool
    why = missing_prerequisite()
    if why:
        raise RuntimeError("cannot run: " + why)
    check_binaries()
    _tmp = tempfile.mkdtemp(prefix="hive-fresh-test-")
    _server = hivetest.start_oauth_server(_tmp, ACCESS_TTL)
    SERVER.update(_server.ports)
    # the long runs, in parallel; the tests collect them
    _pool = concurrent.futures.ThreadPoolExecutor(max_workers=16)
    for name, fn in LONG_JOBS.items():
        JOBS[name] = _pool.submit(fn)


def tearDownModule():
    if _pool is not None:
        _pool.shutdown(wait=True)
    if _server is not None:
        _server.close()
    if _tmp:
        shutil.rmtree(_tmp, ignore_errors=True)


# --- the server ----------------------------------------------------------------

def request(method, path, form=None):
    """(status, parsed JSON body) of a request to the server's http port."""
    return _server.request(method, path, form)


def admin(method, path):
    status, body = request(method, path)
    if status != 200:
        raise AssertionError("%s %s: HTTP %d %r" % (method, path, status, body))
    return body


def client_requests(client):
    """Token requests the server has counted for this client."""
    return admin("GET", "/test/stats")["by_client"].get(client, 0)


def introspect(token, client=POST_ID):
    """The server's introspection answer for an access token: {"active": ...}."""
    status, body = request("POST", "/token/introspection",
                           {"token": token, "client_id": client, "client_secret": SECRETS[client]})
    if status != 200:
        raise AssertionError("introspection: HTTP %d %r" % (status, body))
    return body


# --- homes and programs ----------------------------------------------------------

def base_env(**extra):
    env = hivetest.clean_env()
    env["HIVE_PRELOAD"] = HIVE_PRELOAD
    # the hive-run under test may be an ASan build, and the program it runs
    # inherits LD_PRELOAD
    asan = env.get("ASAN_OPTIONS", "")
    if "verify_asan_link_order" not in asan:
        env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "verify_asan_link_order=0"
    env.update(extra)
    return env


class Home:
    """A Hive home holding provider 'idp' and token 'tok' (expired access
    token, fresh refresh token from the server) for one client."""

    def __init__(self, client=POST_ID):
        self.client = client
        self.dir = tempfile.mkdtemp(prefix="home-", dir=_tmp)
        self.env = base_env(HIVE_HOME=os.path.join(self.dir, "home"))
        self.cred("init")
        text = "token_url=http://127.0.0.1:%d%s\nclient_id=%s\nclient_secret=%s\n" % (
            SERVER["http"], SERVER["token_path"], client, SECRETS[client])
        if client == BASIC_ID:
            text += "auth_method=client_secret_basic\n"
        self.cred("add", "idp", "--type", "custom", stdin=text)
        rt = admin("POST", "/test/mint?client=" + client)["refresh_token"]
        self.cred("add", "tok", "--type", "oauth2", "--provider-id", "idp", "--auto-refresh",
                  "--expires", "access_token=2020-01-01T00:00:00Z",
                  stdin="access_token=old\nrefresh_token=%s\n" % rt)

    def cred(self, *args, stdin=""):
        r = hivetest.run([HIVE_CRED, *args], self.env, stdin=stdin, timeout=TIMEOUT, cwd=self.dir)
        if r.returncode != 0:
            raise RuntimeError("hive-cred %s: exit %d: %r" % (" ".join(args), r.returncode, r.stderr))
        return r

    def argv(self, *prog, opts=()):
        # hive-run refuses a shell under bare --fresh (it copies its
        # environment); the shells here start the C helpers, which read
        # getenv() through the preload the shell passes on
        if prog and prog[0] in ("sh", "bash") and "--allow-launch-values" not in opts:
            opts = ["--allow-launch-values", *opts]
        return [HIVE_RUN, "--fresh", *opts, "-e", "TOKEN={{tok}}", "--", *prog]

    def run(self, *prog, opts=(), env=None, timeout=TIMEOUT):
        return hivetest.run(self.argv(*prog, opts=opts), env or self.env, timeout=timeout, cwd=self.dir)


def distinct(values):
    out = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def reader_lines(text):
    """token_reader/fork_reader output -> [(seconds, value)]."""
    out = []
    for line in text.splitlines():
        t, _, v = line.partition(" ")
        out.append((float(t), v))
    return out


def proc_state(pid):
    """(comm, state, cmdline) of a process, or None when it is gone."""
    try:
        with open("/proc/%d/comm" % pid) as f:
            comm = f.read().strip()
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmdline = f.read()
    except OSError:
        return None
    return comm, st[st.rindex(")") + 2], cmdline


def live_refreshers(marker):
    """PIDs of live (not zombie) hive-refresher processes started by a
    hive-run whose command line holds marker."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        s = proc_state(int(d))
        if s and s[0] == "hive-refresher" and s[1] != "Z" and marker.encode() in s[2]:
            out.append(int(d))
    return out


def open_snapshot(pid):
    """Our own descriptor of a program's snapshot memfd (HIVE_SNAPSHOT_FD in
    its environment), through /proc: it stays readable after the program
    has ended."""
    with open("/proc/%d/environ" % pid, "rb") as f:
        env = dict(kv.partition(b"=")[::2] for kv in f.read().split(b"\0") if kv)
    return os.open("/proc/%d/fd/%d" % (pid, int(env[b"HIVE_SNAPSHOT_FD"])), os.O_RDONLY)


def reap(p):
    """Kill p if it still runs; close its pipes."""
    if p.poll() is None:
        p.kill()
        p.wait()
    p.stdout.close()
    p.stderr.close()


def run_during(argv, during, first_line=False, **kw):
    """Run argv, calling during() while it runs (once it has printed a
    line, with first_line); (exit status, stdout, stderr) as text."""
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    try:
        first = p.stdout.readline() if first_line else b""
        during()
        out, err = p.communicate(timeout=TIMEOUT)
    finally:
        reap(p)
    return p.returncode, (first + out).decode("latin-1"), err.decode("utf-8", "replace")


class ScriptedTokenServer:
    """A token endpoint (on 127.0.0.1) whose answers a test chooses:
    expires_in, a delay before answering, an error status. Every answer
    rotates the refresh token; it remembers what it was sent and issued.
    When a request arrives and flag is set, it creates that file first."""

    def __init__(self, expires_in=3600, delay=0.0, delay_after=0, status=200, token_len=40, flag=None):
        self.expires_in, self.delay, self.delay_after = expires_in, delay, delay_after
        self.status, self.token_len, self.flag = status, token_len, flag
        self.lock = threading.Lock()
        self.requests = []      # (monotonic time, form)
        self.issued = []        # (access token, refresh token)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = dict(urllib.parse.parse_qsl(body))
                with server.lock:
                    server.requests.append((time.monotonic(), form))
                    n = len(server.requests)
                if server.flag and n > server.delay_after:
                    open(server.flag, "w").close()
                if n > server.delay_after:
                    time.sleep(server.delay)
                if server.status != 200:
                    out, code = {"error": "server_error"}, server.status
                else:
                    with server.lock:
                        k = len(server.issued) + 1
                        access = ("at%d-" % k).ljust(server.token_len, "a")
                        server.issued.append((access, "rt-%d" % k))
                    out = {"access_token": access, "token_type": "Bearer", "expires_in": server.expires_in,
                           "refresh_token": "rt-%d" % k}
                    code = 200
                data = json.dumps(out).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass   # the client gave up (the test says whether it should have)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d/token" % self.httpd.server_address[1]

    def count(self):
        with self.lock:
            return len(self.requests)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class ScriptedHome(Home):
    """A Hive home whose token 'tok' (access token expiring at expires,
    refresh token rt-0) is refreshed by a ScriptedTokenServer."""

    def __init__(self, server, expires="2020-01-01T00:00:00Z"):
        self.client = POST_ID
        self.dir = tempfile.mkdtemp(prefix="home-", dir=_tmp)
        self.env = base_env(HIVE_HOME=os.path.join(self.dir, "home"))
        self.cred("init")
        self.cred("add", "idp", "--type", "custom",
                  stdin="token_url=%s\nclient_id=c\nclient_secret=s\ntimeout=30\n" % server.url)
        self.cred("add", "tok", "--type", "oauth2", "--provider-id", "idp", "--auto-refresh",
                  "--expires", "access_token=" + expires, stdin="access_token=old\nrefresh_token=rt-0\n")

    def stored(self, key):
        return self.cred("get", "tok", key).stdout.decode().strip()


class RefresherTest(unittest.TestCase):
    """The refresher never storms a token server, loses no rotated token
    when the program ends, and never freezes silently (issue 12, items 2,
    6, 7). Their timelines are the refresher's own fixed pacing (one try
    a second at most, backoff doubling from 2 s) against a scripted
    server: HIVE_TEST_TIME_SCALE stretches only their time limits."""

    def server(self, **kw):
        srv = ScriptedTokenServer(**kw)
        self.addCleanup(srv.close)
        return srv

    def test_a_token_due_again_at_once_is_not_refreshed_in_a_loop(self):
        """Tokens that expire as they are issued (expires_in 0): the store
        finds the credential due right after each refresh. Over 6 s the
        refresher asks at most once a second."""
        srv = self.server(expires_in=0)
        home = ScriptedHome(srv)
        r = home.run("sleep", "6", opts=["--allow-expired"])
        err = r.stderr.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 0, err[-3000:])
        n = srv.count()
        # one at launch, at most one a second after, and one for timing
        self.assertLessEqual(n, 8, "%d token requests in 6 s: %s" % (n, [round(t, 2) for t, _ in srv.requests]))
        self.assertGreaterEqual(n, 3, "the refresher did not refresh at all")

    def test_b_failing_server_backs_off(self):
        """A token server that answers 500: each attempt is the provider's
        three tries; attempts back off (2, 4, 8 s...), and each failure is
        said."""
        srv = self.server(status=500)
        home = ScriptedHome(srv, expires="+200s")   # due (margin 300 s), not expired
        r = home.run("sleep", "9")
        err = r.stderr.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 0, err[-3000:])
        times = [t for t, _ in srv.requests]
        attempts = 1 + sum(1 for a, b in zip(times, times[1:]) if b - a > 1.5)
        # launch, then at 1, 3, 7 s at most
        self.assertLessEqual(attempts, 4, "attempts at %s" % [round(t - times[0], 2) for t in times])
        self.assertLessEqual(len(times), 4 * 3, "requests at %s" % [round(t - times[0], 2) for t in times])
        self.assertIn("refresher:", err)
        self.assertIn("next try in", err)

    def test_c_refresh_in_flight_when_the_program_ends_is_saved(self):
        """The program ends while the refresher waits for the token server
        (which has rotated the refresh token by then): the refresher lets
        the refresh finish and saves the new tokens."""
        home_dir = tempfile.mkdtemp(prefix="flight-", dir=_tmp)
        flag = os.path.join(home_dir, "arrived")
        srv = self.server(expires_in=3, delay=2.5, delay_after=1, flag=flag)
        home = ScriptedHome(srv)
        marker = "flight-" + os.path.basename(home.dir)
        r = home.run("sh", "-c", 'while [ ! -e "$0" ]; do sleep 0.05; done', flag, marker)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertEqual(wait_no_refresher(marker, hivetest.scaled(20)), [], "the refresher is still running")
        self.assertEqual(srv.count(), 2, srv.requests)
        self.assertEqual(srv.requests[1][1].get("refresh_token"), "rt-1")
        # the server has rotated rt-1 into rt-2: rt-2 must be in the store
        self.assertEqual(home.stored("refresh_token"), "rt-2")
        self.assertEqual(home.stored("access_token"), srv.issued[-1][0])

    def test_c_credential_gone_is_said(self):
        """The credential is deleted while the program runs: the refresher
        says so (once) and the program keeps the last value."""
        srv = self.server(expires_in=1)
        home = ScriptedHome(srv)
        rc, out, err = run_during(home.argv(helper("token_reader"), "TOKEN", "4", "100"),
                                  lambda: (time.sleep(1.5), home.cred("delete", "tok")), env=home.env, cwd=home.dir)
        self.assertEqual(rc, 0, err[-3000:])
        self.assertEqual(err.count("refresher: TOKEN: Credential 'tok' not found"), 1, err[-3000:])
        values = [v for _, v in reader_lines(out)]
        self.assertIn(values[-1], [a for a, _ in srv.issued])

    def test_d_small_snapshot_turns_over_and_says_so(self):
        """A snapshot with room for four values (HIVE_TEST_SNAPSHOT_SIZE)
        and 1000-byte tokens refreshed every second: the program keeps
        getting new, whole tokens to the end, and the refresher warns that
        the snapshot turns over too fast."""
        srv = self.server(expires_in=1, token_len=1000)
        home = ScriptedHome(srv)
        # RT changes with every refresh too, STATIC never: the ring holds
        # values of several variables, and a current one is never overwritten
        env = dict(home.env, HIVE_TEST_SNAPSHOT_SIZE=str(SNAP_DATA + 1008 + 2 * 8 + 64 + 4 * 1008))
        r = home.run("sh", "-c", '"$0" TOKEN 9 100 && "$1" RT STATIC', helper("token_reader"), helper("probe"),
                     env=env, opts=["-e", "RT={{tok.refresh_token}}", "-e", "STATIC={{idp.client_id}}"])
        err = r.stderr.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 0, err[-3000:])
        lines = r.stdout.decode().splitlines()
        self.assertEqual(lines[-1], "STATIC getenv=c secure=c")
        rt = re.fullmatch(r"RT getenv=(\S+) secure=\S+", lines[-2])
        self.assertTrue(rt, lines[-2:])
        self.assertIn(rt.group(1), [t for _, t in srv.issued][-3:], "RT is not one of the last refresh tokens")
        values = [v for _, v in reader_lines("\n".join(lines[:-2]))]
        issued = [a for a, _ in srv.issued]
        for v in values:
            self.assertIn(v, issued, "a torn or unknown value")
        self.assertGreaterEqual(len(values), 6, "%d values in 9 s: %s" % (len(values), err[-2000:]))
        # not frozen: one of the last values issued is what the program ends with
        self.assertIn(values[-1], issued[-3:], "the program ended with an old value: %s" % err[-2000:])
        # said, once (it turns over every few seconds here)
        self.assertEqual(err.count("turned over"), 1, err[-3000:])


SNAP_MAGIC = 0x31504E5345564948
SNAP_VERSION = 3   # preload/snapshot.h
SNAP_SLOTS = 64
SNAP_SLOT = 136   # name[120], offset, launch
SNAP_DATA = (48 + SNAP_SLOT * SNAP_SLOTS + 63) & ~63


def snapshot_value(fd, name):
    """(generation, current value) of a variable in a snapshot
    (preload/snapshot.h: magic, version, nvars, size, generation, turns,
    refresher_pid, then 64 slots of name[120], offset and launch)."""
    head = os.pread(fd, 48, 0)
    magic, _, nvars, _, generation = struct.unpack_from("<QIIQQ", head)
    if magic != SNAP_MAGIC:
        raise AssertionError("not a hive snapshot: %r" % head)
    for i in range(min(nvars, SNAP_SLOTS)):
        slot = os.pread(fd, SNAP_SLOT, 48 + SNAP_SLOT * i)
        if slot[:120].split(b"\0", 1)[0] == name.encode():
            off = struct.unpack_from("<Q", slot, 120)[0]
            return generation, os.pread(fd, 8192, off).split(b"\0", 1)[0].decode("utf-8", "replace")
    raise AssertionError("%s is not in the snapshot" % name)


def wait_no_refresher(marker, seconds=hivetest.scaled(3.0)):
    """[] if every refresher of marker is gone within seconds, else those left."""
    deadline = time.monotonic() + seconds
    while True:
        left = live_refreshers(marker)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


# --- the long runs (started together by setUpModule) -------------------------------

def run_live_reader(client, prog, seconds=READ_SECONDS):
    """Run prog (which prints token_reader lines) under --fresh; introspect
    every new token the moment it shows up, and the last one again once the
    program has ended. Counts this client's token requests meanwhile."""
    home = Home(client)
    before = client_requests(client)
    p = subprocess.Popen(home.argv(*prog), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=home.env, cwd=home.dir)
    seen = []
    start = time.monotonic()
    try:
        for raw in p.stdout:
            t, _, tok = raw.decode().rstrip("\n").partition(" ")
            seen.append({"t": float(t), "token": tok, "wall": time.time(),
                         "first": introspect(tok, client) if TOKEN_RE.match(tok) else None})
        rc = p.wait(timeout=seconds + 30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    elapsed = time.monotonic() - start
    final = introspect(seen[-1]["token"], client) if seen and TOKEN_RE.match(seen[-1]["token"]) else None
    final_wall = time.time()
    stderr = p.stderr.read().decode("utf-8", "replace")   # EOF: the refresher is gone too
    p.stderr.close()
    p.stdout.close()
    return {"rc": rc, "seen": seen, "final": final, "final_wall": final_wall, "elapsed": elapsed,
            "requests": client_requests(client) - before, "stderr": stderr}


def job_direct():
    return run_live_reader(BASIC_ID, [helper("token_reader"), "TOKEN", T_arg(15), T_ms(500)])


def job_grandchild():
    # sh runs sh, which runs token_reader: the reader is the program's
    # grandchild (";exit" keeps either shell from exec'ing its last command)
    reader = helper("token_reader")
    assert "'" not in reader
    inner = "'%s' TOKEN %s %s; exit $?" % (reader, T_arg(15), T_ms(500))
    return run_live_reader(POST_ID, ["sh", "-c", 'sh -c "$0"; exit $?', inner])


def job_fork():
    home = Home()
    r = home.run(helper("fork_reader"), "TOKEN", T_arg(8), T_ms(500))
    return {"rc": r.returncode, "stdout": r.stdout.decode(), "stderr": r.stderr.decode("utf-8", "replace")}


def job_threads():
    home = Home()
    r = home.run(helper("thread_reader"), "TOKEN", T_arg(10), *TOKEN_LEN, "8")
    out = {"rc": r.returncode, "stdout": r.stdout.decode(), "stderr": r.stderr.decode("utf-8", "replace")}
    for line in out["stdout"].splitlines():
        k, _, v = line.partition(" ")
        if k == "value":
            out.setdefault("values", []).append(v)
        elif k != "bad":
            out[k] = int(v)
    return out


def job_ctor_late():
    # ctor_main started 4.5 s after launch (one and a half lifetimes), as a
    # child of sh: by then the snapshot holds a newer value than the
    # environment it inherits
    home = Home()
    r = home.run("sh", "-c", 'sleep %s; "$0"; exit $?' % T_arg(4.5), helper("ctor_main"))
    return {"rc": r.returncode, "stdout": r.stdout.decode(), "stderr": r.stderr.decode("utf-8", "replace")}


RUNTIME_SECONDS = T(6)
PAUSE = T_arg(0.5)
PAUSE_MS = T_ms(500)
# each prints the value of TOKEN every 0.5 s for 6 s (stretched), one per line
RUNTIMES = {
    "c-getenv": [helper("token_reader"), "TOKEN", T_arg(6), PAUSE_MS],
    "python-os.environ": [sys.executable, "-c",
                          "import os, time\n"
                          "for _ in range(12):\n"
                          "    print(os.environ['TOKEN'], flush=True); time.sleep(%s)\n" % PAUSE],
    "python-os.getenv": [sys.executable, "-c",
                         "import os, time\n"
                         "for _ in range(12):\n"
                         "    print(os.getenv('TOKEN'), flush=True); time.sleep(%s)\n" % PAUSE],
    "python-ctypes-getenv": [sys.executable, "-c",
                             "import ctypes, time\n"
                             "libc = ctypes.CDLL(None); libc.getenv.restype = ctypes.c_char_p\n"
                             "for _ in range(12):\n"
                             "    print(libc.getenv(b'TOKEN').decode(), flush=True); time.sleep(%s)\n" % PAUSE],
    "sh": ["sh", "-c", 'i=0; while [ $i -lt 12 ]; do echo "$TOKEN"; sleep %s; i=$((i+1)); done' % PAUSE],
    "bash": ["bash", "-c", 'for i in $(seq 12); do echo "$TOKEN"; sleep %s; done' % PAUSE],
    "perl": ["perl", "-e", '$| = 1; for (1..12) { print "$ENV{TOKEN}\\n"; select(undef, undef, undef, %s) }'
             % PAUSE],
    "node": ["node", "-e", "let n = 0; const t = setInterval(() => { console.log(process.env.TOKEN); "
                           "if (++n >= 12) clearInterval(t); }, %s);" % PAUSE_MS],
}
JAVA_SRC = ("public class FreshEnv { public static void main(String[] a) throws Exception {"
            " for (int i = 0; i < 12; i++) { System.out.println(System.getenv(\"TOKEN\"));"
            " Thread.sleep(%s); } } }\n" % PAUSE_MS)
# what each runtime sees: True = fresh values, False = the launch value only
FRESH_RUNTIMES = {"c-getenv": True, "python-ctypes-getenv": True, "node": True,
                  "python-os.environ": False, "python-os.getenv": False, "sh": False, "bash": False,
                  "perl": False, "java": False}


def job_runtime(name):
    home = Home()
    if name == "java":
        src = os.path.join(home.dir, "FreshEnv.java")
        with open(src, "w") as f:
            f.write(JAVA_SRC)
        prog = ["java", src]
    else:
        prog = RUNTIMES[name]
    # a runtime that copies its environment is refused under bare --fresh
    # (tests/fresh/test_modes.py): run it anyway, to show what it sees
    r = home.run(*prog, opts=[] if name in ("c-getenv", "node") else ["--allow-launch-values"])
    out = r.stdout.decode("utf-8", "replace")
    if name == "c-getenv":
        values = [v for _, v in reader_lines(out)]
    else:
        values = out.split()
    return {"rc": r.returncode, "values": values, "stderr": r.stderr.decode("utf-8", "replace")}


def runtimes_available():
    names = [n for n in RUNTIMES if shutil.which(RUNTIMES[n][0])]
    if shutil.which("java"):
        names.append("java")
    return names


LONG_JOBS = {"direct": job_direct, "grandchild": job_grandchild, "fork": job_fork, "threads": job_threads,
             "ctor_late": job_ctor_late}
for _rt in list(RUNTIMES) + ["java"]:
    LONG_JOBS["runtime:" + _rt] = (lambda n: lambda: job_runtime(n))(_rt)


def job(name):
    return JOBS[name].result(timeout=120)


# --- the tests ------------------------------------------------------------------

class FreshTest(unittest.TestCase):
    maxDiff = None

    def check(self, r, code):
        self.assertEqual(r.returncode, code, "exit %d, expected %d\nstdout: %r\nstderr: %r"
                         % (r.returncode, code, r.stdout[:2000], r.stderr[:3000]))
        return r

    def assertToken(self, v, what="value"):
        self.assertTrue(v is not None and TOKEN_RE.match(v), "%s %r is not an access token" % (what, v))

    def check_reader(self, res, seconds):
        """At least 4 distinct tokens over 15 s, each active at the server
        when first seen, the last one still active after the program ended
        (unless its lifetime is over by then)."""
        ctx = "seen: %s\nstderr: %s" % ([(s["t"], s["token"]) for s in res["seen"]], res["stderr"][-3000:])
        self.assertEqual(res["rc"], 0, ctx)
        self.assertGreaterEqual(res["elapsed"], seconds - T(1), ctx)
        tokens = [s["token"] for s in res["seen"]]
        for s in res["seen"]:
            self.assertToken(s["token"])
            self.assertTrue(s["first"]["active"], "token %s (seen at %.2f s) not active at the server: %r\n%s"
                            % (s["token"], s["t"], s["first"], ctx))
        self.assertEqual(len(tokens), len(set(tokens)), "a token came back: " + ctx)
        self.assertNotIn("old", tokens)
        self.assertGreaterEqual(len(tokens), 4, ctx)
        # the refresher keeps up: no gap between tokens longer than a lifetime
        times = [s["t"] for s in res["seen"]] + [seconds]
        self.assertLessEqual(max(b - a for a, b in zip(times, times[1:])), ACCESS_TTL + T(0.6), ctx)
        last = res["seen"][-1]
        exp = last["first"].get("exp")
        if not res["final"]["active"]:
            self.assertIsNotNone(exp)
            self.assertGreaterEqual(res["final_wall"], exp - T(0.5),
                                    "the last token %s was revoked before it expired (exp %s, now %.2f): %r"
                                    % (last["token"], exp, res["final_wall"], res["final"]))

    def test_a_reader_sees_fresh_tokens(self):
        """A C program reading its token every 0.5 s for 15 s sees at least
        4 distinct tokens, all valid, and the token requests are what 3 s
        lifetimes call for (one at launch and one every ~2 s)."""
        res = job("direct")
        self.check_reader(res, READ_SECONDS)
        # one at launch, one per two thirds of a lifetime over the run, and
        # one for timing (the launch refresh comes ~0.5 s before the program
        # starts, and rotations follow the server's whole-second expiries):
        # 15/2 + 2, rounded up, at any time scale. Measured: 9.
        budget = math.ceil(READ_SECONDS / (ACCESS_TTL * 2 / 3) + 2)
        self.assertLessEqual(res["requests"], budget,
                             "%d token requests for a %g s run of %d s tokens (at most %d)"
                             % (res["requests"], READ_SECONDS, ACCESS_TTL, budget))
        # every token requested was handed to the program
        self.assertLessEqual(res["requests"], len(res["seen"]) + 1, res["seen"])

    def test_b_grandchild_sees_fresh_tokens(self):
        self.check_reader(job("grandchild"), READ_SECONDS)

    def test_b_forked_child_sees_fresh_tokens(self):
        res = job("fork")
        self.assertEqual(res["rc"], 0, res)
        values = [v for _, v in reader_lines(res["stdout"])]
        for v in values:
            self.assertToken(v)
        self.assertGreaterEqual(len(distinct(values)), 3, res)

    def test_c_exit_status_passed_through(self):
        home = Home()
        marker = "exit-" + os.path.basename(home.dir)
        r = home.run("sh", "-c", "exit 3", marker)
        self.check(r, 3)
        r = home.run("sh", "-c", 'kill -TERM $$; sleep 5', marker)
        self.check(r, -signal.SIGTERM)
        self.assertEqual(wait_no_refresher(marker), [])

    def test_c_program_keeps_hive_run_pid(self):
        home = Home()
        p = subprocess.Popen(home.argv(sys.executable, "-c", "import os; print(os.getpid())",
                                       opts=["--allow-launch-values"]),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=home.env, cwd=home.dir)
        out, err = p.communicate(timeout=TIMEOUT)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(int(out), p.pid, "the program does not run in hive-run's PID")

    def test_d_refresher_named_before_the_program_starts(self):
        """The program's very first instruction finds its hive-refresher
        under that name (hive-run waits until it has it), however late the
        refresher process itself gets to run."""
        home = Home()
        marker = "named-" + os.path.basename(home.dir)
        count = ('n=0; for f in $(grep -lx hive-refresher /proc/[0-9]*/comm 2>/dev/null); do '
                 'grep -q "$0" "${f%/comm}/cmdline" 2>/dev/null && n=$((n+1)); done; echo $n')
        for _ in range(3):
            r = self.check(home.run("sh", "-c", count, marker), 0)
            self.assertEqual(r.stdout.decode().strip(), "1",
                             "hive-refreshers found when the program started: %r" % r.stdout)

    def test_d_no_refresher_left_after_sigkill(self):
        home = Home()
        marker = "kill-" + os.path.basename(home.dir)
        p = subprocess.Popen(home.argv(helper("token_reader"), "TOKEN", T_arg(60), T_ms(500), marker),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=home.env, cwd=home.dir)
        try:
            first = p.stdout.readline().decode()
            self.assertToken(first.partition(" ")[2].strip(), "first value")
            refreshers = live_refreshers(marker)
            self.assertEqual(len(refreshers), 1, "expected one hive-refresher, found %s" % refreshers)
            self.assertNotIn(refreshers[0], [p.pid])
            with open("/proc/%d/stat" % refreshers[0]) as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
            self.assertNotEqual(ppid, p.pid, "the refresher is the program's child")
            os.kill(p.pid, signal.SIGKILL)
            self.assertEqual(p.wait(timeout=10), -signal.SIGKILL)
            left = wait_no_refresher(marker, T(3))
            self.assertEqual(left, [], "hive-refresher %s still alive 3 s after SIGKILL of the program" % left)
        finally:
            reap(p)

    def test_d_last_values_kept_when_refresher_killed(self):
        """The refresher dies (SIGKILL) after the program has seen 2 tokens:
        the program runs on to its end and exits 0, and keeps reading the
        last value published, intact; nothing is published after."""
        home = Home()
        marker = "rkill-" + os.path.basename(home.dir)
        t0 = time.monotonic()
        p = subprocess.Popen(home.argv(helper("token_reader"), "TOKEN", T_arg(8), T_ms(500), marker),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=home.env, cwd=home.dir)
        snap = None
        try:
            before = []
            while len(before) < 2:
                line = p.stdout.readline().decode()
                self.assertTrue(line, "the program ended after %d token(s): %r" % (len(before), before))
                before.append(line.rstrip("\n").partition(" ")[2])
            snap = open_snapshot(p.pid)
            refreshers = live_refreshers(marker)
            self.assertEqual(len(refreshers), 1, "expected one hive-refresher, found %s" % refreshers)
            os.kill(refreshers[0], signal.SIGKILL)
            deadline = time.monotonic() + T(10)
            while live_refreshers(marker):
                self.assertLess(time.monotonic(), deadline, "hive-refresher survived SIGKILL")
                time.sleep(0.02)
            gen, published = snapshot_value(snap, "TOKEN")
            self.assertIsNone(p.poll(), "the program ended with its refresher")
            out, err = p.communicate(timeout=TIMEOUT)
            elapsed = time.monotonic() - t0
        finally:
            reap(p)
            if snap is not None:
                self.addCleanup(os.close, snap)
        err = err.decode("utf-8", "replace")
        tokens = before + [v for _, v in reader_lines(out.decode("utf-8", "replace"))]
        ctx = "tokens seen: %s\npublished at the kill: %s\nstderr: %s" % (tokens, published, err[-3000:])
        self.assertEqual(p.returncode, 0, ctx)
        self.assertGreaterEqual(elapsed, T(8), "the program did not run its %g s: %s" % (T(8), ctx))
        self.assertNotIn("Sanitizer", err, ctx)
        for v in tokens:
            self.assertToken(v, "a value the program read (%s)" % ctx)
        self.assertEqual(len(tokens), len(set(tokens)), "a value came back: " + ctx)
        self.assertEqual(tokens[-1], published, "the program's last value is not the last one published: " + ctx)
        self.assertEqual(snapshot_value(snap, "TOKEN"), (gen, published),
                         "a value was published after the refresher was killed: " + ctx)

    def test_e_constructor_sees_snapshot(self):
        """A library constructor that calls getenv() before the preload's own
        constructor has run gets the managed value (and no crash)."""
        home = Home()
        env = dict(home.env, LD_DEBUG="files")
        r = self.check(home.run(helper("ctor_main"), env=env), 0)
        out = dict(line.split(" ", 1) for line in r.stdout.decode().splitlines())
        self.assertToken(out["ctor"], "what the constructor saw")
        self.assertEqual(out["ctor"], out["environ"], "the constructor did not see the launch value")
        self.assertToken(out["now"])
        # the case is real: ctor_lib's constructor ran before the preload's
        inits = [ln.split("calling init:", 1)[1].strip() for ln in r.stderr.decode().splitlines()
                 if "calling init:" in ln]
        ctor = [i for i, x in enumerate(inits) if x.endswith("/libctor_lib.so")]
        pre = [i for i, x in enumerate(inits) if os.path.basename(x) == os.path.basename(HIVE_PRELOAD)]
        self.assertTrue(ctor and pre, inits)
        self.assertLess(ctor[-1], pre[-1], "libctor_lib's constructor ran after the preload's: %s" % inits)

    def test_e_constructor_sees_snapshot_not_environ(self):
        """Started 4.5 s in, the constructor gets the current value from the
        snapshot, not the stale one of the environment."""
        res = job("ctor_late")
        self.assertEqual(res["rc"], 0, res)
        out = dict(line.split(" ", 1) for line in res["stdout"].splitlines())
        self.assertToken(out["ctor"], "what the constructor saw")
        self.assertToken(out["environ"], "launch value")
        self.assertNotEqual(out["ctor"], out["environ"], "the constructor saw the launch value: %r" % res)

    def test_f_eight_threads_while_values_rotate(self):
        res = job("threads")
        self.assertEqual(res.get("invalid"), 0, res)
        self.assertEqual(res.get("changed"), 0, "a returned string changed afterwards: %r" % res)
        self.assertEqual(res["rc"], 0, res)
        self.assertGreaterEqual(res["distinct"], 3, res)
        self.assertGreater(res["reads"], 100000, res)
        for v in res["values"]:
            self.assertToken(v)

    def test_g_existing_ld_preload_is_kept(self):
        home = Home()
        noop = helper("libnoop_preload.so")
        cases = [(noop, noop + ":" + HIVE_PRELOAD), ("", HIVE_PRELOAD), (None, HIVE_PRELOAD)]
        for old, want in cases:
            with self.subTest(LD_PRELOAD=old):
                env = dict(home.env)
                if old is not None:
                    env["LD_PRELOAD"] = old
                r = self.check(home.run(helper("probe"), "LD_PRELOAD", "TOKEN", env=env), 0)
                lines = r.stdout.decode().splitlines()
                self.assertEqual(lines[0], "LD_PRELOAD getenv=%s secure=%s" % (want, want))
                self.assertToken(lines[1].split()[1].partition("=")[2])
        # both are loaded in the program
        env = dict(home.env, LD_PRELOAD=noop)
        maps = self.check(home.run("cat", "/proc/self/maps", env=env), 0).stdout.decode()
        self.assertIn(noop, maps)
        self.assertIn(os.path.realpath(HIVE_PRELOAD), maps)

    def assert_refused(self, home, prog, why):
        r = self.check(home.run(prog), EXIT_FAIL)
        err = r.stderr.decode()
        self.assertIn("--allow-launch-values", err)
        self.assertIn(why, err)
        return r

    def test_h_unreachable_targets_are_refused(self):
        home = Home()
        tmp = home.dir
        setuid = os.path.join(tmp, "setuid_probe")
        shutil.copy(helper("probe"), setuid)
        os.chmod(setuid, 0o4755)
        setgid = os.path.join(tmp, "setgid_probe")
        shutil.copy(helper("probe"), setgid)
        os.chmod(setgid, 0o2755)
        script = os.path.join(tmp, "static_script")
        with open(script, "w") as f:
            f.write("#!%s\n" % helper("static_prog"))
        os.chmod(script, 0o755)
        for prog, why in [(helper("static_prog"), "statically linked"), (setuid, "set-user-ID"),
                          (setgid, "set-group-ID"), (helper("fake_go"), "Go program"),
                          (script, "statically linked")]:
            with self.subTest(prog=os.path.basename(prog)):
                self.assert_refused(home, prog, why)
        if shutil.which("setcap"):
            capped = os.path.join(tmp, "capped_probe")
            shutil.copy(helper("probe"), capped)
            if subprocess.run(["setcap", "cap_net_raw+ep", capped], stderr=subprocess.DEVNULL).returncode == 0:
                with self.subTest(prog="file capabilities"):
                    self.assert_refused(home, capped, "file capabilities")

    def test_h_env_does_not_hide_a_static_program(self):
        """#!/usr/bin/env X, #!/usr/bin/env -S X ..., and env X as the
        command are judged by X, not by env (issue 12, item 13)."""
        home = Home()
        env_path = shutil.which("env")
        self.assertIsNotNone(env_path, "env(1) is not on PATH")
        env = dict(home.env, PATH=FRESH_BIN + os.pathsep + home.env.get("PATH", "/usr/bin:/bin"))
        scripts = {
            "env_plain": "#!%s static_prog\n" % env_path,
            "env_split": "#!%s -S static_prog TOKEN\n" % env_path,
            "env_split_opts": "#!%s -S -i PATH=%s static_prog\n" % (env_path, FRESH_BIN),
        }
        for name, text in scripts.items():
            path = os.path.join(home.dir, name)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o755)
            with self.subTest(script=name):
                r = self.check(home.run(path, env=env), EXIT_FAIL)
                self.assertIn("statically linked", r.stderr.decode(), r)
        for argv in [["env", "static_prog"], ["env", "-u", "HOME", "A=1", "static_prog", "TOKEN"],
                     ["env", "-i", "PATH=" + FRESH_BIN, "static_prog"], [env_path, "--", helper("static_prog")]]:
            with self.subTest(argv=argv):
                r = self.check(home.run(*argv, env=env), EXIT_FAIL)
                self.assertIn("statically linked", r.stderr.decode(), r)
        # env running a dynamic program is fine, and it sees the snapshot
        r = self.check(home.run("env", "A=1", "probe", "TOKEN", env=env), 0)
        self.assertRegex(r.stdout.decode(), r"^TOKEN getenv=[A-Za-z0-9_-]{20,200} ")

    def test_h_size_checked_with_what_fresh_adds(self):
        """An environment just under ARG_MAX that --fresh's LD_PRELOAD and
        HIVE_SNAPSHOT_FD push over is hive-run's own clear error (125), not
        a failed exec (126) (issue 12, item 13)."""
        home = Home()
        arg_max = os.sysconf("SC_ARG_MAX")
        argv = [HIVE_RUN, "--fresh", "-e", "TOKEN={{plain}}", "--", "true"]
        env = {k: v for k, v in home.env.items() if k in ("PATH", "HIVE_HOME", "LC_ALL", "HIVE_PRELOAD",
                                                          "ASAN_OPTIONS", "UBSAN_OPTIONS")}
        added = len("HIVE_SNAPSHOT_FD=3") + 1 + len("LD_PRELOAD=" + HIVE_PRELOAD) + 1 + 2 * 8
        target = arg_max - added // 2

        def total(e, token_len):
            # as hive-run counts: the program's argv and environment, with
            # TOKEN (a value of token_len bytes) added
            strings = sum(len(k) + len(v) + 2 for k, v in e.items()) + len("TOKEN=") + token_len + 1 + len("true") + 1
            return strings + (len(e) + 1 + 1 + 2) * 8

        # fill with the environment, and make up the rest with the secret,
        # which is big in the program's environment only (hive-run's own
        # must fit)
        i = 0
        while total(env, 0) + 100000 + 16 < target - 60000:
            env["FILL%03d" % i] = "x" * 100000
            i += 1
        secret = "k" * (target - total(env, 0))
        self.assertTrue(40000 < len(secret) < 120000, len(secret))
        self.assertEqual(total(env, len(secret)), target)
        home.cred("add", "plain", stdin="api_key=%s\n" % secret)
        r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=TIMEOUT, cwd=home.dir)
        self.check(r, EXIT_FAIL)
        self.assertIn("ARG_MAX", r.stderr.decode())
        self.assertNotIn(secret, r.stderr.decode())
        # without --fresh the same environment runs
        r = subprocess.run([a for a in argv if a != "--fresh"], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT, cwd=home.dir)
        self.check(r, 0)

    def test_h_allow_launch_values(self):
        home = Home()
        r = self.check(home.run(helper("static_prog"), "TOKEN", opts=["--allow-launch-values"]), 0)
        line = r.stdout.decode().strip()
        m = re.fullmatch(r"TOKEN getenv=(\S+) secure=(\S+)", line)
        self.assertTrue(m, line)
        self.assertEqual(m.group(1), m.group(2))
        self.assertToken(m.group(1))
        self.assertTrue(introspect(m.group(1))["active"])
        self.assertIn("launch-time values", r.stderr.decode())

    def test_i_runtimes(self):
        """Which runtimes see fresh values (the docs quote this)."""
        names = runtimes_available()
        seen = {}
        for name in names:
            res = job("runtime:" + name)
            with self.subTest(runtime=name):
                self.assertEqual(res["rc"], 0, res)
                self.assertGreaterEqual(len(res["values"]), 2 if name == "c-getenv" else 10, res)
                for v in res["values"]:
                    self.assertToken(v, name)
                n = len(distinct(res["values"]))
                seen[name] = n
                if FRESH_RUNTIMES[name]:
                    self.assertGreaterEqual(n, 2, "%s saw only the launch value: %r" % (name, res))
                else:
                    self.assertEqual(n, 1, "%s saw %d values: %r" % (name, n, res))
        sys.stderr.write("\ndistinct values in %d s by runtime: %s\n" % (RUNTIME_SECONDS, seen))

    def test_j_preload_exports_and_links(self):
        nm = subprocess.run(["nm", "-D", "--defined-only", HIVE_PRELOAD], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, check=True).stdout.decode()
        syms = {ln.split()[-1] for ln in nm.splitlines() if ln.strip() and ln.split()[-2] not in ("A",)}
        self.assertEqual(syms, {"getenv", "secure_getenv"}, nm)
        dyn = subprocess.run(["readelf", "-d", HIVE_PRELOAD], stdout=subprocess.PIPE, check=True).stdout.decode()
        needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dyn))
        self.assertTrue(needed <= {"libc.so.6", "libdl.so.2"} and "libc.so.6" in needed, needed)

    def test_j_secure_getenv(self):
        home = Home()
        env = dict(home.env, HIVE_TEST_PLAIN="plain value")
        r = self.check(home.run(helper("probe"), "TOKEN", "HIVE_TEST_PLAIN", "HIVE_TEST_UNSET", env=env), 0)
        lines = r.stdout.decode().splitlines()
        m = re.fullmatch(r"TOKEN getenv=(\S+) secure=(\S+)", lines[0])
        self.assertTrue(m, lines)
        self.assertToken(m.group(1))
        self.assertEqual(m.group(1), m.group(2))
        self.assertEqual(lines[1], "HIVE_TEST_PLAIN getenv=plain value secure=plain value")
        self.assertEqual(lines[2], "HIVE_TEST_UNSET getenv=(null) secure=(null)")


class SnapshotIntegrityTest(unittest.TestCase):
    """The program and its children can only read the snapshot (issue 12,
    item 1)."""

    def test_program_cannot_write_the_snapshot(self):
        home = Home()
        # the attacker is a child of the program, as in the review
        r = home.run("sh", "-c", '"$0" TOKEN; exit $?', helper("tamper"))
        out = r.stdout.decode("utf-8", "replace")
        ctx = "exit %d\nstdout:\n%s\nstderr: %s" % (r.returncode, out, r.stderr.decode("utf-8", "replace")[-2000:])
        self.assertEqual(r.returncode, 0, ctx)
        lines = out.splitlines()
        attacks = [ln.split()[0] for ln in lines if not ln.startswith("value")]
        for name in ["hijack-inherited", "hijack-reopened", "pwrite-inherited", "mmap-write-inherited", "mprotect-inherited", "proc-mem-inherited",
                     "ftruncate-inherited", "reopen-rdwr", "pwrite-reopened", "mmap-write-reopened",
                     "mprotect-reopened", "proc-mem-reopened", "fallocate-punch-reopened",
                     "ftruncate-shrink-reopened", "ftruncate-grow-reopened", "add-seal-reopened",
                     "refresher-mem", "refresher-fds"]:
            # reopen-rdwr may succeed (Linux allows it): what it gives must write nothing
            if name != "reopen-rdwr":
                self.assertIn(name, attacks, ctx)
        for ln in lines:
            if ln.startswith("reopen-rdwr") or ln.startswith("value"):
                continue
            self.assertRegex(ln, r"^\S+ blocked ", ctx)
        for check in ["value-after-inherited", "value-after-reopened", "value"]:
            self.assertIn(check + " unchanged", lines, ctx)


def craft_snapshot(size, slots, data, nvars=None, sealed=True):
    """A memfd laid out as preload/snapshot.h says, with what a forger
    chooses in it: slots [(name, offset, launch)], data {offset: bytes}.
    Returns (fd, writable mmap of it)."""
    import fcntl
    import mmap
    fd = os.memfd_create("crafted", os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, size)
    m = mmap.mmap(fd, size)
    struct.pack_into("<QIIQQQQ", m, 0, SNAP_MAGIC, SNAP_VERSION, len(slots) if nvars is None else nvars,
                     size, 1, 0, 0)
    for i, (name, off, launch) in enumerate(slots):
        struct.pack_into("<120sQQ", m, 48 + SNAP_SLOT * i, name.encode(), off, launch)
    for off, b in data.items():
        m[off:off + len(b)] = b
    if sealed:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
    return fd, m


class CraftedSnapshotTest(unittest.TestCase):
    """Whatever file is passed as HIVE_SNAPSHOT_FD, by anyone, the preload
    reads nothing outside what it mapped and never faults (item 1)."""

    LAUNCH = b"launch-value"

    def env(self, fd, **extra):
        env = base_env(LD_PRELOAD=HIVE_PRELOAD, HIVE_SNAPSHOT_FD=str(fd), TOKEN=self.LAUNCH.decode())
        env.update(extra)
        return env

    def probe(self, fd, *names):
        r = subprocess.run([helper("probe"), *names], env=self.env(fd), pass_fds=(fd,), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r)
        return [ln.split(" ", 1)[1] for ln in r.stdout.decode("latin-1").splitlines()]

    def reader_then(self, fd, change, name="TOKEN"):
        """token_reader under the crafted snapshot; change() once it has
        read once; (exit status, values it saw)."""
        rc, out, _ = run_during([helper("token_reader"), name, T_arg(1.5), T_ms(50)], change, first_line=True,
                                env=self.env(fd), pass_fds=(fd,))
        return rc, [v for _, v in reader_lines(out)]

    def test_a_well_formed_one_is_read(self):
        """The crafted files below are read at all: a well-formed one answers."""
        size = SNAP_DATA + 4096
        fd, m = craft_snapshot(size, [("TOKEN", SNAP_DATA + 64, SNAP_DATA)],
                               {SNAP_DATA: self.LAUNCH + b"\0", SNAP_DATA + 64: b"crafted-value\0"})
        self.addCleanup(os.close, fd)
        self.assertEqual(self.probe(fd, "TOKEN"), ["getenv=crafted-value secure=crafted-value"])

    def test_b_value_running_to_the_end_of_the_file(self):
        """A value with no NUL before the end of the file (a page boundary)
        is returned ending there, not with what lies after the mapping."""
        size = (SNAP_DATA + 4096 + 4095) & ~4095
        fd, m = craft_snapshot(size, [("TOKEN", size - 16, SNAP_DATA)],
                               {SNAP_DATA: self.LAUNCH + b"\0", size - 16: b"A" * 16})
        self.addCleanup(os.close, fd)
        self.assertEqual(self.probe(fd, "TOKEN"), ["getenv=%s secure=%s" % ("A" * 16, "A" * 16)])

    def test_c_offsets_out_of_bounds(self):
        size = SNAP_DATA + 4096
        for off, launch in [(size, SNAP_DATA), (1 << 62, SNAP_DATA), (SNAP_DATA + 64, 1 << 62), (8, SNAP_DATA)]:
            with self.subTest(offset=off, launch=launch):
                fd, m = craft_snapshot(size, [("TOKEN", off, launch)], {SNAP_DATA: self.LAUNCH + b"\0"})
                self.addCleanup(os.close, fd)
                self.assertEqual(self.probe(fd, "TOKEN"), ["getenv=launch-value secure=launch-value"])

    def test_d_bad_headers_are_ignored(self):
        size = SNAP_DATA + 4096
        for nvars, sealed in [(SNAP_SLOTS + 1, True), (1 << 31, True), (1, False)]:
            with self.subTest(nvars=nvars, sealed=sealed):
                fd, m = craft_snapshot(size, [("TOKEN", SNAP_DATA + 64, SNAP_DATA)],
                                       {SNAP_DATA: self.LAUNCH + b"\0", SNAP_DATA + 64: b"crafted\0"},
                                       nvars=nvars, sealed=sealed)
                self.addCleanup(os.close, fd)
                self.assertEqual(self.probe(fd, "TOKEN"), ["getenv=launch-value secure=launch-value"])

    def test_e_truncated_under_the_reader(self):
        """A file that can shrink would SIGBUS the reader: it is not used."""
        size = SNAP_DATA + 8192
        fd, m = craft_snapshot(size, [("TOKEN", SNAP_DATA + 4096, SNAP_DATA)],
                               {SNAP_DATA: self.LAUNCH + b"\0", SNAP_DATA + 4096: b"crafted\0"}, sealed=False)
        self.addCleanup(os.close, fd)
        rc, values = self.reader_then(fd, lambda: os.ftruncate(fd, 4096))
        self.assertEqual(rc, 0, "the reader died (%d) when the file shrank: %r" % (rc, values))
        self.assertEqual(values, ["launch-value"])

    def test_f_header_changed_under_the_reader(self):
        """The size and the number of variables are read once: changing them
        afterwards (the forger keeps a writable mapping) reaches nothing
        outside the mapping."""
        size = SNAP_DATA + 4096
        for what in ["size", "nvars"]:
            with self.subTest(what=what):
                # for nvars: a managed-looking name that is not there, so the
                # reader walks all the slots
                name = "TOKEN" if what == "size" else "TOKEZ"
                fd, m = craft_snapshot(size, [(name, SNAP_DATA + 64, SNAP_DATA)],
                                       {SNAP_DATA: self.LAUNCH + b"\0", SNAP_DATA + 64: b"crafted\0"})
                self.addCleanup(os.close, fd)

                def change():
                    if what == "size":
                        struct.pack_into("<Q", m, 16, 1 << 50)
                        struct.pack_into("<Q", m, 48 + 120, 1 << 45)
                    else:
                        struct.pack_into("<I", m, 12, 0xFFFFFFFF)
                rc, values = self.reader_then(fd, change)
                self.assertEqual(rc, 0, "the reader died (%d): %r" % (rc, values))
                self.assertEqual(values, ["crafted", "launch-value"] if what == "size" else ["launch-value"])


def main():
    hivetest.main(binaries=["hive-run", "hive-cred", "libhive-preload.so"],
                  prerequisite=lambda: missing_prerequisite() or fresh_helpers_missing())


def fresh_helpers_missing():
    try:
        check_binaries()
    except RuntimeError as e:
        return str(e)
    return None


if __name__ == "__main__":
    main()
