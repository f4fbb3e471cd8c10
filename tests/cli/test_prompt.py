#!/usr/bin/env python3
"""hive-cred add's prompts on a terminal, typed at through a pseudo-terminal.

Run:  python3 tests/cli/test_prompt.py [unittest options]

Environment:
  HIVE_CRED     path of the hive-cred binary
                (default: <repo>/build/launcher/hive-cred)

hive-cred runs in a session of its own with the slave of a pseudo-terminal
made here as its controlling terminal and as its stdin, stdout and stderr;
the test types at the master and reads what the terminal shows from it.
What is checked (launcher/hive-cred.c read_values_from_tty, launcher/cli.c
cli_prompt): the key name is echoed, the value is not (neither while typed
nor after), the value is stored exactly; the terminal's echo is back on
when hive-cred exits; end of input (^D) at either prompt stores nothing and
exits 2 with "input ended; nothing stored"; ^C at the key-name prompt ends
hive-cred by SIGINT at once; ^C at the hidden prompt is held until the
terminal's echo is back (the line is ended), then ends hive-cred by SIGINT,
nothing stored; with the terminal's ISIG off a ^C or ^D byte ends the
input like end of input.
"""

import fcntl
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lib"))
import hivetest  # noqa: E402  (tests/lib/hivetest.py)

HIVE_CRED = hivetest.HIVE_CRED
TIMEOUT = hivetest.scaled(30)

SECRET = "s3cret-Value-0123456789"
NAME_PROMPT = b"Key name [api_key]: "
VALUE_PROMPT = b"Value for api_key (not echoed): "
NEXT_PROMPT = b"Another key name (empty to finish): "
ENDED = b"hive-cred: error: input ended; nothing stored"
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3


def take_ctty():
    """preexec_fn: the new session's controlling terminal is stdin."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PromptTest(unittest.TestCase):
    """One initialised HIVE_HOME and one pseudo-terminal per test."""

    maxDiff = None

    def setUp(self):
        self.tmp = hivetest.temp_dir(self, "hive-prompt-test-")
        self.env = hivetest.clean_env(os.path.join(self.tmp, "home"))
        r = hivetest.run([HIVE_CRED, "init"], self.env, timeout=TIMEOUT, cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.master, self.slave = pty.openpty()
        self.addCleanup(os.close, self.master)
        self.addCleanup(os.close, self.slave)
        self.screen = bytearray()

    # --- helpers -------------------------------------------------------

    def start(self, *args):
        p = subprocess.Popen([HIVE_CRED, "add", "x", *args], stdin=self.slave, stdout=self.slave,
                             stderr=self.slave, env=self.env, cwd=self.tmp, start_new_session=True,
                             preexec_fn=take_ctty)
        self.addCleanup(hivetest.reap, p)
        return p

    def read_until(self, want):
        """Read the terminal until want is on it (after what was read so far)."""
        deadline = time.monotonic() + TIMEOUT
        while want not in self.screen:
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail("%r not on the terminal within %.0f s; it shows %r" % (want, TIMEOUT, bytes(self.screen)))
            if select.select([self.master], [], [], left)[0]:
                self.screen += os.read(self.master, 4096)

    def drain(self):
        """What is left to read on the terminal now."""
        while select.select([self.master], [], [], 0.05)[0]:
            chunk = os.read(self.master, 4096)
            if not chunk:
                break
            self.screen += chunk

    def type(self, data):
        os.write(self.master, data)

    def finish(self, p):
        """hive-cred's exit status; then the whole screen is read."""
        rc = p.wait(timeout=TIMEOUT)
        self.drain()
        return rc

    def echo_on(self):
        return bool(termios.tcgetattr(self.slave)[3] & termios.ECHO)

    def at_value_prompt(self):
        """Wait for the hidden prompt and for echo to be off: what is typed
        before that may be echoed, or flushed."""
        self.read_until(VALUE_PROMPT)
        self.wait_echo_off()

    def wait_echo_off(self):
        """Wait until hive-cred has turned echo off (it prints the prompt
        first)."""
        deadline = time.monotonic() + TIMEOUT
        while self.echo_on():
            self.assertLess(time.monotonic(), deadline, "echo never turned off")
            time.sleep(0.01)

    def stored(self, key="api_key"):
        return hivetest.run([HIVE_CRED, "get", "x", key], self.env, timeout=TIMEOUT, cwd=self.tmp)

    def assert_nothing_stored(self):
        r = self.stored()
        self.assertEqual(r.returncode, EXIT_NOT_FOUND, r)

    def assert_value_hidden(self, value):
        self.assertNotIn(value.encode(), bytes(self.screen), "the value was echoed")

    def wait_blocked(self, p, sig):
        """Wait until p has sig pending and blocked (cli_prompt holds it while
        echo is off)."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            with open("/proc/%d/status" % p.pid) as f:
                status = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
            pending = int(status["SigPnd"], 16) | int(status["ShdPnd"], 16)
            if int(status["SigBlk"], 16) & pending & (1 << (sig - 1)):
                return
            self.assertLess(time.monotonic(), deadline, "signal %d never pending" % sig)
            time.sleep(0.01)

    # --- tests ---------------------------------------------------------

    def test_value_not_echoed_and_stored(self):
        p = self.start()
        self.read_until(NAME_PROMPT)
        self.type(b"\n")                        # the default name, api_key
        self.at_value_prompt()
        self.type(SECRET.encode() + b"\n")
        self.read_until(NEXT_PROMPT)
        self.assertTrue(self.echo_on(), "echo is still off at the next prompt")
        self.type(b"\n")
        self.assertEqual(self.finish(p), 0, bytes(self.screen))
        self.assert_value_hidden(SECRET)
        self.assertTrue(self.echo_on())
        r = self.stored()
        self.assertEqual((r.returncode, r.stdout), (0, (SECRET + "\n").encode()))

    def test_key_name_is_echoed(self):
        p = self.start()
        self.read_until(NAME_PROMPT)
        self.type(b"token\n")
        self.read_until(b"token\r\nValue for token (not echoed): ")
        self.wait_echo_off()
        self.type(SECRET.encode() + b"\n")
        self.read_until(NEXT_PROMPT)
        self.type(b"\n")
        self.assertEqual(self.finish(p), 0, bytes(self.screen))
        self.assert_value_hidden(SECRET)
        r = self.stored("token")
        self.assertEqual((r.returncode, r.stdout), (0, (SECRET + "\n").encode()))

    def test_end_of_input_at_the_value_prompt(self):
        p = self.start()
        self.read_until(NAME_PROMPT)
        self.type(b"\n")
        self.at_value_prompt()
        self.type(b"\x04")                      # ^D on an empty line
        self.assertEqual(self.finish(p), EXIT_USAGE, bytes(self.screen))
        self.read_until(ENDED)
        self.assertTrue(self.echo_on(), "echo left off")
        self.assert_nothing_stored()

    def test_end_of_input_at_the_name_prompt(self):
        p = self.start()
        self.read_until(NAME_PROMPT)
        self.type(b"\x04")
        self.assertEqual(self.finish(p), EXIT_USAGE, bytes(self.screen))
        self.read_until(ENDED)
        self.assert_nothing_stored()

    def test_end_of_input_after_a_value_stores_nothing(self):
        """A first value typed, then ^D at the next name: nothing at all stored."""
        p = self.start()
        self.read_until(NAME_PROMPT)
        self.type(b"\n")
        self.at_value_prompt()
        self.type(SECRET.encode() + b"\n")
        self.read_until(NEXT_PROMPT)
        self.type(b"\x04")
        self.assertEqual(self.finish(p), EXIT_USAGE, bytes(self.screen))
        self.read_until(ENDED)
        self.assert_value_hidden(SECRET)
        self.assert_nothing_stored()

    def test_interrupt_at_the_name_prompt(self):
        p = self.start()
        self.read_until(NAME_PROMPT)
        self.type(b"\x03")
        self.assertEqual(self.finish(p), -signal.SIGINT, bytes(self.screen))
        self.assert_nothing_stored()

    def test_interrupt_at_the_hidden_prompt_waits_for_echo(self):
        """^C while echo is off: held (the terminal must get its echo back),
        taking effect when the line ends; nothing stored, echo on."""
        p = self.start()
        self.read_until(NAME_PROMPT)
        self.type(b"\n")
        self.at_value_prompt()
        self.type(b"half-typed\x03")
        self.wait_blocked(p, signal.SIGINT)
        self.assertIsNone(p.poll(), "ended with echo off")
        self.assertFalse(self.echo_on())
        self.type(b"\n")
        self.assertEqual(self.finish(p), -signal.SIGINT, bytes(self.screen))
        self.assertTrue(self.echo_on(), "echo left off")
        self.assert_value_hidden("half-typed")
        self.assert_nothing_stored()

    def test_raw_control_bytes_end_the_input(self):
        """With ISIG off the terminal passes ^C and ^D as bytes: either ends
        the input at the hidden prompt."""
        attrs = termios.tcgetattr(self.slave)
        attrs[3] &= ~(termios.ISIG | termios.ICANON)
        attrs[6][termios.VMIN] = 1
        attrs[6][termios.VTIME] = 0
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
        for byte in (b"\x03", b"\x04"):
            with self.subTest(byte=byte):
                self.screen = bytearray()
                p = self.start()
                self.read_until(NAME_PROMPT)
                self.type(b"\n")
                self.at_value_prompt()
                self.type(b"abc" + byte)
                self.assertEqual(self.finish(p), EXIT_USAGE, bytes(self.screen))
                self.read_until(ENDED)
                self.assert_value_hidden("abc")
                self.assertTrue(self.echo_on(), "echo left off")
                self.assert_nothing_stored()


def main():
    hivetest.main(binaries=["hive-cred"])


if __name__ == "__main__":
    main()
