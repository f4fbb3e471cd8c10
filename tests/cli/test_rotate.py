#!/usr/bin/env python3
"""hive-cred rotate-key, end to end.

Run:  python3 tests/cli/test_rotate.py [unittest options]

Environment:
  HIVE_CRED     path of the hive-cred binary
                (default: <repo>/build/launcher/hive-cred)
  HIVE_FIXTURE  path of the fixture Hive home written by Python Hive
                (default: <repo>/tests/data/fixtures/hive-home)

What is checked with Python alone (cryptography's Fernet): after a
rotation every file opens with the new key and none with the old, every
plaintext is byte for byte what it was, and the index is untouched; a given
HIVE_NEW_CREDENTIAL_KEY is the key that ends up in the key file; a key kept
only in the environment is never rotated to a key that would exist only in
the process: it needs --new-key-file, a file that gets (or holds) the new
key and is named in the output; a rotation killed half way leaves everything readable and
the next run finishes it; a damaged file is reported and left alone; the
progress line is for terminals only.
"""

import errno
import json
import os
import pty
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lib"))
import hivetest  # noqa: E402  (tests/lib/hivetest.py)

HIVE_CRED = hivetest.HIVE_CRED
FIXTURE = hivetest.FIXTURE
MAKE_STORE = REPO / "bench" / "make_store.py"

TIMEOUT = hivetest.scaled(120)


def opens(token, key):
    """The plaintext of token under key, or None."""
    try:
        return Fernet(key).decrypt(token)
    except InvalidToken:
        return None


class RotateTest(unittest.TestCase):
    """One temporary HIVE_HOME per test; no key in the environment."""

    maxDiff = None

    def setUp(self):
        self.tmp = hivetest.temp_dir(self, "hive-rotate-test-")
        self.home = os.path.join(self.tmp, "home")
        self.store = os.path.join(self.home, "credentials")
        self.cdir = os.path.join(self.store, "credentials")
        self.index_path = os.path.join(self.store, "metadata", "index.json")
        self.sdir = os.path.join(self.home, "secrets")
        self.key_path = os.path.join(self.sdir, "credential_key")
        self.new_path = self.key_path + ".new"
        self.env = hivetest.clean_env(self.home)

    # --- helpers -------------------------------------------------------

    def run_cred(self, *args, stdin=b"", extra_env=None, stderr=subprocess.PIPE):
        e = dict(self.env)
        e.update(extra_env or {})
        return hivetest.run([HIVE_CRED, *args], e, stdin=stdin, timeout=TIMEOUT, cwd=self.tmp, stderr=stderr)

    def check(self, r, code):
        self.assertEqual(r.returncode, code, "%s: exit %d, expected %d\nstdout: %r\nstderr: %r"
                         % (" ".join(map(str, r.args[1:])), r.returncode, code, r.stdout, r.stderr))
        return r

    def copy_fixture(self):
        self.expected = hivetest.copy_fixture(self.home)
        self.key = self.read_key()
        self.assertEqual(self.key, self.expected["key"].encode())

    def make_store(self, home, n):
        """n credentials c0..c{n-1} (key k), written in Python as Hive does."""
        subprocess.run([sys.executable, str(MAKE_STORE), home, str(n)], check=True, timeout=TIMEOUT)

    def read_key(self, path=None):
        """The bytes of a file, by default the key file."""
        with open(path or self.key_path, "rb") as f:
            return f.read()

    def tokens(self):
        out = {}
        for name in sorted(os.listdir(self.cdir)):
            if name.endswith(".enc") and not name.startswith("."):
                with open(os.path.join(self.cdir, name), "rb") as f:
                    out[name] = f.read()
        return out

    def plaintexts(self, key):
        """{file: plaintext}, every file opening with key."""
        out = {}
        for name, token in self.tokens().items():
            plain = opens(token, key)
            self.assertIsNotNone(plain, "%s does not open with the key" % name)
            out[name] = plain
        return out

    def read_index_text(self):
        with open(self.index_path, "rb") as f:
            return f.read()

    def assert_no_tmp(self):
        for d in (self.cdir, os.path.dirname(self.index_path), self.sdir):
            self.assertEqual([n for n in os.listdir(d) if n.startswith(".tmp-")], [], d)

    def assert_rotated(self, old_key, new_key, before):
        """Every file: new key yes, old key no, plaintext unchanged."""
        tokens = self.tokens()
        self.assertEqual(sorted(tokens), sorted(before))
        for name, token in tokens.items():
            with self.subTest(file=name):
                self.assertIsNone(opens(token, old_key), "the old key still opens %s" % name)
                self.assertEqual(opens(token, new_key), before[name])

    # --- the fixture --------------------------------------------------

    def test_rotate_fixture(self):
        self.copy_fixture()
        before = self.plaintexts(self.key)
        self.assertEqual(len(before), 8)
        index = self.read_index_text()
        r = self.check(self.run_cred("rotate-key"), 0)
        self.assertEqual(r.stderr, b"")
        out = r.stdout.decode()
        self.assertIn("re-encrypted 8 of 8 credential(s)\n", out)
        self.assertNotIn("earlier", out)
        self.assertIn(self.key_path, out)
        new_key = self.read_key()
        self.assertNotEqual(new_key, self.key)
        self.assertEqual(len(Fernet(new_key)._signing_key), 16)   # a Fernet key
        self.assertNotIn(new_key, r.stdout)                        # never printed
        self.assertEqual(stat.S_IMODE(os.stat(self.key_path).st_mode), 0o600)
        self.assertFalse(os.path.exists(self.new_path))
        self.assert_rotated(self.key, new_key, before)
        for name in os.listdir(self.cdir):
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.cdir, name)).st_mode), 0o600)
        self.assertEqual(self.read_index_text(), index, "the index changed")
        self.assert_no_tmp()
        # and hive-cred reads the same values with the new key
        for c in self.expected["credentials"]:
            for name, value in c["keys"].items():
                r = self.check(self.run_cred("get", c["id"], name), 0)
                self.assertEqual(r.stdout, (value + "\n").encode("utf-8"))
        # a second rotation moves on to a third key
        self.check(self.run_cred("rotate-key"), 0)
        third = self.read_key()
        self.assertNotIn(third, (self.key, new_key))
        self.assert_rotated(new_key, third, before)
        self.assertEqual(self.read_index_text(), index)

    def test_given_new_key(self):
        self.copy_fixture()
        before = self.plaintexts(self.key)
        given = Fernet.generate_key()
        r = self.check(self.run_cred("rotate-key", extra_env={"HIVE_NEW_CREDENTIAL_KEY": given.decode()}), 0)
        self.assertNotIn(given, r.stdout + r.stderr)
        self.assertEqual(self.read_key(), given)
        self.assertFalse(os.path.exists(self.new_path))
        self.assert_rotated(self.key, given, before)

    def test_given_key_not_a_key(self):
        self.copy_fixture()
        tokens = self.tokens()
        r = self.check(self.run_cred("rotate-key", extra_env={"HIVE_NEW_CREDENTIAL_KEY": "not-a-key"}), 4)
        self.assertIn("not a Fernet key", r.stderr.decode())
        self.assertEqual(self.tokens(), tokens)
        self.assertEqual(self.read_key(), self.key)
        self.assertFalse(os.path.exists(self.new_path))

    def test_given_key_is_the_current_key(self):
        # Refused, and refused without a trace: no pending key file that
        # would make every later rotation fail the same way.
        self.copy_fixture()
        before = self.plaintexts(self.key)
        tokens = self.tokens()
        r = self.check(self.run_cred("rotate-key", extra_env={"HIVE_NEW_CREDENTIAL_KEY": self.key.decode()}), 2)
        self.assertIn("the new key is the current key", r.stderr.decode())
        self.assertEqual(self.tokens(), tokens)
        self.assertEqual(self.read_key(), self.key)
        self.assertFalse(os.path.exists(self.new_path),
                         "a refused rotation left credential_key.new (holding the current key) behind")
        r = self.check(self.run_cred("rotate-key"), 0)
        self.assert_rotated(self.key, self.read_key(), before)

    def test_pending_rotation_refuses_another_given_key(self):
        # A rotation killed after it saved its key: credential_key.new holds
        # it and some files are under it. A later run given another key
        # must not finish with the pending key (the user's own key would
        # open nothing): refused, naming the pending key by file and
        # fingerprint, never printing a key.
        import hashlib
        self.copy_fixture()
        before = self.plaintexts(self.key)
        pending = Fernet.generate_key()
        with open(os.open(self.new_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(pending)
        first = sorted(self.tokens())[0]
        with open(os.path.join(self.cdir, first), "wb") as f:
            f.write(Fernet(pending).encrypt(before[first]))
        tokens = self.tokens()
        given = Fernet.generate_key()
        r = self.check(self.run_cred("rotate-key", extra_env={"HIVE_NEW_CREDENTIAL_KEY": given.decode()}), 6)
        err = r.stderr.decode()
        lines = err.splitlines()
        self.assertTrue(lines[0].startswith("hive-cred: error: "), err)
        self.assertIn(self.new_path, lines[0])
        fp = lambda k: hashlib.sha256(k).hexdigest()[:8]
        self.assertIn("key %s in %s" % (fp(pending), self.new_path), lines[0])
        self.assertIn("HIVE_NEW_CREDENTIAL_KEY is key %s" % fp(given), lines[0])
        self.assertTrue(all(line.startswith("hint: ") for line in lines[1:]), err)
        for k in (pending, given, self.key):
            self.assertNotIn(k, r.stdout + r.stderr)
        self.assertEqual(r.stdout, b"")
        self.assertEqual(self.tokens(), tokens)
        self.assertEqual(self.read_key(), self.key)
        self.assertEqual(self.read_key(self.new_path), pending)
        # the pending key given explicitly, or none, finishes the rotation
        r = self.check(self.run_cred("rotate-key", extra_env={"HIVE_NEW_CREDENTIAL_KEY": pending.decode()}), 0)
        self.assertEqual(self.read_key(), pending)
        self.assert_rotated(self.key, pending, before)
        # and then the user's key is taken
        self.check(self.run_cred("rotate-key", extra_env={"HIVE_NEW_CREDENTIAL_KEY": given.decode()}), 0)
        self.assertEqual(self.read_key(), given)
        self.assert_rotated(pending, given, before)

    # --- a key kept only in the environment ------------------------------

    def test_env_key_needs_new_key_file(self):
        """The README used to say HIVE_NEW_CREDENTIAL_KEY=$(hive-cred keygen)
        hive-cred rotate-key: the store ended under a key that lived only in
        that subshell. A new key that would exist only in the process is
        refused, nothing changed, however it is given."""
        self.copy_fixture()
        os.remove(self.key_path)
        tokens = self.tokens()
        env_key = {"HIVE_CREDENTIAL_KEY": self.key.decode()}
        for extra in ({}, {"HIVE_NEW_CREDENTIAL_KEY": Fernet.generate_key().decode()}):
            with self.subTest(extra=sorted(extra)):
                r = self.check(self.run_cred("rotate-key", extra_env=dict(env_key, **extra)), 2)
                err = r.stderr.decode()
                self.assertTrue(err.startswith("hive-cred: error: "), err)
                self.assertIn("only in this process; nothing changed", err)
                hints = [line for line in err.splitlines() if line.startswith("hint: ")]
                self.assertTrue(hints and "--new-key-file FILE" in hints[0], err)
                self.assertEqual(r.stdout, b"")
                self.assertEqual(self.tokens(), tokens)
                self.assertEqual(os.listdir(self.tmp), ["home"])

    def test_env_key_new_key_file_made(self):
        self.copy_fixture()
        before = self.plaintexts(self.key)
        os.remove(self.key_path)
        env_key = {"HIVE_CREDENTIAL_KEY": self.key.decode()}
        new_file = os.path.join(self.tmp, "new_key")
        r = self.check(self.run_cred("rotate-key", "--new-key-file", new_file, extra_env=env_key), 0)
        out = r.stdout.decode()
        self.assertIn("re-encrypted 8 of 8", out)
        self.assertIn("key:   %s holds the new key: put it in HIVE_CREDENTIAL_KEY" % new_file, out)
        self.assertEqual(stat.S_IMODE(os.stat(new_file).st_mode), 0o600)
        given = self.read_key(new_file).strip()
        self.assertNotIn(given, r.stdout + r.stderr)
        self.assertNotIn(self.key, r.stdout + r.stderr)
        # no key file was written in the store: the key lives where the user keeps it
        self.assertFalse(os.path.exists(self.key_path))
        self.assertFalse(os.path.exists(self.new_path))
        self.assert_rotated(self.key, given, before)
        r = self.check(self.run_cred("get", "brave_search", extra_env={"HIVE_CREDENTIAL_KEY": given.decode()}), 0)
        self.assertEqual(r.stdout, b"BSA-test-0123456789abcdef\n")
        # the file is the user's: kept until they delete it; a second
        # rotation with the same file finds nothing left to do
        r = self.check(self.run_cred("rotate-key", "--new-key-file", new_file,
                                     extra_env={"HIVE_CREDENTIAL_KEY": given.decode()}), 2)
        self.assertIn("the new key is the current key", r.stderr.decode())
        self.assertEqual(self.read_key(new_file).strip(), given)

    def test_env_key_new_key_file_given(self):
        self.copy_fixture()
        before = self.plaintexts(self.key)
        os.remove(self.key_path)
        env_key = {"HIVE_CREDENTIAL_KEY": self.key.decode()}
        given = Fernet.generate_key()
        new_file = os.path.join(self.tmp, "vault_key")
        fd = os.open(new_file, os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, given + b"\n")
        os.close(fd)
        tokens = self.tokens()
        # group-readable: refused like a key file
        r = self.check(self.run_cred("rotate-key", "--new-key-file", new_file, extra_env=env_key), 6)
        self.assertIn("hint: chmod 600 " + new_file, r.stderr.decode())
        os.chmod(new_file, 0o600)
        # HIVE_NEW_CREDENTIAL_KEY naming another key than the file: refused
        other = Fernet.generate_key().decode()
        r = self.check(self.run_cred("rotate-key", "--new-key-file", new_file,
                                     extra_env=dict(env_key, HIVE_NEW_CREDENTIAL_KEY=other)), 6)
        self.assertIn("is another key than the one in", r.stderr.decode())
        self.assertNotIn(other.encode(), r.stderr)
        self.assertEqual(self.tokens(), tokens)
        # not a key
        bad = os.path.join(self.tmp, "bad_key")
        fd = os.open(bad, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"not a key\n")
        os.close(fd)
        self.check(self.run_cred("rotate-key", "--new-key-file", bad, extra_env=env_key), 4)
        self.assertEqual(self.tokens(), tokens)
        r = self.check(self.run_cred("rotate-key", "--new-key-file", new_file, extra_env=env_key), 0)
        self.assert_rotated(self.key, given, before)
        self.assertEqual(self.read_key(new_file), given + b"\n")

    def test_env_key_with_a_key_file_beside(self):
        """HIVE_CREDENTIAL_KEY wins over the key file, which the rotation
        leaves holding the old key: said, so that nobody trusts it later."""
        self.copy_fixture()
        before = self.plaintexts(self.key)
        new_file = os.path.join(self.tmp, "new_key")
        r = self.check(self.run_cred("rotate-key", "--new-key-file", new_file,
                                     extra_env={"HIVE_CREDENTIAL_KEY": self.key.decode()}), 0)
        self.assertIn("hive-cred: warning: the key file %s was not used (HIVE_CREDENTIAL_KEY was) and holds "
                      "the old key" % self.key_path, r.stderr.decode())
        self.assertEqual(self.read_key(), self.key)
        self.assert_rotated(self.key, self.read_key(new_file).strip(), before)

    def test_new_key_file_with_key_file(self):
        """With a key file, --new-key-file chooses the key that goes into it."""
        self.copy_fixture()
        before = self.plaintexts(self.key)
        given = Fernet.generate_key()
        new_file = os.path.join(self.tmp, "given")
        fd = os.open(new_file, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, given)
        os.close(fd)
        self.check(self.run_cred("rotate-key", "--new-key-file", new_file), 0)
        self.assertEqual(self.read_key(), given)
        self.assert_rotated(self.key, given, before)

    def test_etcd_store_is_a_usage_error(self):
        """Not a refresh failure (it was exit 7)."""
        r = self.check(self.run_cred("--store", "etcd://127.0.0.1:9/hive", "rotate-key"), 2)
        self.assertIn("rotate-key works on a file store", r.stderr.decode())

    def test_new_key_file_only_for_rotate(self):
        r = self.check(self.run_cred("list", "--new-key-file", "x"), 2)
        self.assertIn("applies to 'rotate-key' only", r.stderr.decode())

    # --- killed half way -------------------------------------------------

    def test_killed_halfway_then_resumed(self):
        n = 2000
        pristine = os.path.join(self.tmp, "pristine")
        self.make_store(pristine, n)
        old_key = self.read_key(os.path.join(pristine, "secrets", "credential_key"))
        delay = 0.05
        for attempt in range(20):
            shutil.rmtree(self.home, ignore_errors=True)
            shutil.copytree(pristine, self.home)
            # from the moment the pending key is on disk, ~50 ms of work
            rc = hivetest.kill_when([HIVE_CRED, "rotate-key"], self.env, self.tmp, self.new_path, delay)
            if rc != -signal.SIGKILL or not os.path.exists(self.new_path):
                delay /= 2          # it finished: kill sooner
                continue
            new_key = self.read_key(self.new_path)
            under_old = under_new = 0
            for name, token in self.tokens().items():
                if opens(token, old_key) is not None:
                    under_old += 1
                elif opens(token, new_key) is not None:
                    under_new += 1
                else:
                    self.fail("%s opens with neither key after the kill" % name)
            if under_old and under_new:
                break
            delay = delay * 2 if under_old else delay / 2
        else:
            self.fail("no kill landed in the middle of the rotation in 20 attempts")
        self.assertEqual(under_old + under_new, n)
        self.assertEqual(self.read_key(), old_key, "the key file switched before the end")
        # every credential reads through hive-cred: all at once, then some
        # of each kind through get
        want = {"c%d" % i: "value-%d-" % i + "x" * 24 for i in range(n)}
        ids = sorted(want)
        r = self.check(self.run_cred("resolve", "\n".join("{{%s}}" % i for i in ids)), 0)
        self.assertEqual(r.stdout.decode().split("\n")[:-1], [want[i] for i in ids])
        sample = {"old": [], "new": []}
        for name, token in self.tokens().items():
            kind = "old" if opens(token, old_key) is not None else "new"
            if len(sample[kind]) < 5:
                sample[kind].append(name[:-4])
        for kind, sids in sample.items():
            for cid in sids:
                with self.subTest(kind=kind, id=cid):
                    r = self.check(self.run_cred("get", cid), 0)
                    self.assertEqual(r.stdout, (want[cid] + "\n").encode())
        # a write meanwhile uses the new key
        self.check(self.run_cred("add", "during", stdin=b"k=written-mid-rotation\n"), 0)
        with open(os.path.join(self.cdir, "during.enc"), "rb") as f:
            self.assertIsNotNone(opens(f.read(), new_key))
        # the second run finishes, and says an earlier run did part of it
        r = self.check(self.run_cred("rotate-key"), 0)
        out = r.stdout.decode()
        self.assertIn("re-encrypted %d of %d credential(s) (%d done by an earlier, interrupted run)"
                      % (under_old, n + 1, under_new + 1), out)
        self.assertEqual(self.read_key(), new_key)
        self.assertFalse(os.path.exists(self.new_path))
        for name, token in self.tokens().items():
            self.assertIsNone(opens(token, old_key), name)
            plain = opens(token, new_key)
            self.assertIsNotNone(plain, name)
            doc = json.loads(plain)
            if doc["id"] != "during":
                self.assertEqual(doc["keys"]["k"]["value"], want[doc["id"]])
        self.assert_no_tmp()

    # --- damaged files ---------------------------------------------------

    def test_damaged_file_reported_and_untouched(self):
        self.copy_fixture()
        before = self.plaintexts(self.key)
        garbage = os.path.join(self.cdir, "anthropic.enc")
        foreign = os.path.join(self.cdir, "internal_jwt.enc")
        with open(garbage, "wb") as f:
            f.write(b"this is not a Fernet token\n")
        with open(foreign, "wb") as f:
            f.write(Fernet(Fernet.generate_key()).encrypt(b'{"id": "internal_jwt"}'))
        damaged = {p: (self.read_key(p), os.stat(p).st_ino, os.stat(p).st_mtime_ns)
                   for p in (garbage, foreign)}
        r = self.check(self.run_cred("rotate-key"), 5)
        self.assertIn("re-encrypted 6 of 8 credential(s)", r.stdout.decode())
        err = r.stderr.decode()
        self.assertRegex(err, r"^hive-cred: warning: 2 credential file\(s\) could be read with neither key")
        for p, (data, ino, mtime) in damaged.items():
            self.assertEqual(self.read_key(p), data, p)
            self.assertEqual((os.stat(p).st_ino, os.stat(p).st_mtime_ns), (ino, mtime), p)
        new_key = self.read_key()
        self.assertNotEqual(new_key, self.key)
        for name, token in self.tokens().items():
            if os.path.join(self.cdir, name) in damaged:
                continue
            self.assertEqual(opens(token, new_key), before[name], name)
            self.assertIsNone(opens(token, self.key), name)

    # --- progress --------------------------------------------------------

    def run_on_pty(self, *args):
        """Run hive-cred with stderr on a terminal; (exit code, stdout, what
        the terminal got)."""
        master, slave = pty.openpty()
        try:
            p = subprocess.Popen([HIVE_CRED, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=slave, env=self.env, cwd=self.tmp)
        finally:
            os.close(slave)
        term = b""
        try:
            while True:
                ready, _, _ = select.select([master], [], [], TIMEOUT)
                if not ready:
                    p.kill()
                    self.fail("no output on the terminal for %d s" % TIMEOUT)
                try:
                    chunk = os.read(master, 4096)
                except OSError as e:
                    if e.errno != errno.EIO:
                        raise
                    break       # the last holder of the slave side exited
                if not chunk:
                    break
                term += chunk
        finally:
            os.close(master)
        out = p.stdout.read()
        p.stdout.close()
        return p.wait(timeout=TIMEOUT), out, term

    def test_progress_only_on_a_terminal(self):
        self.make_store(self.home, 120)
        rc, out, term = self.run_on_pty("rotate-key")
        self.assertEqual(rc, 0, term)
        self.assertIn(b"re-encrypting: 120/120", term)
        self.assertIn(b"re-encrypting: 25/120", term)
        self.assertNotIn(b"re-encrypting", out)
        self.assertIn(b"re-encrypted 120 of 120", out)
        # stderr a pipe: no progress line, nothing at all
        r = self.check(self.run_cred("rotate-key"), 0)
        self.assertEqual(r.stderr, b"")
        self.assertNotIn(b"re-encrypting", r.stdout)
        self.assertIn(b"re-encrypted 120 of 120", r.stdout)


def main():
    hivetest.main(binaries=["hive-cred"], fixture=True)


if __name__ == "__main__":
    main()
