#!/usr/bin/env python3
"""hive-run --mask, end to end.

Run:  python3 tests/cli/test_mask.py [unittest options]

Environment:
  HIVE_RUN      path of the hive-run binary
                (default: <repo>/build/launcher/hive-run)
  HIVE_CRED     path of the hive-cred binary
                (default: <repo>/build/launcher/hive-cred)

Standard library only. One temporary HIVE_HOME (credentials added with
hive-cred) for the whole file; every test runs the real hive-run.

Pipe mode (stdout not a terminal): each secret and each of its encodings
(base64 with and without padding, base64url, lowercase and uppercase hex,
URL encoding) replaced by [masked] on stdout and on stderr separately; a
credential's value masked on its own inside a variable that holds more
(a header, a URL); a secret written in pieces with pauses still masked;
short values left alone (and warned about); values not injected left
alone; overlapping secrets masked as one; nothing held back at exit, and
a secret or unpadded base64 that could still begin a longer one masked
when it ends the output; a prompt without newline not delayed;
20 MB with secrets sprinkled masked exactly; a reader that goes away ends
the program as it would without --mask. Exit statuses and signal deaths
passed through; SIGINT, SIGTERM, SIGUSR1 and SIGHUP forwarded, a second
SIGINT or SIGTERM kills the program; a ^C from hive-run's controlling
terminal reaches the program once. Every pipe hive-run makes is closed
before it exits, also when setting up fails (strace, too few descriptors).

Terminal mode (hive-run's stdin, stdout and stderr on a pseudo-terminal
made here, read from its master): the program sees terminals and is the
session leader in the foreground of its own; output masked as in a pipe
(a value holding newlines too); window size passed on at start and on
change; ^C reaches the program once; raw and cooked input work; ^Z with a
program that stops itself stops hive-run after all the program's output
is out, with its terminal given back; hive-run's terminal is restored
when it exits.
"""

import base64
import fcntl
import os
import pty
import random
import re
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
import unittest
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lib"))
import hivetest  # noqa: E402  (tests/lib/hivetest.py)

HIVE_RUN = hivetest.HIVE_RUN
HIVE_CRED = hivetest.HIVE_CRED

TIMEOUT = hivetest.scaled(30)
PY = sys.executable
M = b"[masked]"

# the stored values (credential id -> api_key)
BRAVE = "BSA-test-0123456789abcdef"     # 25 bytes: base64 ends in '=='
ENCY = "sk~>?test>>?~key"                # base64 holds '+' and '/', base64url '-' and '_'
URLY = "a b/c+d=e?f"                     # 11 bytes: URL encoding changes it; base64 ends in '='
SHORT = "short"                          # 5 bytes: under the default --mask-min 6
OTHER = "unreferenced-value-777"         # stored, never injected
OV1, OV2, OV3 = "abcdef12", "ef12ghijklmn", "klmn-tail"   # each overlaps the next
CREDS = {"brave": BRAVE, "ency": ENCY, "urly": URLY, "tiny": SHORT, "other": OTHER,
         "ov1": OV1, "ov2": OV2, "ov3": OV3}

# the injected variables of most tests
VARS = ["-e", "T={{brave.api_key}}", "-e", "K={{ency.api_key}}", "-e", "U={{urly.api_key}}"]


def encodings(value):
    """Every form of value that must be masked: name -> bytes."""
    v = value.encode("utf-8")
    std = base64.b64encode(v)
    url = base64.urlsafe_b64encode(v)
    return {
        "plain": v,
        "base64": std,
        "base64-nopad": std.rstrip(b"="),
        "base64url": url,
        "base64url-nopad": url.rstrip(b"="),
        "hex": v.hex().encode(),
        "HEX": v.hex().upper().encode(),
        "url": urllib.parse.quote(v, safe="").encode(),
        "url-form": urllib.parse.quote_plus(v, safe="").encode(),
    }


def proc_state(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def take_ctty():
    """preexec_fn: the new session's controlling terminal is stdin."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


# One HIVE_HOME for the whole file (the tests only read it).
STORE = {}


def setUpModule():
    tmp = tempfile.mkdtemp(prefix="hive-mask-test-")
    env = hivetest.clean_env(os.path.join(tmp, "home"))
    STORE.update(tmp=tmp, env=env)
    try:
        cred("init")
        for cred_id, value in CREDS.items():
            cred("add", cred_id, stdin=("api_key=%s\n" % value).encode())
    except BaseException:
        tearDownModule()
        raise


def tearDownModule():
    shutil.rmtree(STORE["tmp"], ignore_errors=True)


def cred(*args, stdin=b""):
    r = hivetest.run([HIVE_CRED, *args], STORE["env"], stdin=stdin, timeout=TIMEOUT)
    if r.returncode != 0:
        raise RuntimeError("hive-cred %r: exit %d: %r" % (args, r.returncode, r.stderr))


class MaskTest(unittest.TestCase):

    maxDiff = None

    def setUp(self):
        self.env = STORE["env"]
        self.work = tempfile.mkdtemp(prefix="work-", dir=STORE["tmp"])

    # --- helpers -------------------------------------------------------

    def run_mask(self, argv, *opts, vars=VARS, stdin=b"", timeout=TIMEOUT):
        return hivetest.run([HIVE_RUN, "--mask", *opts, *vars, "--", *argv], self.env, stdin=stdin,
                            timeout=timeout, cwd=self.work)

    def sh(self, script, *opts, **kw):
        return self.run_mask(["sh", "-c", script], *opts, **kw)

    def py(self, code, *opts, **kw):
        return self.run_mask([PY, "-c", code], *opts, **kw)

    def check(self, r, code=0, stdout=None, stderr=b""):
        what = "exit %r\nstdout: %r\nstderr: %r" % (r.returncode, r.stdout[:3000], r.stderr[:3000])
        self.assertEqual(r.returncode, code, what)
        if stdout is not None:
            self.assertEqual(r.stdout, stdout, what)
        if stderr is not None:
            self.assertEqual(r.stderr, stderr, what)
        return r

    def popen(self, argv, *opts, vars=VARS, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        p = subprocess.Popen([HIVE_RUN, "--mask", *opts, *vars, "--", *argv], env=self.env,
                             cwd=self.work, **kw)
        self.addCleanup(self.reap, p)
        return p

    reap = staticmethod(hivetest.reap)

    def read_until(self, fd, buf, want, timeout=hivetest.scaled(10.0)):
        """Read fd into buf (a bytearray) until want is in it; the time it arrived."""
        deadline = time.monotonic() + timeout
        while want not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail("%r not seen within %.1fs; got %r" % (want, timeout, bytes(buf)))
            if select.select([fd], [], [], left)[0]:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    self.fail("end of stream before %r; got %r" % (want, bytes(buf)))
                buf += chunk
        return time.monotonic()

    def read_for(self, fd, buf, seconds):
        """Read fd into buf for this long (or to its end)."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk


# --- pipe mode: what is masked ---------------------------------------------

class TestEncodings(MaskTest):

    def test_each_encoding_on_stdout(self):
        # one line per value and encoding, the form twice in it
        names, text = [], b""
        for var, value in [("T", BRAVE), ("K", ENCY), ("U", URLY)]:
            for name, enc in encodings(value).items():
                names.append("%s %s" % (var, name))
                text += b"<" + enc + b"> and (" + enc + b").\n"
        r = self.run_mask([PY, "-c", "import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))",
                           text.hex()])
        self.check(r, 0, None)
        got = r.stdout.split(b"\n")
        self.assertEqual(len(got), len(names) + 1, r.stdout)
        for name, line in zip(names, got):
            self.assertEqual(line, b"<" + M + b"> and (" + M + b").", name)
        self.assertEqual(got[-1], b"")

    def test_encodings_in_one_stream_and_stderr_separately(self):
        # every encoding of every value, one per line, on stdout; the same
        # with another frame on stderr; interleaved writes
        lines_out, lines_err = [], []
        want_out, want_err = b"", b""
        for value in (BRAVE, ENCY, URLY):
            for name, enc in encodings(value).items():
                lines_out.append(b"out " + name.encode() + b": " + enc + b" end\n")
                want_out += b"out " + name.encode() + b": " + M + b" end\n"
                lines_err.append(b"err " + name.encode() + b"=" + enc + b"\n")
                want_err += b"err " + name.encode() + b"=" + M + b"\n"
        code = ("import os, sys\n"
                "o = bytes.fromhex(sys.argv[1]).split(b'|')\n"
                "e = bytes.fromhex(sys.argv[2]).split(b'|')\n"
                "for a, b in zip(o, e):\n"
                "    os.write(1, a)\n"
                "    os.write(2, b)\n")
        r = self.run_mask([PY, "-c", code, b"|".join(lines_out).hex(), b"|".join(lines_err).hex()])
        self.check(r, 0, want_out, want_err)

    def test_env_values_printed_by_the_program(self):
        # the values come from the environment the program got
        r = self.sh('printf "T=%s K=%s U=%s\\n" "$T" "$K" "$U"; '
                    'printf "%s" "$T" | base64; printf "%s" "$U" | od -An -tx1 | tr -d " \\n"; echo; '
                    'echo "to stderr: $K" >&2')
        self.check(r, 0, b"T=%s K=%s U=%s\n%s\n%s\n" % (M, M, M, M, M), b"to stderr: " + M + b"\n")

    def test_surrounding_text_intact(self):
        text = ("\x1b[1;31mred\x1b[0m token=%s; again:%s%s|tab\tend\r\n"
                "unicode \u00e9\u2713 %s\n" % (BRAVE, BRAVE, ENCY, URLY))
        r = self.run_mask([PY, "-c", "import sys; sys.stdout.buffer.write(sys.argv[1].encode())", text])
        self.check(r, 0, ("\x1b[1;31mred\x1b[0m token=[masked]; again:[masked][masked]|tab\tend\r\n"
                          "unicode \u00e9\u2713 [masked]\n").encode())

    def test_credential_values_inside_templates(self):
        # the secret is the credential's value: masked on its own too when
        # the variable holds more than it (a header, a URL)
        r = self.sh('echo "$AUTH"; echo "token=${AUTH#Bearer }"; echo "$DSN"; '
                    'printf "%s" "${AUTH#Bearer }" | base64',
                    vars=["-e", "AUTH=Bearer {{brave.api_key}}",
                          "-e", "DSN=postgres://u:{{ency.api_key}}@db/x"])
        self.check(r, 0, None)
        self.assertNotIn(BRAVE.encode(), r.stdout)
        self.assertNotIn(ENCY.encode(), r.stdout)
        lines = r.stdout.split(b"\n")
        self.assertEqual(len(lines), 5, r.stdout)
        self.assertIn(lines[0], [M, b"Bearer " + M])
        self.assertEqual(lines[1], b"token=" + M)
        self.assertIn(lines[2], [M, b"postgres://u:" + M + b"@db/x"])
        self.assertEqual(lines[3:], [M, b""])

    def test_values_not_injected_untouched(self):
        # OTHER is stored but not injected; ordinary text around it too
        r = self.sh('echo "other=%s brave=$T"; echo "%s" >&2' % (OTHER, OTHER))
        self.check(r, 0, ("other=%s brave=[masked]\n" % OTHER).encode(), ("%s\n" % OTHER).encode())
        # the same run without T: BRAVE is now just text
        r = self.sh('echo "%s $K"' % BRAVE, vars=["-e", "K={{ency.api_key}}"])
        self.check(r, 0, ("%s [masked]\n" % BRAVE).encode())

    def test_stdin_passed_through(self):
        r = self.run_mask(["cat"], stdin=("in: %s\n" % ENCY).encode())
        self.check(r, 0, b"in: " + M + b"\n")

    def test_stdout_closed_early_stderr_still_masked(self):
        r = self.sh('echo "out $T"; exec 1>&-; sleep 0.3; echo "err $T" >&2')
        self.check(r, 0, b"out " + M + b"\n", b"err " + M + b"\n")

    def test_no_variables(self):
        r = self.sh('printf "%s\\n" "plain text"', vars=[])
        self.check(r, 0, b"plain text\n")


class TestUnionAndEnd(MaskTest):
    """Every byte of every occurrence is masked, however the secrets
    overlap, and at the very end of the output too (security review,
    item 3)."""

    OVL = ["-e", "A={{ov1.api_key}}", "-e", "B={{ov2.api_key}}", "-e", "C={{ov3.api_key}}"]

    def test_overlapping_secrets_masked_as_one(self):
        r = self.sh('printf "x %s y\\n" "abcdef12ghijklmn"; printf "x %s y\\n" "abcdef12ghijklmn-tail"; '
                    'printf "%s|%s\\n" "$A" "$B"; printf "(ef12ghijklmn-tail)\\n"',
                    vars=self.OVL)
        self.check(r, 0, b"x " + M + b" y\n" + b"x " + M + b" y\n" + M + b"|" + M + b"\n(" + M + b")\n")

    def test_overlap_at_the_end_of_output(self):
        r = self.sh('printf "x abcdef12ghijklmn"; printf "e abcdef12ghijklmn" >&2', vars=self.OVL)
        self.check(r, 0, b"x " + M, b"e " + M)

    def test_overlap_split_across_slow_writes(self):
        r = self.sh("printf 'x abcdef'; sleep 0.1; printf '12ghij'; sleep 0.1; printf 'klmn y\\n'",
                    vars=self.OVL)
        self.check(r, 0, b"x " + M + b" y\n")

    def test_secret_that_begins_another_ends_the_output(self):
        # A is a proper prefix of B: when the output ends with A, A could
        # still have been the start of B; at the end it is not, and A is a
        # secret
        vars = ["-e", "A={{brave.api_key}}", "-e", "B={{brave.api_key}}@host"]
        for code in (0, 3):
            with self.subTest(code=code):
                r = self.sh('printf "out: %s" "$A"; printf "err: %s" "$A" >&2; exit ' + str(code), vars=vars)
                self.check(r, code, b"out: " + M, b"err: " + M)
        r = self.sh('printf "%s and %s" "$B" "$A"', vars=vars)
        self.check(r, 0, M + b" and " + M)

    def test_unpadded_base64_ends_the_output(self):
        # base64 without padding is a proper prefix of the padded form
        for value in (BRAVE, URLY):
            for name in ("base64-nopad", "base64url-nopad"):
                enc = encodings(value)[name]
                with self.subTest(value=value, form=name):
                    r = self.run_mask([PY, "-c", "import os, sys; os.write(1, b'b64: ' + bytes.fromhex(sys.argv[1]))",
                                       enc.hex()])
                    self.check(r, 0, b"b64: " + M)


class TestShortValues(MaskTest):

    WARN = b"hive-run: warning: --mask: S is 5 bytes, under --mask-min 6: it will not be masked\n"

    def test_short_value_not_masked_and_warned(self):
        r = self.sh('echo "s=$S t=$T"; printf "%s" "$S" | od -An -tx1 | tr -d " \\n"; echo',
                    vars=VARS + ["-e", "S={{tiny.api_key}}"])
        self.check(r, 0, b"s=short t=[masked]\n73686f7274\n", self.WARN)

    def test_dry_run_warns(self):
        r = subprocess.run([HIVE_RUN, "--dry-run", "--mask", "-e", "S={{tiny.api_key}}",
                            "-e", "T={{brave.api_key}}", "--", "true"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env, timeout=TIMEOUT)
        self.check(r, 0, None, self.WARN)
        self.assertTrue(r.stdout.startswith(b"would run: true\n"), r.stdout)
        self.assertNotIn(SHORT.encode(), r.stdout)
        self.assertNotIn(BRAVE.encode(), r.stdout)
        # nothing to warn about: no warning
        r = subprocess.run([HIVE_RUN, "--dry-run", "--mask", "-e", "T={{brave.api_key}}", "--", "true"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env, timeout=TIMEOUT)
        self.check(r, 0, None, b"")

    def test_mask_min_4_masks_5_bytes(self):
        r = self.sh('echo "s=$S t=$T"; printf "%s" "$S" | base64', "--mask-min", "4",
                    vars=VARS + ["-e", "S={{tiny.api_key}}"])
        self.check(r, 0, b"s=[masked] t=[masked]\n[masked]\n", b"")

    def test_mask_min_above_a_value(self):
        # --mask-min 12: BRAVE (25) masked, URLY (11) not, and warned about
        r = self.sh('echo "$T $U"', "--mask-min", "12")
        self.check(r, 0, ("[masked] %s\n" % URLY).encode(),
                   b"hive-run: warning: --mask: U is 11 bytes, under --mask-min 12: it will not be masked\n")

    def test_mask_min_out_of_range(self):
        for v in ["3", "4097", "x", ""]:
            with self.subTest(value=v):
                r = self.sh("echo ran", "--mask-min", v)
                self.check(r, 125, b"", None)
                self.assertIn(b"--mask-min wants a number of bytes from 4 to 4096", r.stderr)


# --- pipe mode: streaming ---------------------------------------------------

class TestStreaming(MaskTest):

    def test_split_across_writes_with_pauses(self):
        r = self.sh("printf 'token: BSA-te'; sleep 0.3; printf 'st-0123'; sleep 0.3; "
                    "printf '456789abcdef done\\n'; "
                    "printf 'QlNBLXRlc3Qt' >&2; sleep 0.3; printf 'MDEyMzQ1Njc4OWFiY2RlZg==\\n' >&2")
        self.check(r, 0, b"token: " + M + b" done\n", M + b"\n")

    def test_split_at_every_point(self):
        # each value and encoding split in two at every point that leaves
        # at least 4 bytes in the first piece, with a pause longer than the
        # 15 ms silence between the pieces
        forms = [encodings(BRAVE)["plain"], encodings(ENCY)["base64"], encodings(URLY)["url"]]
        code = ("import os, sys, time\n"
                "for f in sys.argv[1:]:\n"
                "    f = bytes.fromhex(f)\n"
                "    for k in range(4, len(f)):\n"
                "        os.write(1, b'<' + f[:k]); time.sleep(0.02); os.write(1, f[k:] + b'>\\n')\n")
        r = self.run_mask([PY, "-c", code, *[f.hex() for f in forms]])
        want = b"".join(b"<" + M + b">\n" for f in forms for _ in range(4, len(f)))
        self.check(r, 0, want)

    def test_secret_printed_one_byte_at_a_time(self):
        # slower than the 15 ms silence: the first bytes go out (a short
        # held tail is never delayed), the rest of the secret is masked
        code = ("import os, sys, time\n"
                "t = os.environ['T'].encode()\n"
                "os.write(1, b'<')\n"
                "for i in range(len(t)):\n"
                "    os.write(1, t[i:i + 1]); time.sleep(0.03)\n"
                "os.write(1, b'>\\n')\n")
        r = self.run_mask([PY, "-c", code])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(BRAVE.encode(), r.stdout)
        self.assertTrue(r.stdout.startswith(b"<") and r.stdout.endswith(M + b">\n"), r.stdout)
        self.assertLessEqual(len(r.stdout), len(b"<>\n") + 3 + len(M), r.stdout)

    def test_prefix_at_exit_not_held(self):
        for n, code in [(3, 0), (10, 0), (len(BRAVE) - 1, 0), (10, 3)]:
            with self.subTest(prefix=n, code=code):
                r = self.py("import os, sys\n"
                            "t = os.environ['T'].encode()\n"
                            "os.write(1, b'out: ' + t[:%d]); os.write(2, b'err: ' + t[:%d])\n"
                            "sys.exit(%d)\n" % (n, n, code))
                p = BRAVE[:n].encode()
                self.check(r, code, b"out: " + p, b"err: " + p)

    def test_background_grandchild_does_not_hold_hive_run(self):
        # the program ends; a background process it left keeps its output
        # open: hive-run ends soon after the program anyway
        t = time.monotonic()
        r = self.sh('sleep 4 & echo "hi $T"; exit 5', timeout=TIMEOUT)
        self.check(r, 5, b"hi " + M + b"\n")
        self.assertLess(time.monotonic() - t, 3.0)

    def test_reader_gone(self):
        # whoever reads hive-run's output goes away (| head -1): the program
        # must find out, as it would without --mask (yes dies of SIGPIPE),
        # not write on forever into hive-run
        p = self.popen(["yes", "hello"])
        buf = bytearray()
        self.read_until(p.stdout.fileno(), buf, b"hello\n")
        p.stdout.close()
        try:
            p.wait(3)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            self.fail("hive-run --mask -- yes still running 3 s after its reader went away")
        self.assertEqual(p.returncode, -signal.SIGPIPE, p.stderr.read())

    def test_prefix_then_killed(self):
        r = self.sh('printf "%s" "$(printf %s "$T" | head -c 10)"; kill -TERM $$')
        self.check(r, -signal.SIGTERM, BRAVE[:10].encode(), b"")

    def test_prompt_not_delayed(self):
        # 'pw> ' cannot begin a secret; 'pw> BSA' ends in a 3-byte prefix of
        # one, released after 15 ms of silence
        for prompt in (b"pw> ", b"pw> BSA"):
            with self.subTest(prompt=prompt):
                p = self.popen(["sh", "-c", "printf 'go\\n'; sleep 0.3; printf '%s'; sleep 1; echo done"
                                % prompt.decode()])
                fd = p.stdout.fileno()
                buf = bytearray()
                self.read_until(fd, buf, b"go\n")
                t_go = time.monotonic()
                t = self.read_until(fd, buf, prompt, timeout=1.5)
                self.assertLess(t - t_go, 0.3 + 0.5, "the prompt came %.2fs after go" % (t - t_go))
                self.assertEqual(bytes(buf), b"go\n" + prompt)
                p.wait(TIMEOUT)
                self.read_for(fd, buf, 5)
                self.assertEqual(bytes(buf), b"go\n" + prompt + b"done\n")
                self.assertEqual(p.returncode, 0)

    def test_long_prefix_held_while_it_matches(self):
        # 'BSA-t' (5 bytes) could be the start of T: held through the pause,
        # let go when the next byte shows it is not
        p = self.popen(["sh", "-c", "printf 'pw> BSA-t'; sleep 1; printf 'x\\n'"])
        fd = p.stdout.fileno()
        buf = bytearray()
        self.read_until(fd, buf, b"pw> ")
        self.read_for(fd, buf, 0.6)
        self.assertEqual(bytes(buf), b"pw> ")
        p.wait(TIMEOUT)
        self.read_for(fd, buf, 5)
        self.assertEqual(bytes(buf), b"pw> BSA-tx\n")

    def test_large_output(self):
        rng = random.Random(7)
        # printable ASCII and newlines; no '=', which could lengthen a
        # base64 form that ends without padding
        alphabet = bytes(c for c in range(0x20, 0x7f) if c != ord("=")) + b"\n" * 8
        noise = bytes(alphabet[b % len(alphabet)] for b in rng.randbytes(1 << 20))
        forms = list(encodings(BRAVE).values()) + list(encodings(ENCY).values()) + \
            list(encodings(URLY).values())
        data, want, used = [], [], []
        size = 0
        while size < 20 << 20:
            off = rng.randrange(len(noise) - 70000)
            filler = noise[off:off + rng.randrange(1, 65536)]
            form = rng.choice(forms)
            data += [filler, form]
            want += [filler, M]
            used.append(form)
            size += len(filler) + len(form)
        data = b"".join(data)
        want = b"".join(want)
        # no form occurs but where it was put (nor across a boundary)
        for f in set(forms):
            self.assertEqual(data.count(f), sum(f in u for u in used), f)
        path = os.path.join(self.work, "big")
        with open(path, "wb") as fh:
            fh.write(data)
        r = self.run_mask(["cat", path], timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, b"")
        self.assertEqual(len(r.stdout), len(want), "masked output size (input %d bytes, %d secrets)"
                         % (len(data), len(used)))
        if r.stdout != want:
            i = next(i for i in range(len(want)) if r.stdout[i] != want[i])
            self.fail("output differs at byte %d: got %r, want %r" % (i, r.stdout[i - 40:i + 60],
                                                                        want[i - 40:i + 60]))


# --- exit statuses and signals ----------------------------------------------

class TestExit(MaskTest):

    def test_exit_codes(self):
        for script, code in [("exit 0", 0), ("exit 3", 3), ("exit 255", 255),
                             ("kill -TERM $$", -signal.SIGTERM), ("kill -KILL $$", -signal.SIGKILL),
                             ("kill -INT $$", -signal.SIGINT)]:
            with self.subTest(script=script):
                r = self.sh("echo before $T; " + script)
                self.check(r, code, b"before " + M + b"\n", b"")

    def test_not_found(self):
        for cmd in ["no-such-cmd-xyz", os.path.join(self.work, "nope")]:
            with self.subTest(cmd=cmd):
                r = self.run_mask([cmd])
                self.check(r, 127, b"", None)
                self.assertIn(b"hive-run: error: " + cmd.encode() + b": command not found", r.stderr)

    def test_not_executable(self):
        path = os.path.join(self.work, "script.sh")
        with open(path, "w") as f:
            f.write("#!/bin/sh\necho ran\n")
        os.chmod(path, 0o644)
        r = self.run_mask([path])
        self.check(r, 126, b"", None)
        self.assertIn(b"hive-run: error: " + path.encode() + b": cannot execute", r.stderr)


class TestDescriptors(MaskTest):
    """Every descriptor hive-run makes for --mask is closed before it
    exits, after a run and on each way setting up can fail (issue 15):
    hive-run runs under strace with fewer and fewer descriptors allowed,
    so that each of its pipes in turn cannot be made."""

    def traced(self, limit):
        """(hive-run's status, stderr, the pipe2 and close calls it made)."""
        trace = os.path.join(self.work, "trace-%s" % limit)
        nofile = (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))) if limit else None
        env = dict(self.env)
        # an ASan build: LeakSanitizer cannot run under ptrace
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
        r = subprocess.run(["strace", "-qq", "-e", "trace=pipe2,close", "-o", trace, HIVE_RUN, "--mask", *VARS,
                            "--", "sh", "-c", "echo $T"], env=env, cwd=self.work, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT, preexec_fn=nofile)
        with open(trace) as f:
            return r.returncode, r.stdout, r.stderr, f.read()

    def test_every_descriptor_closed(self):
        if shutil.which("strace") is None:
            self.fail("strace is not installed (scripts/setup installs it)")
        failed = 0
        for limit in [5, 6, 7, 8, 9, None]:
            with self.subTest(limit=limit):
                code, out, err, trace = self.traced(limit)
                made = set()
                for a, b in re.findall(r"^pipe2\(\[(\d+), (\d+)\],.*= 0$", trace, re.M):
                    made |= {int(a), int(b)}
                closed = {int(fd) for fd in re.findall(r"^close\((\d+)\)\s+= 0$", trace, re.M)}
                self.assertTrue(made or code == 125, trace)
                self.assertEqual(made - closed, set(), "left open:\n" + trace[-3000:])
                if code == 125:
                    failed += 1
                    self.assertIn(b"hive-run: error: --mask: cannot make a pipe: Too many open files", err)
                else:
                    self.assertEqual((code, out), (0, M + b"\n"), err)
        self.assertGreaterEqual(failed, 3, "the limits no longer make each pipe fail in turn")


class TestSignals(MaskTest):

    def test_sigterm_forwarded(self):
        p = self.popen([PY, "-c",
                        "import os, signal, sys, time\n"
                        "def h(s, f):\n"
                        "    print('got TERM', os.environ['T'], flush=True); sys.exit(0)\n"
                        "signal.signal(signal.SIGTERM, h)\n"
                        "print('ready', flush=True)\n"
                        "time.sleep(20)\n"
                        "print('no signal', flush=True)\n"])
        buf = bytearray()
        self.read_until(p.stdout.fileno(), buf, b"ready\n")
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=TIMEOUT)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(bytes(buf) + out, b"ready\ngot TERM " + M + b"\n")
        self.assertEqual(err, b"")

    def test_sigterm_death_passed_through(self):
        p = self.popen(["sh", "-c", "echo ready; exec sleep 20"])
        buf = bytearray()
        self.read_until(p.stdout.fileno(), buf, b"ready\n")
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=TIMEOUT)
        self.assertEqual(p.returncode, -signal.SIGTERM, err)
        self.assertEqual((bytes(buf) + out, err), (b"ready\n", b""))

    def test_usr1_and_hup_forwarded(self):
        p = self.popen([PY, "-c",
                        "import signal, sys, time\n"
                        "signal.signal(signal.SIGUSR1, lambda s, f: print('usr1', flush=True))\n"
                        "def hup(s, f):\n"
                        "    print('hup', flush=True); sys.exit(4)\n"
                        "signal.signal(signal.SIGHUP, hup)\n"
                        "print('ready', flush=True)\n"
                        "time.sleep(20)\n"])
        fd = p.stdout.fileno()
        buf = bytearray()
        self.read_until(fd, buf, b"ready\n")
        p.send_signal(signal.SIGUSR1)
        self.read_until(fd, buf, b"usr1\n")
        p.send_signal(signal.SIGHUP)
        out, err = p.communicate(timeout=TIMEOUT)
        self.assertEqual(p.returncode, 4, err)
        self.assertEqual((bytes(buf) + out, err), (b"ready\nusr1\nhup\n", b""))

    def test_sigint_forwarded_once(self):
        p = self.popen([PY, "-c", COUNT_SIGINT])
        buf = bytearray()
        self.read_until(p.stdout.fileno(), buf, b"ready\n")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=TIMEOUT)
        self.assertEqual((bytes(buf) + out, err), (b"ready\ncount=1\n", b""))
        self.assertEqual(p.returncode, 0)

    def test_second_sigint_kills(self):
        p = self.popen([PY, "-c", COUNT_SIGINT])
        buf = bytearray()
        self.read_until(p.stdout.fileno(), buf, b"ready\n")
        p.send_signal(signal.SIGINT)
        time.sleep(0.3)
        self.assertIsNone(p.poll(), "one SIGINT ended it: the program counts them")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=TIMEOUT)
        self.assertEqual(p.returncode, -signal.SIGKILL, err)
        self.assertEqual((bytes(buf) + out, err), (b"ready\n", b""))

    def test_second_sigterm_kills(self):
        # the program ignores SIGTERM; the second one within 5 s: SIGKILL
        p = self.popen(["sh", "-c", "trap '' TERM; echo ready; exec sleep 20"])
        buf = bytearray()
        self.read_until(p.stdout.fileno(), buf, b"ready\n")
        p.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        self.assertIsNone(p.poll(), "one SIGTERM ended it: the program ignores SIGTERM")
        t = time.monotonic()
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=TIMEOUT)
        self.assertLess(time.monotonic() - t, 3.0)
        self.assertEqual(p.returncode, -signal.SIGKILL, err)
        self.assertEqual((bytes(buf) + out, err), (b"ready\n", b""))

    def test_terminal_ctrl_c_in_pipe_mode_reaches_program_once(self):
        # stdout is a pipe (pipe mode) but hive-run's controlling terminal
        # is a pty: ^C there signals hive-run and the program (same process
        # group); hive-run must not send it a second time
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        p = self.popen([PY, "-c", COUNT_SIGINT], stdin=slave, start_new_session=True,
                       preexec_fn=take_ctty)
        fd = p.stdout.fileno()
        buf = bytearray()
        self.read_until(fd, buf, b"ready\n")
        os.write(master, b"\x03")
        out, err = p.communicate(timeout=TIMEOUT)
        self.assertEqual((bytes(buf) + out, err), (b"ready\ncount=1\n", b""))
        self.assertEqual(p.returncode, 0)


# A program that counts SIGINTs for 1 s after saying it is ready.
COUNT_SIGINT = ("import signal, time\n"
                "n = 0\n"
                "def h(s, f):\n"
                "    global n\n"
                "    n += 1\n"
                "signal.signal(signal.SIGINT, h)\n"
                "print('ready', flush=True)\n"
                "end = time.monotonic() + 1\n"
                "while time.monotonic() < end:\n"
                "    time.sleep(0.02)\n"
                "print('count=%d' % n, flush=True)\n")


# --- terminal mode ------------------------------------------------------------

class TestTerminal(MaskTest):
    """hive-run on a pty made here, as a shell would start it: session
    leader, the pty its controlling terminal."""

    def start(self, argv, *opts, vars=VARS, size=(24, 80), stderr_tty=True, stdin_tty=True):
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
        self.master, self.slave = master, slave
        self.mode_before = termios.tcgetattr(slave)
        self.buf = bytearray()
        self.p = self.popen(argv, *opts, vars=vars, stdin=slave if stdin_tty else subprocess.DEVNULL,
                            stdout=slave, stderr=slave if stderr_tty else subprocess.PIPE,
                            start_new_session=True, preexec_fn=take_ctty if stdin_tty else None)
        return self.p

    def until(self, want, timeout=hivetest.scaled(10.0)):
        return self.read_until(self.master, self.buf, want, timeout)

    def finish(self, code=0):
        """Read until hive-run ends, then what is left; the outer
        terminal's mode must be what it was."""
        deadline = time.monotonic() + TIMEOUT
        while self.p.poll() is None:
            if time.monotonic() > deadline:
                self.fail("hive-run still running; got %r" % bytes(self.buf[-3000:]))
            self.read_for(self.master, self.buf, 0.05)
        self.read_for(self.master, self.buf, 0.3)
        self.assertEqual(self.p.returncode, code, bytes(self.buf))
        self.assertEqual(termios.tcgetattr(self.slave), self.mode_before,
                         "hive-run's terminal mode was not restored")
        return bytes(self.buf)

    def test_program_sees_terminals_and_output_masked(self):
        self.start([PY, "-c",
                    "import os, sys, time\n"
                    "print(os.isatty(1), os.isatty(2), os.isatty(0))\n"
                    "print('leader', os.getsid(0) == os.getpid(), 'fg', os.tcgetpgrp(1) == os.getpgrp())\n"
                    "print('\\x1b[32mgreen\\x1b[0m', os.environ['T'], os.environ['K'].encode().hex(),\n"
                    "      flush=True)\n"
                    "time.sleep(0.3)\n"
                    "sys.stderr.write('err ' + os.environ['U'] + '\\n')\n"])
        out = self.finish()
        self.assertEqual(out, b"True True True\r\nleader True fg True\r\n"
                              b"\x1b[32mgreen\x1b[0m [masked] [masked]\r\nerr [masked]\r\n")

    def test_stderr_not_a_terminal(self):
        self.start([PY, "-c",
                    "import os, sys\n"
                    "print(os.isatty(1), os.isatty(2), os.isatty(0), os.environ['T'], flush=True)\n"
                    "sys.stderr.write('err ' + os.environ['K'] + '\\n')\n"], stderr_tty=False)
        out = self.finish()
        err = self.p.stderr.read()
        self.assertEqual((out, err), (b"True False True [masked]\r\n", b"err [masked]\n"))

    def test_split_secret_on_terminal(self):
        self.start(["sh", "-c", "printf 'token: BSA-te'; sleep 0.3; printf 'st-0123456789abcdef!\\n'"])
        self.assertEqual(self.finish(), b"token: [masked]!\r\n")

    def test_prefix_at_exit_on_terminal(self):
        self.start([PY, "-c", "import os; os.write(1, os.environ['T'][:10].encode())"])
        self.assertEqual(self.finish(), BRAVE[:10].encode())

    def test_secret_that_begins_another_ends_the_output_on_terminal(self):
        self.start(["sh", "-c", 'printf "%s" "$A"'],
                   vars=["-e", "A={{brave.api_key}}", "-e", "B={{brave.api_key}}@host"])
        self.assertEqual(self.finish(), M)

    def test_overlapping_secrets_on_terminal(self):
        self.start(["sh", "-c", 'printf "x abcdef12ghijklmn y\\n"; printf "x abcdef12ghijklmn"'],
                   vars=TestUnionAndEnd.OVL)
        self.assertEqual(self.finish(), b"x " + M + b" y\r\nx " + M)

    def test_window_size(self):
        self.start([PY, "-c",
                    "import os, signal, time\n"
                    "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGWINCH])\n"
                    "def size(fd):\n"
                    "    s = os.get_terminal_size(fd)\n"
                    "    return '%d %d' % (s.lines, s.columns)\n"
                    "print('size', size(1), size(2), flush=True)\n"
                    "got = signal.sigtimedwait([signal.SIGWINCH], 10)\n"
                    "end = time.monotonic() + 3\n"
                    "while size(2) != size(1) and time.monotonic() < end:\n"
                    "    time.sleep(0.02)\n"
                    "print('winch' if got else 'no SIGWINCH', size(1), size(2), flush=True)\n"],
                   size=(40, 120))
        self.until(b"size 40 120 40 120\r\n")
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 100, 0, 0))
        self.p.send_signal(signal.SIGWINCH)
        self.assertEqual(self.finish(), b"size 40 120 40 120\r\nwinch 50 100 50 100\r\n")

    def test_ctrl_c_reaches_program_once(self):
        self.start([PY, "-c", COUNT_SIGINT])
        self.until(b"ready\r\n")
        os.write(self.master, b"\x03")
        # the program's terminal (cooked, ECHOCTL) echoes the ^C
        self.assertEqual(self.finish(), b"ready\r\n^Ccount=1\r\n")

    def test_raw_input(self):
        self.start([PY, "-c",
                    "import os, tty\n"
                    "tty.setraw(0)\n"
                    "os.write(1, b'ready\\r\\n')\n"
                    "got = b''\n"
                    "while len(got) < 3:\n"
                    "    got += os.read(0, 3 - len(got))\n"
                    "os.write(1, got.hex().encode() + b'\\r\\n')\n"])
        self.until(b"ready\r\n")
        os.write(self.master, b"abc")
        self.assertEqual(self.finish(), b"ready\r\n616263\r\n")

    def test_cooked_input_line(self):
        # the program's terminal is in the outer one's (cooked) mode: a
        # line typed there is echoed by it and read as a line
        self.start([PY, "-c", "import sys\n"
                    "print('ready', flush=True)\n"
                    "print('got', repr(sys.stdin.readline()))\n"])
        self.until(b"ready\r\n")
        os.write(self.master, b"hi there\r")
        self.assertEqual(self.finish(), b"ready\r\nhi there\r\ngot 'hi there\\n'\r\n")

    def test_large_output_on_terminal(self):
        rng = random.Random(11)
        forms = list(encodings(BRAVE).values()) + list(encodings(URLY).values())
        data, want = [], []
        for i in range(3000):
            filler = ("line %d " % i).encode() + b"." * rng.randrange(0, 300) + b"\n" * rng.randrange(0, 2)
            form = rng.choice(forms)
            data += [filler, form]
            want += [filler, M]
        data = b"".join(data) + b"\n"
        want = b"".join(want).replace(b"\n", b"\r\n") + b"\r\n"
        path = os.path.join(self.work, "big")
        with open(path, "wb") as fh:
            fh.write(data)
        self.start(["cat", path])
        out = self.finish()
        self.assertEqual(len(out), len(want))
        self.assertTrue(out == want, "masked output differs")

    def test_ctrl_z_with_a_program_that_stops_itself(self):
        # Like an editor: it catches SIGTSTP, writes what puts the terminal
        # back (here 40 KB and 'tstp'), then stops itself. hive-run must
        # pass on everything the program wrote before it stopped, give its
        # terminal back and stop too; on SIGCONT take the terminal again and
        # continue the program. The outer terminal is read slowly (as a slow
        # terminal would), so the program's last output is still on its way
        # when it stops.
        self.start([PY, "-c",
                    "import os, signal, sys\n"
                    "def tstp(s, f):\n"
                    "    sys.stdout.write(('x' * 99 + '\\n') * 400 + 'tstp\\n'); sys.stdout.flush()\n"
                    "    os.kill(os.getpid(), signal.SIGSTOP)\n"
                    "    print('cont', flush=True)\n"
                    "signal.signal(signal.SIGTSTP, tstp)\n"
                    "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])\n"
                    "print('ready', flush=True)\n"
                    "signal.sigtimedwait([signal.SIGUSR1], 10)\n"
                    "print('after', flush=True)\n"])
        self.until(b"ready\r\n")
        raw = termios.tcgetattr(self.slave)
        self.assertNotEqual(raw, self.mode_before, "hive-run did not put its terminal in raw mode")
        os.write(self.master, b"\x1a")
        deadline = time.monotonic() + 10
        while proc_state(self.p.pid) != "T":
            self.assertLess(time.monotonic(), deadline, "hive-run did not stop")
            if select.select([self.master], [], [], 0.05)[0]:
                self.buf += os.read(self.master, 4096)
        self.read_for(self.master, self.buf, 0.5)
        before_stop = b"ready\r\n^Z" + (b"x" * 99 + b"\r\n") * 400 + b"tstp\r\n"
        self.assertEqual(termios.tcgetattr(self.slave), self.mode_before, "terminal not given back")
        self.assertEqual(len(self.buf), len(before_stop), "what the program wrote before it stopped")
        self.assertEqual(self.buf, before_stop)
        os.kill(self.p.pid, signal.SIGCONT)
        self.until(b"cont\r\n")
        self.assertEqual(termios.tcgetattr(self.slave), raw)
        self.assertEqual(self.buf, before_stop + b"cont\r\n")
        self.p.send_signal(signal.SIGUSR1)
        self.assertEqual(self.finish(), before_stop + b"cont\r\nafter\r\n")

    def test_multiline_value_as_in_pipe_mode(self):
        # what is masked does not depend on the terminal: a value holding
        # newlines (a PEM block) is masked on a terminal, whose output
        # processing turns '\n' into '\r\n', as it is in a pipe
        pem = ["-e", "PEM=-----BEGIN KEY-----\n{{brave.api_key}}\n-----END KEY-----"]
        script = 'printf "%s\\n" "$PEM"'
        piped = self.sh(script, vars=pem)
        self.check(piped, 0, None)
        self.assertNotIn(BRAVE.encode(), piped.stdout)
        self.start(["sh", "-c", script], vars=pem)
        out = self.finish()
        self.assertEqual(out, piped.stdout.replace(b"\n", b"\r\n"))

    def test_exit_codes_on_terminal(self):
        for script, code in [("exit 3", 3), ("kill -TERM $$", -signal.SIGTERM)]:
            with self.subTest(script=script):
                self.start(["sh", "-c", "echo $T; " + script])
                self.assertEqual(self.finish(code), b"[masked]\r\n")

    def test_stdin_not_a_terminal(self):
        # stdout a terminal, stdin not: the program gets a terminal for its
        # output and hive-run's stdin as it is
        self.start([PY, "-c", "import os; print(os.isatty(1), os.isatty(2), os.isatty(0), os.environ['K'])"],
                   stdin_tty=False)
        out = self.finish()
        # hive-run's terminal is not put in raw mode (stdin is not it), so
        # its own output processing turns the '\r\n' of the program's
        # terminal into '\r\r\n' (shows the same on a screen)
        self.assertEqual(out.replace(b"\r\r\n", b"\r\n"), b"True True False [masked]\r\n")


def main():
    hivetest.main(binaries=["hive-run", "hive-cred"])


if __name__ == "__main__":
    main()
