"""What the Python test suites share (tests/cli, tests/fresh, tests/oauth,
tests/etcd, tests/aden): the binaries' paths, the time scale, a clean
environment, a temporary HIVE_HOME holding the fixture, running a binary,
the OAuth2 test server, and main().

A suite imports it with

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "lib"))
    import hivetest  # noqa: E402  (tests/lib/hivetest.py)

Environment:
  HIVE_RUN, HIVE_CRED, HIVE_PRELOAD  the binaries under test (defaults: the
                        ones in <repo>/build; ctest sets them all)
  HIVE_FIXTURE          the Hive home written by Python Hive
                        (default: <repo>/tests/data/fixtures/hive-home)
  HIVE_TEST_TIME_SCALE  a number >= 1 (default 1) that every token lifetime
                        and time limit of the suites is multiplied by, for
                        a slow or loaded machine
"""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build"


def path_from_env(var, default):
    """The absolute path the environment variable var names, else default."""
    return os.path.abspath(os.environ.get(var) or default)


HIVE_RUN = path_from_env("HIVE_RUN", BUILD / "launcher" / "hive-run")
HIVE_CRED = path_from_env("HIVE_CRED", BUILD / "launcher" / "hive-cred")
HIVE_PRELOAD = path_from_env("HIVE_PRELOAD", BUILD / "preload" / "libhive-preload.so")
FIXTURE = path_from_env("HIVE_FIXTURE", REPO / "tests" / "data" / "fixtures" / "hive-home")
BINARIES = {"hive-run": ("HIVE_RUN", HIVE_RUN), "hive-cred": ("HIVE_CRED", HIVE_CRED),
            "libhive-preload.so": ("HIVE_PRELOAD", HIVE_PRELOAD)}


# --- time --------------------------------------------------------------------

def _time_scale():
    text = os.environ.get("HIVE_TEST_TIME_SCALE") or "1"
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value >= 1 and math.isfinite(value)):
        sys.exit("HIVE_TEST_TIME_SCALE=%r: want a number >= 1 (1 by default)" % text)
    return value


TIME_SCALE = _time_scale()


def scaled(seconds):
    """seconds stretched by HIVE_TEST_TIME_SCALE (a float)."""
    return seconds * TIME_SCALE


def scaled_int(seconds):
    """seconds stretched by HIVE_TEST_TIME_SCALE, rounded up to whole seconds
    (for token lifetimes, which servers count in seconds)."""
    return int(math.ceil(seconds * TIME_SCALE))


# --- environment -------------------------------------------------------------

PROXY_VARS = ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy",
              "no_proxy", "NO_PROXY"]
# what else changes how hive or libcurl behaves, or what a program run under
# hive-run sees
OTHER_VARS = ["LD_PRELOAD", "LD_DEBUG", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "CREDENTIALS_DIRECTORY"]


def foreign(name):
    """Whether the caller's variable name must not reach a binary under test:
    hive's own (HIVE_*, except the tests' HIVE_TEST_*), the Aden client's
    (ADEN_*), proxies and the loader's."""
    return ((name.startswith("HIVE_") and not name.startswith("HIVE_TEST_")) or
            name.startswith("ADEN_") or name in PROXY_VARS or name in OTHER_VARS)


def clean_env(home=None, **extra):
    """The caller's environment without anything that changes what hive
    does (see foreign), with LC_ALL=C, HIVE_HOME=home when given, and extra."""
    env = {k: v for k, v in os.environ.items() if not foreign(k)}
    env["LC_ALL"] = "C"
    if home is not None:
        env["HIVE_HOME"] = str(home)
    env.update(extra)
    return env


# --- Hive homes --------------------------------------------------------------

def temp_dir(test, prefix):
    """A new temporary directory removed when test ends (a cleanup, so also
    when setUp fails)."""
    d = tempfile.mkdtemp(prefix=prefix)
    test.addCleanup(shutil.rmtree, d, ignore_errors=True)
    return d


def fix_modes(top):
    """Directories 0700, files 0600, as hive-cred makes them (a checkout's
    modes depend on the umask)."""
    for root, dirs, files in os.walk(top):
        os.chmod(root, 0o700)
        for f in files:
            os.chmod(os.path.join(root, f), 0o600)


def load_expected():
    """fixture-expected.json: what the fixture holds, key included."""
    with open(os.path.join(FIXTURE, "fixture-expected.json"), encoding="utf-8") as f:
        return json.load(f)


def copy_fixture(home):
    """The fixture Hive home copied into home (which may exist), its modes
    fixed; returns fixture-expected.json's contents."""
    shutil.copytree(FIXTURE, home, dirs_exist_ok=True)
    os.remove(os.path.join(home, "fixture-expected.json"))
    fix_modes(home)
    return load_expected()


# --- running binaries --------------------------------------------------------

TIMEOUT = scaled(60)


def run(argv, env, stdin=b"", timeout=TIMEOUT, cwd=None, stdout=subprocess.PIPE, stderr=subprocess.PIPE):
    """subprocess.run of argv with env, stdin given as bytes or str, output
    captured."""
    if isinstance(stdin, str):
        stdin = stdin.encode("utf-8")
    return subprocess.run([os.fspath(a) for a in argv], input=stdin, stdout=stdout, stderr=stderr, env=env,
                          timeout=timeout, cwd=cwd)


def kill_when(argv, env, cwd, path, delay):
    """Start argv; once path exists (or argv ended), let it run delay
    seconds more, then SIGKILL it. Its exit status (-SIGKILL if killed)."""
    p = subprocess.Popen([os.fspath(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         cwd=cwd)
    deadline = time.monotonic() + TIMEOUT
    while not os.path.exists(path) and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    rc = p.wait(timeout=TIMEOUT)
    p.stdout.close()
    p.stderr.close()
    return rc


def reap(p):
    """Kill a subprocess.Popen if it still runs, wait for it, close its pipes."""
    if p.poll() is None:
        p.kill()
    p.wait()
    for f in (p.stdin, p.stdout, p.stderr):
        if f is not None:
            f.close()


def missing_binaries(*names):
    """'X not found at P (set V)' for each of names (keys of BINARIES) that
    is not there."""
    out = []
    for name in names:
        var, path = BINARIES[name]
        if not (os.path.isfile(path) and (name.endswith(".so") or os.access(path, os.X_OK))):
            out.append("%s not found at %s (set %s)" % (name, path, var))
    return out


def missing_fixture():
    if not os.path.isfile(os.path.join(FIXTURE, "fixture-expected.json")):
        return ["fixture not found at %s (set HIVE_FIXTURE)" % FIXTURE]
    return []


# --- the OAuth2 test server (tests/oauth/server.js) --------------------------

def _oauth_server_module():
    sys.path.insert(0, str(REPO / "tests" / "oauth"))
    import oauth_server   # noqa: E402  (tests/oauth/oauth_server.py)
    return oauth_server


def missing_oauth_server():
    """Why the OAuth2 test server cannot run, or None."""
    return _oauth_server_module().missing()


def start_oauth_server(tmp, access_ttl):
    """The OAuth2 test server, its access tokens living access_ttl seconds
    (give it scaled_int(...)); close() it."""
    return _oauth_server_module().OAuthServer(tmp, access_ttl)


# --- main() ------------------------------------------------------------------

def main(binaries=(), fixture=False, prerequisite=None):
    """Run the calling module's tests with unittest; never returns.

    Before: every name of binaries (keys of BINARIES) must exist, the
    fixture too when fixture is true, and prerequisite() (if given) must
    return None (else it says why the suite cannot run). A suite that
    cannot run fails: exit 1, saying why.

    After: exit 0 only if at least one test ran, none failed, and none was
    skipped nor was an expected failure: a test that could not run is a
    failure here, never a pass by omission."""
    name = os.path.basename(sys.argv[0])
    problems = missing_binaries(*binaries) + (missing_fixture() if fixture else [])
    if not problems and prerequisite is not None:
        why = prerequisite()
        if why:
            problems.append(why)
    if problems:
        for p in problems:
            print("%s: CANNOT RUN: %s" % (name, p), file=sys.stderr)
        sys.exit(1)
    if TIME_SCALE != 1:
        print("%s: time scale %g (HIVE_TEST_TIME_SCALE)" % (name, TIME_SCALE), file=sys.stderr)
    prog = unittest.main(module="__main__", exit=False)
    sys.exit(verdict(prog.result, name))


def verdict(result, name="tests"):
    """The exit status for a unittest result: 1 unless it ran a test and
    every test passed, none skipped, none an expected failure."""
    bad = []
    for test, why in result.skipped:
        bad.append("SKIPPED (counts as a failure): %s: %s" % (test.id(), why))
    for test, _ in result.expectedFailures:
        bad.append("EXPECTED FAILURE (counts as a failure): %s" % test.id())
    for test in result.unexpectedSuccesses:
        bad.append("UNEXPECTED SUCCESS: %s" % test.id())
    for line in bad:
        print("%s: %s" % (name, line), file=sys.stderr)
    if result.testsRun == 0:
        print("%s: no test ran" % name, file=sys.stderr)
        return 1
    if bad or not result.wasSuccessful():
        return 1
    return 0
