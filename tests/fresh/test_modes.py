#!/usr/bin/env python3
"""hive-run --file and --fresh --on-refresh, tested with real programs
against the OAuth2 test server's short-lived tokens.

Run:  python3 tests/fresh/test_modes.py [unittest options]

Needs `node` and the server's packages (`npm ci --prefix tests/oauth`),
like tests/fresh/test_fresh.py; without them it fails saying why.

Environment (ctest sets them): HIVE_RUN, HIVE_CRED, HIVE_PRELOAD (see
tests/lib/hivetest.py); HIVE_TEST_TIME_SCALE stretches the token lifetime
(3 s) and every duration below with it.

What is proved here:
- a Python program reading os.environ under --on-refresh restart sees each
  new token, one start per token, and its starts come one after another;
- a bash loop reading a --file by path sees each new token, whole, never
  going back;
- a program reloading on SIGHUP (--on-refresh signal:HUP) gets one signal
  per refresh, and finds the new token in its --file when it does;
- under restart hive-run passes signals on, and exits with the program's
  status (dying of the program's signal, as a shell reports 128+N);
- no file is left after SIGKILL of the program, of hive-run, or of both
  (the path /proc/<holder>/fd/<n> goes with the holder process, and no
  file is made in /dev/shm, $XDG_RUNTIME_DIR or $TMPDIR);
- bare --fresh refuses python, sh, bash scripts, perl and java, with a
  hint naming --on-refresh and --file; bad values of the new options exit
  125 with an error.
"""

import fcntl
import json
import os
import re
import resource
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import termios
import threading
import time
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lib"))
import hivetest  # noqa: E402  (tests/lib/hivetest.py)

HIVE_RUN = hivetest.HIVE_RUN
HIVE_CRED = hivetest.HIVE_CRED
EXIT_FAIL = 125
ACCESS_TTL = hivetest.scaled_int(3)
UNIT = ACCESS_TTL / 3.0
TIMEOUT = hivetest.scaled(60)
CLIENT, SECRET = "hive-post", "post-secret-123"
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{20,200}\Z")
STATIC_TOKEN = "static-token-0123456789"

_server = None
_tmp = None


def T(seconds):
    """seconds of the timeline, stretched with the token lifetime."""
    return seconds * UNIT


def setUpModule():
    global _server, _tmp
    why = hivetest.missing_oauth_server()
    if why:
        raise RuntimeError("cannot run: " + why)
    for path in (HIVE_RUN, HIVE_CRED):
        if not os.path.exists(path):
            raise RuntimeError("%s not found" % path)
    _tmp = tempfile.mkdtemp(prefix="hive-modes-test-")
    _server = hivetest.start_oauth_server(_tmp, ACCESS_TTL)


def tearDownModule():
    if _server is not None:
        _server.close()
    if _tmp:
        shutil.rmtree(_tmp, ignore_errors=True)


def token_requests():
    return _server.stats()["by_client"].get(CLIENT, 0)


def active(token):
    status, body = _server.request("POST", "/token/introspection",
                                   {"token": token, "client_id": CLIENT, "client_secret": SECRET})
    return status == 200 and body.get("active") is True


class Home:
    """A Hive home holding 'tok' (OAuth2, access token long expired, a
    fresh refresh token) and 'st' (a static token that never expires)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="home-", dir=_tmp)
        self.env = hivetest.clean_env(os.path.join(self.dir, "home"))
        asan = self.env.get("ASAN_OPTIONS", "")
        self.env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "verify_asan_link_order=0"
        self.cred("init")
        self.cred("add", "idp", "--type", "custom", stdin="token_url=%s\nclient_id=%s\nclient_secret=%s\n"
                  % (_server.token_url, CLIENT, SECRET))
        self.cred("add", "tok", "--type", "oauth2", "--provider-id", "idp", "--auto-refresh",
                  "--expires", "access_token=2020-01-01T00:00:00Z",
                  stdin="access_token=old\nrefresh_token=%s\n" % _server.mint(CLIENT))
        self.cred("add", "st", stdin="token=%s\n" % STATIC_TOKEN)

    def cred(self, *args, stdin=""):
        r = hivetest.run([HIVE_CRED, *args], self.env, stdin=stdin, timeout=TIMEOUT, cwd=self.dir)
        if r.returncode != 0:
            raise RuntimeError("hive-cred %s: exit %d: %r" % (" ".join(args), r.returncode, r.stderr))

    def popen(self, opts, prog):
        return subprocess.Popen([HIVE_RUN, *opts, "--", *prog], env=self.env, cwd=self.dir,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run(self, opts, prog, timeout=TIMEOUT):
        return hivetest.run([HIVE_RUN, *opts, "--", *prog], self.env, timeout=timeout, cwd=self.dir)


class Lines:
    """The lines a process prints, read by a thread as they come."""

    def __init__(self, p):
        self.p = p
        self.lines = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for raw in self.p.stdout:
            with self.cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)
            self.cond.notify_all()

    def wait_for(self, pred, timeout=TIMEOUT):
        """The first line pred accepts (lines read so far included)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            i = 0
            while True:
                while i < len(self.lines):
                    line = self.lines[i]
                    i += 1
                    if line is not None and pred(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or (self.lines and self.lines[-1] is None):
                    raise AssertionError("no such line; got %r" % self.lines)
                self.cond.wait(left)

    def done(self):
        self.thread.join(TIMEOUT)
        self.p.stdout.close()
        return [line for line in self.lines if line is not None]


def finish(p, timeout=TIMEOUT):
    """p's exit status and stderr; p is killed if it outlives timeout."""
    try:
        p.wait(timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read().decode("utf-8", "replace")
    p.stderr.close()
    return p.returncode, err


def gone(pid):
    """Whether a process has ended (a zombie counts: it holds no files)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def wait_gone(pids, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(gone(p) for p in pids):
        time.sleep(0.02)
    return [p for p in pids if not gone(p)]


def holder_of(path):
    m = re.fullmatch(r"/proc/(\d+)/fd/(\d+)", path)
    if not m:
        raise AssertionError("not a /proc/PID/fd/N path: %r" % path)
    return int(m.group(1))


def shm_entries():
    """What of hive's is in /dev/shm (shared with every other process)."""
    return {e for e in os.listdir("/dev/shm") if "hive" in e.lower()} if os.path.isdir("/dev/shm") else set()


class ModesTest(unittest.TestCase):
    maxDiff = None

    def assertToken(self, v):
        self.assertTrue(v is not None and TOKEN_RE.match(v) and v != "old", "not an access token: %r" % v)

    # --- --on-refresh restart -------------------------------------------------

    def test_restart_python_sees_each_token(self):
        """Python copies os.environ at start: each refresh restarts it with
        the new token; hive-run passes SIGTERM on and dies of it too."""
        home = Home()
        prog = [sys.executable, "-c", "import os, time\n"
                "f = os.environ['TOKEN_FILE']\n"
                "print(os.getpid(), os.environ['TOKEN'], f, open(f).read(), flush=True)\ntime.sleep(600)\n"]
        p = home.popen(["--fresh", "--on-refresh", "restart", "-e", "TOKEN={{tok}}", "--file", "TOKEN_FILE={{tok}}"],
                       prog)
        lines = Lines(p)
        time.sleep(T(10))
        p.send_signal(signal.SIGTERM)
        rc, err = finish(p)
        starts = [line.split() for line in lines.done()]
        ctx = "starts: %r\nstderr: %s" % (starts, err[-3000:])
        self.assertEqual(rc, -signal.SIGTERM, ctx)
        self.assertGreaterEqual(len(starts), 4, ctx)
        pids = [s[0] for s in starts]
        tokens = [s[1] for s in starts]
        for t in tokens:
            self.assertToken(t)
        self.assertEqual(len(set(pids)), len(pids), "a start was not a new process: " + ctx)
        self.assertEqual(len(set(tokens)), len(tokens), "a start got a token it had before: " + ctx)
        # the file: the same path for every start, holding what the environment holds
        self.assertEqual(len({s[2] for s in starts}), 1, ctx)
        self.assertEqual([s[3] for s in starts], tokens, ctx)
        self.assertTrue(active(tokens[-1]) or T(10) > ACCESS_TTL, ctx)

    def test_restart_kill_signal_and_timeout(self):
        """--kill-signal INT reaches the program at each restart; one that
        ignores it is killed after --kill-timeout, and restarted all the same.
        Each start runs until a common end (wall clock), then ends on its own."""
        home = Home()
        run = ("print('start', os.environ['TOKEN'], flush=True)\n"
               "while time.time() < float(sys.argv[1]): time.sleep(0.02)\n")
        polite = [sys.executable, "-c", "import os, signal, sys, time\n"
                  "def stop(*a):\n    print('INT', flush=True); sys.exit(0)\n"
                  "signal.signal(signal.SIGINT, stop)\n" + run]
        stubborn = [sys.executable, "-c", "import os, signal, sys, time\n"
                    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + run]
        for prog, opts in ((polite, ["--kill-signal", "INT"]), (stubborn, ["--kill-timeout", "%g" % T(0.3)])):
            with self.subTest(opts=opts):
                end = "%f" % (time.time() + T(8))
                r = home.run(["--fresh", "--on-refresh", "restart", *opts, "-e", "TOKEN={{tok}}"], prog + [end])
                out = r.stdout.decode().splitlines()
                ctx = "%r\n%s" % (out, r.stderr.decode()[-2000:])
                self.assertEqual(r.returncode, 0, ctx)
                starts = [line.split()[1] for line in out if line.startswith("start")]
                self.assertGreaterEqual(len(starts), 3, ctx)
                self.assertEqual(len(set(starts)), len(starts), ctx)
                if prog is polite:
                    # every start but the last was stopped by SIGINT; one
                    # may instead have reached the common end just as its
                    # restart came (then the next start ends at once)
                    stopped = sum(1 for a, b in zip(out, out[1:]) if a.startswith("start") and b == "INT")
                    self.assertEqual(out.count("INT"), stopped, ctx)   # an INT only ever stops a start
                    self.assertGreaterEqual(stopped, len(starts) - 2, ctx)
                    self.assertGreaterEqual(stopped, 2, ctx)

    def test_restart_passes_signals_and_status(self):
        home = Home()
        prog = [sys.executable, "-c", "import os, signal, sys, time\n"
                "def say(n, f):\n    print(signal.Signals(n).name, flush=True)\n"
                "for s in (signal.SIGUSR1, signal.SIGHUP, signal.SIGWINCH, signal.SIGQUIT):\n"
                "    signal.signal(s, say)\n"
                "signal.signal(signal.SIGUSR2, lambda n, f: sys.exit(7))\n"
                "print('ready', os.getpid(), os.environ['X'], flush=True)\n"
                "while True: time.sleep(0.05)\n"]
        opts = ["--fresh", "--on-refresh", "restart", "-e", "X={{st.token}}"]
        p = home.popen(opts, prog)
        lines = Lines(p)
        ready = lines.wait_for(lambda line: line.startswith("ready")).split()
        self.assertEqual(ready[2], STATIC_TOKEN)
        self.assertNotEqual(int(ready[1]), p.pid, "under restart the program is hive-run's child")
        for sig in (signal.SIGUSR1, signal.SIGHUP, signal.SIGWINCH, signal.SIGQUIT):
            p.send_signal(sig)
            lines.wait_for(lambda line, s=sig: line == s.name, timeout=T(5))
        p.send_signal(signal.SIGUSR2)
        rc, err = finish(p)
        lines.done()
        self.assertEqual(rc, 7, err)
        # a program killed: hive-run dies of the same signal (a shell says 137)
        p = home.popen(opts, prog)
        lines = Lines(p)
        pid = int(lines.wait_for(lambda line: line.startswith("ready")).split()[1])
        os.kill(pid, signal.SIGKILL)
        rc, err = finish(p)
        lines.done()
        self.assertEqual(rc, -signal.SIGKILL, err)
        r = subprocess.run(["sh", "-c", '"$@"; echo "status $?"', "sh", HIVE_RUN, *opts, "--", "sh", "-c",
                            "kill -KILL $$"], env=home.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=TIMEOUT)
        self.assertEqual(r.stdout.decode().strip(), "status 137", r.stderr)
        # a program that ends on its own: its status
        r = home.run(opts, [sys.executable, "-c", "import sys; sys.exit(3)"])
        self.assertEqual(r.returncode, 3, r.stderr)
        r = home.run(opts, ["no-such-program-here"])
        self.assertEqual(r.returncode, 127, r.stderr)

    def test_restart_terminal_signal_reaches_the_program_once(self):
        """^C on a terminal goes to the whole foreground process group, the
        program included: hive-run does not send it a second time."""
        home = Home()
        prog = [sys.executable, "-c", "import os, signal, sys, time\n"
                "n = 0\n"
                "def count(*a):\n    global n; n += 1\n"
                "signal.signal(signal.SIGINT, count)\n"
                "print('ready', flush=True)\n"
                "while n == 0: time.sleep(0.02)\n"
                "time.sleep(%g)\nprint('interrupts', n, flush=True)\n" % T(1)]
        master, slave = os.openpty()
        p = subprocess.Popen([HIVE_RUN, "--fresh", "--on-refresh", "restart", "-e", "X={{st.token}}", "--", *prog],
                             env=home.env, cwd=home.dir, stdin=slave, stdout=slave, stderr=slave,
                             start_new_session=True,
                             preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        os.close(slave)
        out = b""
        try:
            deadline = time.monotonic() + TIMEOUT
            while b"ready" not in out and time.monotonic() < deadline:
                out += os.read(master, 1024)
            os.write(master, b"\x03")   # ^C: SIGINT from the terminal
            while b"interrupts" not in out or not out.endswith(b"\n"):
                try:
                    chunk = os.read(master, 1024)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            p.wait(TIMEOUT)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            os.close(master)
        text = out.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, text)
        self.assertIn("interrupts 1\r\n", text)

    # --- --file -------------------------------------------------------------

    def test_file_bash_loop_sees_each_token_whole(self):
        """bash opens the file again on every loop: each new token, whole."""
        home = Home()
        script = ('end=$((SECONDS + %d)); while [ $SECONDS -lt $end ]; do '
                  't=$(<"$TOKEN_FILE"); echo "$t"; sleep 0.02; done' % int(round(T(10)) + 1))
        r = home.run(["--fresh", "--file", "TOKEN_FILE={{tok}}"], ["bash", "-c", script])
        out = r.stdout.decode().split()
        ctx = "%r\n%s" % (sorted(set(out)), r.stderr.decode()[-2000:])
        self.assertEqual(r.returncode, 0, ctx)
        seq = []
        for t in out:
            self.assertToken(t)     # whole: a torn read would not be a token
            if not seq or seq[-1] != t:
                self.assertNotIn(t, seq, "a token came back: " + ctx)
                seq.append(t)
        self.assertGreaterEqual(len(seq), 4, ctx)
        lens = {len(t) for t in seq}
        self.assertEqual(len(lens), 1, ctx)

    def test_file_without_fresh(self):
        """The file: the rendered template, mode 0400, in memory, the same
        path for a child that opens it again; gone when the program ends."""
        home = Home()
        r = home.run(["--file", "CRED={\"token\": \"{{st.token}}\"}"],
                     [sys.executable, "-c", "import os, stat, subprocess\n"
                      "p = os.environ['CRED']\nst = os.stat(p)\n"
                      "print(p, oct(stat.S_IMODE(st.st_mode)), os.readlink(p))\n"
                      "print(open(p).read())\n"
                      "print(subprocess.run(['cat', p], capture_output=True, text=True).stdout)\n"])
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.decode().splitlines()
        path, mode, target = lines[0].split(" ", 2)
        self.assertEqual(mode, "0o400")
        self.assertTrue(target.startswith("/memfd:"), target)
        self.assertEqual(lines[1], '{"token": "%s"}' % STATIC_TOKEN)
        self.assertEqual(lines[2], lines[1])
        self.assertEqual(wait_gone([holder_of(path)], T(5)), [])
        self.assertFalse(os.path.exists(path))
        # the usual limit of 1024 open files, and less: the holder fits in 64
        r = subprocess.run([HIVE_RUN, "--file", "F={{st.token}}", "--", "sh", "-c", 'cat "$F"'], env=home.env,
                           cwd=home.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT,
                           preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)))
        self.assertEqual((r.returncode, r.stdout.decode()), (0, STATIC_TOKEN), r.stderr)

    def test_file_readable_by_the_user_alone(self):
        """As a user without privileges (root may open any process's
        descriptors, so a run as root drops to nobody with setpriv): the
        program reads its file, and so does another process of the same
        user; as root, also: another user cannot while it exists."""
        root = os.getuid() == 0
        setpriv = shutil.which("setpriv")
        self.assertTrue(setpriv or not root, "setpriv (util-linux) is not installed")

        def user(uid):
            return [setpriv, "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups", "--inh-caps=-all"] \
                if root else []

        top = hivetest.temp_dir(self, "hive-modes-user-")   # outside _tmp, which is 0700
        os.chmod(top, 0o755)
        if root:
            os.chown(top, 65534, 65534)
        env = hivetest.clean_env(os.path.join(top, "home"))
        env["ASAN_OPTIONS"] = "detect_leaks=0"   # LSan would need to ptrace, which nobody may not
        for args, stdin in ((["init"], None), (["add", "st"], b"token=%s\n" % STATIC_TOKEN.encode())):
            r = subprocess.run([*user(65534), HIVE_CRED, *args], env=env, input=stdin, cwd=top,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT)
            self.assertEqual(r.returncode, 0, r.stderr)
        flag = os.path.join(top, "path")
        p = subprocess.Popen([*user(65534), HIVE_RUN, "--file", "F={{st.token}}", "--", "sh", "-c",
                              'cat "$F"; echo "$F" > "$0.new"; mv "$0.new" "$0"; sleep %g' % T(3), flag],
                             env=env, cwd=top, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + TIMEOUT
            while not os.path.exists(flag):
                self.assertLess(time.monotonic(), deadline, "the program did not start")
                time.sleep(0.02)
            with open(flag) as f:
                path = f.read().strip()
            same = subprocess.run([*user(65534), "cat", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=TIMEOUT)
            self.assertEqual(same.stdout.decode(), STATIC_TOKEN, same.stderr)
            if root:
                other = subprocess.run([*user(65533), "cat", path], stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, timeout=TIMEOUT)
                self.assertNotEqual(other.returncode, 0, "another user read the file")
                self.assertEqual(other.stdout, b"")
            out, err = p.communicate(timeout=TIMEOUT)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(out.decode(), STATIC_TOKEN)
        self.assertEqual(wait_gone([holder_of(path)], T(5)), [])
        self.assertFalse(os.path.exists(path))

    def test_sighup_once_per_refresh(self):
        """signal:HUP once each refresh, after the file holds the new token."""
        home = Home()
        prog = [sys.executable, "-c", "import os, signal, time\n"
                "f = os.environ['TOKEN_FILE']\n"
                "signal.signal(signal.SIGHUP, lambda n, fr: print('hup', open(f).read(), flush=True))\n"
                "print('start', open(f).read(), flush=True)\n"
                "end = time.time() + %g\n"
                "while time.time() < end: time.sleep(0.02)\n" % T(10)]
        before = token_requests()
        r = home.run(["--fresh", "--on-refresh", "signal:HUP", "--file", "TOKEN_FILE={{tok}}"], prog)
        refreshes = token_requests() - before - 1   # the first one is hive-run's, at launch
        out = [line.split() for line in r.stdout.decode().splitlines()]
        ctx = "refreshes %d; %r\n%s" % (refreshes, out, r.stderr.decode()[-2000:])
        self.assertEqual(r.returncode, 0, ctx)
        self.assertEqual(out[0][0], "start", ctx)
        hups = [t for what, t in out[1:]]
        self.assertTrue(all(what == "hup" for what, _ in out[1:]), ctx)
        for t in hups:
            self.assertToken(t)
        tokens = [out[0][1]] + hups
        self.assertEqual(len(set(tokens)), len(tokens), "a signal without a new token: " + ctx)
        self.assertGreaterEqual(len(hups), 3, ctx)
        # one per refresh (the last may have come after the program ended)
        self.assertIn(len(hups), (refreshes, refreshes - 1), ctx)

    def test_no_file_left_after_sigkill(self):
        """Every kill order: nothing left, the holder gone with its path."""
        prog = [sys.executable, "-c", "import os, time\n"
                "print(os.getpid(), os.environ['F'], open(os.environ['F']).read(), flush=True)\n"
                "time.sleep(600)\n"]
        home = Home()
        # where a file in memory might otherwise be made: empty dirs of its own
        for var in ("TMPDIR", "XDG_RUNTIME_DIR"):
            home.env[var] = tempfile.mkdtemp(prefix=var.lower() + "-", dir=home.dir)
            os.chmod(home.env[var], 0o700)
        shm = shm_entries()
        # (bare --fresh refuses Python with a variable: a file only there)
        cases = [(["-e", "T={{tok}}"], "program"), (["--fresh"], "program"),
                 (["--fresh", "--on-refresh", "signal:HUP", "-e", "T={{tok}}"], "program")]
        for order in ("program", "hive-run", "both"):
            cases.append((["--fresh", "--on-refresh", "restart", "-e", "T={{tok}}"], order))
        for opts, order in cases:
            with self.subTest(opts=opts, kill=order):
                p = home.popen([*opts, "--file", "F={{tok}}"], prog)
                lines = Lines(p)
                pid, path, token = lines.wait_for(lambda line: True).split()
                pid = int(pid)
                self.assertToken(token)
                self.assertTrue(os.path.exists(path))
                holder = holder_of(path)
                if "restart" not in opts:
                    self.assertEqual(pid, p.pid, "without restart the program is hive-run")
                if order in ("program", "both"):
                    os.kill(pid, signal.SIGKILL)
                if order in ("hive-run", "both"):
                    os.kill(p.pid, signal.SIGKILL)
                self.assertEqual(wait_gone([holder, pid, p.pid], T(10)), [], "still running")
                finish(p)
                lines.done()
                self.assertFalse(os.path.exists(path), path)
                self.assertFalse(os.path.exists("/proc/%d/fd" % holder) and os.listdir("/proc/%d/fd" % holder))
        self.assertEqual(shm_entries(), shm)
        for var in ("TMPDIR", "XDG_RUNTIME_DIR"):
            self.assertEqual(os.listdir(home.env[var]), [], var)

    # --- refusals and bad options ---------------------------------------------

    def test_bare_fresh_refuses_programs_that_copy_their_environment(self):
        home = Home()
        script = os.path.join(home.dir, "script.sh")
        with open(script, "w") as f:
            f.write("#!/bin/bash\necho \"$X\"\n")
        pyscript = os.path.join(home.dir, "script.py")
        with open(pyscript, "w") as f:
            f.write("#!/usr/bin/env %s\nimport os\nprint(os.environ['X'])\n" % os.path.basename(sys.executable))
        os.chmod(script, 0o755)
        os.chmod(pyscript, 0o755)
        env_dir = os.path.dirname(sys.executable)
        home.env["PATH"] = env_dir + ":" + home.env.get("PATH", "/usr/bin:/bin")
        progs = {"python": [sys.executable, "-c", "print(1)"], "sh": ["sh", "-c", "echo $X"],
                 "bash script": [script], "python script": [pyscript], "perl": ["perl", "-e", "print 1"],
                 "java": ["java", "-version"], "env python": ["env", os.path.basename(sys.executable), "-c", "1"]}
        for name, prog in progs.items():
            with self.subTest(name):
                self.assertTrue(shutil.which(prog[0], path=home.env["PATH"]), "%s is not installed" % prog[0])
                r = home.run(["--fresh", "-e", "X={{st.token}}"], prog)
                err = r.stderr.decode()
                self.assertEqual(r.returncode, EXIT_FAIL, err)
                self.assertIn("copies its environment", err)
                for option in ("--on-refresh restart", "--on-refresh signal:HUP", "--file"):
                    self.assertIn(option, err)
                self.assertEqual(r.stdout, b"")
        # what works for them
        r = home.run(["--fresh", "--on-refresh", "restart", "-e", "X={{st.token}}"], ["sh", "-c", 'echo "$X"'])
        self.assertEqual((r.returncode, r.stdout.decode().strip()), (0, STATIC_TOKEN), r.stderr)
        r = home.run(["--fresh", "--file", "X={{st.token}}"], ["sh", "-c", 'cat "$X"'])
        self.assertEqual((r.returncode, r.stdout.decode()), (0, STATIC_TOKEN), r.stderr)

    def test_the_refresher_holds_no_descriptor_of_the_program_past_1024(self):
        # the program closes a pipe it holds at fd 1500 and goes on running:
        # its reader must see EOF then, not when the refresher ends
        home = Home()
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 4096 and (hard == resource.RLIM_INFINITY or hard >= 4096):
            resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        rfd, wfd = os.pipe()
        high = 1500
        os.dup2(wfd, high)
        os.close(wfd)
        try:
            p = subprocess.Popen([HIVE_RUN, "--fresh", "--allow-launch-values", "-e", "X={{st.token}}", "--",
                                  "bash", "-c", "exec %d>&-; read line" % high],
                                 env=home.env, cwd=home.dir, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, pass_fds=(high,))
        finally:
            os.close(high)
        try:
            ready, _, _ = select.select([rfd], [], [], TIMEOUT)
            self.assertTrue(ready, "no EOF: someone still holds the pipe's write end")
            self.assertEqual(os.read(rfd, 1), b"")   # EOF, with the program still waiting for its line
            self.assertIsNone(p.poll(), "the program ended first: the test proves nothing")
        finally:
            _, err = p.communicate(b"go\n", timeout=TIMEOUT)
            os.close(rfd)
        self.assertEqual(p.returncode, 0, err)

    def test_bad_option_values(self):
        home = Home()
        cases = {
            "--on-refresh bogus": (["--fresh", "--on-refresh", "bogus"], "--on-refresh wants restart or signal:NAME"),
            "bad signal": (["--fresh", "--on-refresh", "signal:NOPE"], "not a signal name"),
            "signal:KILL": (["--fresh", "--on-refresh", "signal:KILL"], "SIGKILL"),
            "--file NOEQUALS": (["--file", "NOEQUALS"], "--file wants NAME=TEMPLATE"),
            "--file bad name": (["--file", "1X={{st.token}}"], "invalid variable name"),
            "--file unsafe name": (["--file", "LD_PRELOAD={{st.token}}"], "refusing to set LD_PRELOAD"),
            "--file bad template": (["--file", "F={{ st }}"], "F (--file)"),
            "without --fresh": (["--on-refresh", "restart"], "--on-refresh goes with --fresh"),
            "bad kill signal": (["--fresh", "--on-refresh", "restart", "--kill-signal", "FOO"], "not a signal name"),
            "kill timeout": (["--fresh", "--on-refresh", "restart", "--kill-timeout", "-1"], "--kill-timeout wants"),
            "kill without restart": (["--fresh", "--kill-signal", "INT"], "go with --on-refresh restart"),
            "--mask with restart": (["--fresh", "--mask", "--on-refresh", "restart"],
                                    "--mask and --on-refresh cannot be used together yet"),
            "--mask with signal": (["--fresh", "--mask", "--on-refresh", "signal:HUP"],
                                   "--mask and --on-refresh cannot be used together yet"),
            "--fresh --mask --file": (["--fresh", "--mask", "--file", "F={{st.token}}"],
                                      "--fresh --mask cannot mask the new content of --file F yet"),
        }
        for name, (opts, want) in cases.items():
            with self.subTest(name):
                r = home.run([*opts, "-e", "X={{st.token}}"], ["true"])
                err = r.stderr.decode()
                self.assertEqual(r.returncode, EXIT_FAIL, err)
                self.assertIn("hive-run: error: ", err)
                self.assertIn(want, err)

    def test_dry_run_reports_files(self):
        home = Home()
        r = home.run(["--dry-run", "--json", "--file", "F={{st.token}}", "-e", "E={{st.token}}"], ["true"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(STATIC_TOKEN.encode(), r.stdout + r.stderr)
        doc = json.loads(r.stdout)
        by_name = {v["name"]: v for v in doc["variables"]}
        self.assertEqual(by_name["F"]["source"], "file")
        self.assertEqual(by_name["F"]["origin"], "--file")
        self.assertEqual(by_name["F"]["value"], "********")
        self.assertEqual(by_name["F"]["length"], len(STATIC_TOKEN))
        self.assertEqual(by_name["E"]["source"], "flag")
        r = home.run(["--dry-run", "--file", "F={{st.token}}"], ["true"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("F=******** (file --file)", r.stdout.decode())


if __name__ == "__main__":
    hivetest.main(binaries=("hive-run", "hive-cred"), prerequisite=hivetest.missing_oauth_server)
