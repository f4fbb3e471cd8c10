#!/usr/bin/env python3
"""hive-run --fresh --mask (issue 18, part 4): the masker follows every
value the refresher publishes, so that a refreshed token is masked from
its first appearance, and the old ones stay masked.

Run:  python3 tests/fresh/test_fresh_mask.py [unittest options]

Against the real OAuth2 server (tests/oauth/server.js) with 3-second
access tokens, stretched by HIVE_TEST_TIME_SCALE as in the fresh suite:
hive-run refreshes at launch, its refresher about every 2 s after. The
program (tests/fresh/token_printer.c) prints its token, and the token's
hex, with a fingerprint that tells the tokens apart without their text:
every line must show [masked] for both, across several tokens, through a
pipe and on a pseudo-terminal; a program that stays silent while the
token is replaced twice and then prints every token it read gets them
all masked; a token inside a template ('Bearer {{tok}}') is masked alone
too. Environment as for tests/fresh/test_fresh.py (HIVE_RUN, HIVE_CRED,
HIVE_PRELOAD, FRESH_BIN).
"""

import fcntl
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import tempfile
import termios
import time
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lib"))
import hivetest  # noqa: E402  (tests/lib/hivetest.py)

HIVE_RUN = hivetest.HIVE_RUN
HIVE_CRED = hivetest.HIVE_CRED
HIVE_PRELOAD = hivetest.HIVE_PRELOAD
FRESH_BIN = hivetest.path_from_env("FRESH_BIN", REPO / "build" / "tests" / "fresh")
PRINTER = os.path.join(FRESH_BIN, "token_printer")

ACCESS_TTL = hivetest.scaled_int(3)
UNIT = ACCESS_TTL / 3.0
RUN_SECONDS = 8 * UNIT          # about 4 refreshes
INTERVAL_MS = str(int(round(150 * UNIT)))
TIMEOUT = hivetest.scaled(60)
CLIENT, SECRET = "hive-post", "post-secret-123"

LINE = re.compile(r"fp=([0-9a-f]{16}) tok=\[masked\] hex=\[masked\]( all=\[masked\])?\Z")

_state = {}


def setUpModule():
    why = hivetest.missing_oauth_server()
    if why:
        raise RuntimeError("cannot run: " + why)
    for path in (HIVE_RUN, HIVE_CRED, HIVE_PRELOAD, PRINTER):
        if not os.path.exists(path):
            raise RuntimeError("%s not found (set HIVE_RUN, HIVE_CRED, HIVE_PRELOAD, FRESH_BIN)" % path)
    _state["tmp"] = tempfile.mkdtemp(prefix="hive-fresh-mask-test-")
    _state["server"] = hivetest.start_oauth_server(_state["tmp"], ACCESS_TTL)


def tearDownModule():
    if "server" in _state:
        _state["server"].close()
    shutil.rmtree(_state["tmp"], ignore_errors=True)


def take_ctty():
    """preexec_fn: the new session's controlling terminal is stdin."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Home:
    """A Hive home with provider 'idp' and token 'tok' whose stored access
    token expired long ago (hive-run refreshes it at launch)."""

    def __init__(self):
        server = _state["server"]
        self.dir = tempfile.mkdtemp(prefix="home-", dir=_state["tmp"])
        self.env = hivetest.clean_env(os.path.join(self.dir, "home"), HIVE_PRELOAD=HIVE_PRELOAD)
        asan = self.env.get("ASAN_OPTIONS", "")
        if "verify_asan_link_order" not in asan:
            # the program inherits LD_PRELOAD from an ASan hive-run
            self.env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "verify_asan_link_order=0"
        self.cred("init")
        self.cred("add", "idp", "--type", "custom",
                  stdin="token_url=%s\nclient_id=%s\nclient_secret=%s\n" % (server.token_url, CLIENT, SECRET))
        self.cred("add", "tok", "--type", "oauth2", "--provider-id", "idp", "--auto-refresh",
                  "--expires", "access_token=2020-01-01T00:00:00Z",
                  stdin="access_token=old\nrefresh_token=%s\n" % server.mint(CLIENT))

    def cred(self, *args, stdin=""):
        r = hivetest.run([HIVE_CRED, *args], self.env, stdin=stdin, timeout=TIMEOUT, cwd=self.dir)
        if r.returncode != 0:
            raise RuntimeError("hive-cred %s: exit %d: %r" % (" ".join(args), r.returncode, r.stderr))
        return r

    def token(self):
        return self.cred("get", "tok", "access_token").stdout.decode().strip()

    def argv(self, mode, var="TOKEN={{tok}}", skip=None):
        return [HIVE_RUN, "--fresh", "--mask", "-e", var, "--", PRINTER, var.split("=")[0],
                "%g" % RUN_SECONDS, INTERVAL_MS, mode, *([str(skip)] if skip is not None else [])]


class FreshMaskTest(unittest.TestCase):

    def check(self, out, err, code, home, lines_at_least):
        """Every line fully masked, several tokens among them, the last
        one (in the store now) nowhere in clear."""
        self.assertEqual(code, 0, err[-3000:])
        lines = out.replace("\r\n", "\n").splitlines()
        self.assertGreaterEqual(len(lines), lines_at_least, out[-3000:])
        fps = []
        for line in lines:
            m = LINE.match(line)
            self.assertIsNotNone(m, "a line not masked: %r" % line)
            if m.group(1) not in fps:
                fps.append(m.group(1))
        self.assertGreaterEqual(len(fps), 3, "the token was not refreshed while the program ran: %s" % fps)
        last = home.token()
        self.assertNotIn(last, out)
        self.assertNotIn(last.encode().hex(), out)
        self.assertNotIn("cannot be split", err)
        return fps

    def run_piped(self, home, lines_at_least, *args, **kw):
        """Run home.argv(*args, **kw) into pipes and check its output; the
        output."""
        r = hivetest.run(home.argv(*args, **kw), home.env, timeout=TIMEOUT, cwd=home.dir)
        out = r.stdout.decode("latin-1")
        self.check(out, r.stderr.decode("utf-8", "replace"), r.returncode, home, lines_at_least)
        return out

    def test_every_token_masked_through_a_pipe(self):
        self.run_piped(Home(), 20, "each")

    def test_every_token_masked_on_a_terminal(self):
        home = Home()
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)
        try:
            p = subprocess.Popen(home.argv("each"), env=home.env, cwd=home.dir, stdin=slave, stdout=slave,
                                 stderr=subprocess.PIPE, start_new_session=True, preexec_fn=take_ctty)
        finally:
            os.close(slave)
        buf = bytearray()
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:   # EIO: every slave closed
                    break
                if not chunk:
                    break
                buf += chunk
            elif p.poll() is not None:
                break
        try:
            err = p.stderr.read().decode("utf-8", "replace")
            code = p.wait(timeout=TIMEOUT)
        finally:
            hivetest.reap(p)
        self.check(bytes(buf).decode("latin-1"), err, code, home, 20)

    def test_tokens_replaced_while_the_program_was_silent(self):
        # the program prints nothing while the refresher replaces its token
        # several times, then every token it read: the masker, which looks
        # at the snapshot only when output comes, must find them all
        self.run_piped(Home(), 3, "last")

    def test_token_inside_a_template_masked_alone(self):
        out = self.run_piped(Home(), 20, "each", var="AUTH=Bearer {{tok}}", skip=len("Bearer "))
        self.assertIn(" all=[masked]", out)


if __name__ == "__main__":
    hivetest.main(binaries=["hive-run", "hive-cred"], prerequisite=hivetest.missing_oauth_server)
