#!/usr/bin/env python3
"""Where the store key comes from, through hive-cred: HIVE_CREDENTIAL_KEY,
HIVE_CREDENTIAL_KEY_COMMAND (real commands: scripts written here, cat), a
systemd credentials directory (CREDENTIALS_DIRECTORY with a 0400 file,
the key encrypted and decrypted by the real systemd-creds, as
LoadCredentialEncrypted= does), and the key file.

Run:  python3 tests/cli/test_keysrc.py [unittest options]

Environment:
  HIVE_CRED     path of the hive-cred binary
  HIVE_FIXTURE  the fixture Hive home written by Python Hive

Checked: init and doctor name the source (never the key); get works from
each; a command that fails, times out, prints garbage or is not found, and
a systemd credential that is a symlink, open to others or missing, each
give a clear error (and doctor a problem and a fix); the command's stderr
reaches the user; rotate-key with each source (refused without
--new-key-file when hive cannot write the source, the output saying what
to update, which then works), and a rotation killed half way finished by
running it again. No key ever appears in any output.

systemd-creds needs no systemd running: encrypt and decrypt take the host
key from SYSTEMD_CREDENTIAL_SECRET, a file of the test's own. The suite
fails (it is never skipped) when systemd-creds is missing: Debian's
systemd package has it (scripts/setup installs it).
"""

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import unittest
from pathlib import Path

from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lib"))
import hivetest  # noqa: E402  (tests/lib/hivetest.py)

HIVE_CRED = hivetest.HIVE_CRED
TIMEOUT = hivetest.scaled(60)
SYSTEMD_CREDS = shutil.which("systemd-creds")


class KeySourceTest(unittest.TestCase):
    """One temporary HIVE_HOME (the fixture) per test; its key moved out of
    the key file into whichever source a test uses."""

    maxDiff = None

    def setUp(self):
        self.tmp = hivetest.temp_dir(self, "hive-keysrc-test-")
        self.home = os.path.join(self.tmp, "home")
        self.expected = hivetest.copy_fixture(self.home)
        self.key_path = os.path.join(self.home, "secrets", "credential_key")
        with open(self.key_path, "rb") as f:
            self.key = f.read().strip()
        self.keys = [self.key]          # every key seen: none may be printed
        self.creds_dir = os.path.join(self.tmp, "creds")
        os.mkdir(self.creds_dir, 0o700)
        self.env = hivetest.clean_env(self.home)
        # expired tokens that doctor would report: out, so that "no
        # problems found" says the key is fine
        for cid in ("github_oauth", "internal_jwt"):
            self.run_cred("delete", cid)

    # --- helpers -------------------------------------------------------

    def run_cred(self, *args, extra_env=None, code=0):
        e = dict(self.env)
        e.update(extra_env or {})
        r = hivetest.run([HIVE_CRED, *args], e, timeout=TIMEOUT, cwd=self.tmp)
        self.assertEqual(r.returncode, code, "%s: exit %d, expected %d\nstdout: %r\nstderr: %r"
                         % (" ".join(args), r.returncode, code, r.stdout, r.stderr))
        for k in self.keys:
            self.assertNotIn(k, r.stdout + r.stderr, "a key was printed")
            self.assertNotIn(k[:16], r.stdout + r.stderr, "a part of a key was printed")
        return r

    def write(self, name, data, mode=0o600):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        os.chmod(path, mode)
        return path

    def script(self, name, body):
        return self.write(name, "#!/bin/sh\n" + body + "\n", 0o700)

    def no_key_file(self):
        os.remove(self.key_path)

    def command_key(self, key):
        """HIVE_CREDENTIAL_KEY_COMMAND: cat of a file holding key (the
        secret a password manager keeps)."""
        self.write("vault key", key + b"\n")
        self.env["HIVE_CREDENTIAL_KEY_COMMAND"] = "cat '%s'" % os.path.join(self.tmp, "vault key")

    def systemd_key(self, key, mode=0o400):
        path = os.path.join(self.creds_dir, "hive-credential-key")
        if os.path.lexists(path):
            os.chmod(path, 0o600)
            os.remove(path)
        with open(path, "wb") as f:
            f.write(key)
        os.chmod(path, mode)
        self.env["CREDENTIALS_DIRECTORY"] = self.creds_dir
        return path

    def brave(self, **kw):
        return self.run_cred("get", "brave_search", **kw)

    def assert_brave(self, **kw):
        self.assertEqual(self.brave(**kw).stdout, b"BSA-test-0123456789abcdef\n")

    def lines(self, r):
        return r.stdout.decode().splitlines()

    # --- each source: init, doctor, get ------------------------------------

    def test_doctor_and_init_name_each_source(self):
        script = self.script("print-key", "printf '%%s\\n' '%s'" % self.key.decode())
        # the key file
        r = self.run_cred("doctor")
        self.assertIn("key      %s" % self.key_path, self.lines(r))
        self.assertEqual(self.run_cred("init").stdout.decode().splitlines()[1], "key:   %s" % self.key_path)
        self.no_key_file()
        # the systemd credential
        cred = self.systemd_key(self.key)
        r = self.run_cred("doctor")
        self.assertIn("key      from the systemd credential %s" % cred, self.lines(r))
        self.assertEqual(self.lines(r)[-1], "no problems found")
        self.assertIn("key:   from the systemd credential %s" % cred, self.lines(self.run_cred("init")))
        self.assert_brave()
        # the command, over the systemd credential
        self.env["HIVE_CREDENTIAL_KEY_COMMAND"] = script
        r = self.run_cred("doctor")
        self.assertIn("key      from HIVE_CREDENTIAL_KEY_COMMAND (%s)" % script, self.lines(r))
        self.assertIn("key:   from HIVE_CREDENTIAL_KEY_COMMAND (%s)" % script, self.lines(self.run_cred("init")))
        self.assert_brave()
        # HIVE_CREDENTIAL_KEY, over both
        self.env["HIVE_CREDENTIAL_KEY"] = self.key.decode()
        self.assertIn("key      from HIVE_CREDENTIAL_KEY", self.lines(self.run_cred("doctor")))
        # init made no key file for any of them
        self.assertFalse(os.path.exists(self.key_path))

    def test_command_found_on_path_with_quoted_arguments(self):
        self.no_key_file()
        self.command_key(self.key)
        self.assert_brave()
        r = self.run_cred("doctor")
        self.assertIn("key      from HIVE_CREDENTIAL_KEY_COMMAND (cat)", self.lines(r))

    def test_command_failures(self):
        self.no_key_file()
        cases = [
            # body, exit, message, fix
            ("echo 'gpg: decryption failed: No secret key' >&2\nexit 2", 4,
             "failed: exit status 2", None),
            ("echo 'Passphrase: %s'" % self.key.decode(), 4,
             "printed 56 bytes that are not a Fernet key (a character outside base64)", None),
            ("echo", 4, "printed no key", None),
        ]
        for body, code, message, _ in cases:
            with self.subTest(body=body):
                script = self.script("key-cmd", body)
                self.env["HIVE_CREDENTIAL_KEY_COMMAND"] = script
                r = self.brave(code=code)
                err = r.stderr.decode()
                self.assertIn("hive-cred: error: HIVE_CREDENTIAL_KEY_COMMAND (%s) %s" % (script, message), err)
                self.assertEqual(r.stdout, b"")
                r = self.run_cred("doctor", code=1)
                self.assertIn("problem  no usable key: HIVE_CREDENTIAL_KEY_COMMAND (%s) %s" % (script, message),
                              r.stdout.decode())
                self.assertIn("fix: run the command yourself: it must exit 0 within "
                              "HIVE_CREDENTIAL_KEY_COMMAND_TIMEOUT (default 10 s) and print the key alone",
                              r.stdout.decode())
        # its stderr reaches the user, as it wrote it, then hive-cred's hint
        self.env["HIVE_CREDENTIAL_KEY_COMMAND"] = self.script("key-cmd", "echo 'gpg: no agent' >&2\nexit 2")
        err = self.brave(code=4).stderr.decode()
        self.assertIn("gpg: no agent\n", err)
        self.assertIn("\nhint: run the command yourself: it must exit 0 within HIVE_CREDENTIAL_KEY_COMMAND_TIMEOUT "
                      "(default 10 s) and print the key alone\n", err)
        # not found
        self.env["HIVE_CREDENTIAL_KEY_COMMAND"] = "hive-test-no-such-vault read key"
        r = self.brave(code=4)
        self.assertIn("cannot run hive-test-no-such-vault: not found on PATH", r.stderr.decode())
        # a shell's pipe, which would silently be an argument
        self.env["HIVE_CREDENTIAL_KEY_COMMAND"] = "pass show hive | head -1"
        r = self.brave(code=2)
        self.assertIn("is run without a shell, and has an unquoted '|'", r.stderr.decode())

    def test_command_time_out(self):
        self.no_key_file()
        self.env["HIVE_CREDENTIAL_KEY_COMMAND"] = self.script("slow", "sleep 30\necho %s" % self.key.decode())
        self.env["HIVE_CREDENTIAL_KEY_COMMAND_TIMEOUT"] = "0.5"
        r = self.brave(code=4)
        self.assertIn("did not finish within 0.5 s (HIVE_CREDENTIAL_KEY_COMMAND_TIMEOUT), and was killed",
                      r.stderr.decode())
        self.env["HIVE_CREDENTIAL_KEY_COMMAND_TIMEOUT"] = "forever"
        r = self.brave(code=2)
        self.assertIn("HIVE_CREDENTIAL_KEY_COMMAND_TIMEOUT=forever: want a number of seconds", r.stderr.decode())

    def test_systemd_credential_checks(self):
        self.no_key_file()
        cred = self.systemd_key(self.key, 0o444)
        r = self.brave(code=6)
        self.assertIn("systemd credential %s is readable by others (mode 0444)" % cred, r.stderr.decode())
        r = self.run_cred("doctor", code=1)
        self.assertIn("fix: load it as systemd does (LoadCredential=hive-credential-key:PATH or "
                      "LoadCredentialEncrypted=), or unset CREDENTIALS_DIRECTORY", r.stdout.decode())
        # a symbolic link to a key that would pass
        target = self.write("elsewhere", self.key, 0o400)
        os.chmod(cred, 0o600)
        os.remove(cred)
        os.symlink(target, cred)
        r = self.brave(code=6)
        self.assertIn("is a symbolic link", r.stderr.decode())
        os.remove(cred)
        # no hive-credential-key among the service's credentials: the key
        # file is next, and there is none
        self.write("creds/db-password", b"x", 0o400)
        r = self.brave(code=4)
        self.assertIn("No encryption key", r.stderr.decode())
        # 0440: an ACL's mask, as systemd leaves it where it can set ACLs
        self.systemd_key(self.key, 0o440)
        self.assert_brave()

    def test_systemd_creds_encrypted_credential(self):
        """LoadCredentialEncrypted=: the key encrypted with systemd-creds,
        decrypted into the credentials directory as systemd does."""
        self.no_key_file()
        senv = dict(self.env, SYSTEMD_CREDENTIAL_SECRET=os.path.join(self.tmp, "host-secret"))
        keyfile = self.write("plain-key", self.key)
        enc = os.path.join(self.tmp, "hive-credential-key.cred")

        def creds(*args):
            r = subprocess.run([SYSTEMD_CREDS, *args], env=senv, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=TIMEOUT)
            self.assertEqual(r.returncode, 0, r.stderr)
            return r

        creds("encrypt", "--name=hive-credential-key", "--with-key=host", keyfile, enc)
        os.remove(keyfile)
        with open(enc, "rb") as f:
            self.assertNotIn(self.key, f.read())
        loaded = os.path.join(self.creds_dir, "hive-credential-key")
        creds("decrypt", "--name=hive-credential-key", enc, loaded)
        os.chmod(loaded, 0o400)
        self.env["CREDENTIALS_DIRECTORY"] = self.creds_dir
        self.assert_brave()
        self.assertIn("key      from the systemd credential %s" % loaded, self.lines(self.run_cred("doctor")))
        # rotation: hive cannot write the credential
        r = self.run_cred("rotate-key", code=2)
        err = r.stderr.decode()
        self.assertIn("the key comes from %s, not from a key file" % loaded, err)
        self.assertIn("hint: then make FILE the service's credential: systemd-creds encrypt "
                      "--name=hive-credential-key FILE /etc/credstore.encrypted/hive-credential-key", err)
        new_file = os.path.join(self.tmp, "new-key")
        r = self.run_cred("rotate-key", "--new-key-file", new_file)
        with open(new_file, "rb") as f:
            new_key = f.read().strip()
        self.keys.append(new_key)
        out = r.stdout.decode()
        self.assertIn("re-encrypted 6 of 6 credential(s)", out)
        self.assertIn("key:   %s holds the new key: make it the service's credential hive-credential-key "
                      "(%s): for LoadCredentialEncrypted=, systemd-creds encrypt --name=hive-credential-key "
                      "%s /etc/credstore.encrypted/hive-credential-key" % (new_file, loaded, new_file), out)
        # until the service's credential is updated, nothing opens
        self.brave(code=5)
        # what the output says, with a credstore of the test's own
        creds("encrypt", "--name=hive-credential-key", "--with-key=host", new_file, enc)
        os.chmod(loaded, 0o600)
        os.remove(loaded)
        creds("decrypt", "--name=hive-credential-key", enc, loaded)
        os.chmod(loaded, 0o400)
        self.assert_brave()
        self.assertEqual(self.lines(self.run_cred("doctor"))[-1], "no problems found")

    # --- rotation ----------------------------------------------------------

    def test_rotate_command_key(self):
        self.no_key_file()
        self.command_key(self.key)
        r = self.run_cred("rotate-key", code=2)
        err = r.stderr.decode()
        self.assertIn("hive-cred: error: the key comes from HIVE_CREDENTIAL_KEY_COMMAND (cat), not from a key file: "
                      "a new key made or given now would exist only in this process; nothing changed", err)
        self.assertIn("hint: hive-cred rotate-key --new-key-file FILE", err)
        self.assertIn("hint: then make HIVE_CREDENTIAL_KEY_COMMAND (cat) print FILE's key, and delete FILE", err)
        new_file = os.path.join(self.tmp, "new-key")
        r = self.run_cred("rotate-key", "--new-key-file", new_file)
        self.assertEqual(stat.S_IMODE(os.stat(new_file).st_mode), 0o600)
        with open(new_file, "rb") as f:
            new_key = f.read().strip()
        self.keys.append(new_key)
        out = r.stdout.decode()
        self.assertIn("key:   %s holds the new key: make HIVE_CREDENTIAL_KEY_COMMAND (cat) print it" % new_file, out)
        self.assertIn("the old key no longer opens anything", out)
        self.brave(code=5)
        self.command_key(new_key)
        self.assert_brave()
        self.assertFalse(os.path.exists(os.path.join(self.home, "credentials", "metadata", "key-rotation.json")))

    def test_rotate_env_key_says_what_to_update(self):
        self.no_key_file()
        self.env["HIVE_CREDENTIAL_KEY"] = self.key.decode()
        new_file = os.path.join(self.tmp, "new-key")
        r = self.run_cred("rotate-key", "--new-key-file", new_file)
        self.assertIn("key:   %s holds the new key: put it in HIVE_CREDENTIAL_KEY wherever that is kept" % new_file,
                      r.stdout.decode())
        with open(new_file, "rb") as f:
            self.keys.append(f.read().strip())
        self.env["HIVE_CREDENTIAL_KEY"] = self.keys[-1].decode()
        self.assert_brave()

    def test_rotate_key_file_as_before(self):
        r = self.run_cred("rotate-key")
        self.assertIn("key:   %s (the new key; back it up" % self.key_path, r.stdout.decode())
        with open(self.key_path, "rb") as f:
            self.keys.append(f.read().strip())
        self.assert_brave()

    def test_rotation_of_a_command_key_killed_half_way(self):
        """What a rotation killed after its first file leaves (the marker
        names the new key's file, one file is under the new key), made by
        hand: readers follow the marker, doctor says it, another key is
        refused, and rotate-key alone finishes it."""
        self.no_key_file()
        self.command_key(self.key)
        new_key = Fernet.generate_key()
        self.keys.append(new_key)
        new_file = self.write("new-key", new_key)
        fp = subprocess.run(["sha256sum"], input=new_key, stdout=subprocess.PIPE, check=True).stdout[:8].decode()
        meta = os.path.join(self.home, "credentials", "metadata")
        with open(os.path.join(meta, "key-rotation.json"), "w") as f:
            json.dump({"new_key_file": new_file, "fingerprint": fp}, f)
        cdir = os.path.join(self.home, "credentials", "credentials")
        path = os.path.join(cdir, "brave_search.enc")
        with open(path, "rb") as f:
            plain = Fernet(self.key).decrypt(f.read())
        with open(path, "wb") as f:
            f.write(Fernet(new_key).encrypt(plain))
        # readers: both keys
        self.assert_brave()
        self.run_cred("get", "anthropic")
        r = self.run_cred("doctor", code=1)
        self.assertIn("problem  an interrupted key rotation is pending (the new key is in %s)" % new_file,
                      r.stdout.decode())
        self.assertIn("fix: hive-cred rotate-key finishes it; then give HIVE_CREDENTIAL_KEY_COMMAND (cat) the new key",
                      r.stdout.decode())
        # another key is refused
        other = self.write("other-key", Fernet.generate_key())
        r = self.run_cred("rotate-key", "--new-key-file", other, code=6)
        self.assertIn("an interrupted rotation to another key is pending: key %s in %s" % (fp, new_file),
                      r.stderr.decode())
        self.assertIn("hint: finish it with its own key first: hive-cred rotate-key (without --new-key-file)",
                      r.stderr.decode())
        # finished by running it again
        r = self.run_cred("rotate-key")
        self.assertIn("re-encrypted 5 of 6 credential(s) (1 done by an earlier, interrupted run)", r.stdout.decode())
        self.assertIn("key:   %s holds the new key" % new_file, r.stdout.decode())
        self.assertFalse(os.path.exists(os.path.join(meta, "key-rotation.json")))
        for name in os.listdir(cdir):
            if name.endswith(".enc"):
                with open(os.path.join(cdir, name), "rb") as f:
                    Fernet(new_key).decrypt(f.read())
        self.command_key(new_key)
        self.assert_brave()
        self.assertEqual(self.lines(self.run_cred("doctor"))[-1], "no problems found")

    def test_rotation_of_a_command_key_killed_by_sigkill(self):
        """rotate-key of a command key, SIGKILLed in the middle of the
        re-encryption: every file opens with one of the two keys, readers
        follow the rotation record, a write meanwhile uses the new key, and
        rotate-key alone finishes."""
        n = 2000
        home = os.path.join(self.tmp, "big")
        subprocess.run([sys.executable, str(REPO / "bench" / "make_store.py"), home, str(n)], check=True,
                       timeout=TIMEOUT)
        with open(os.path.join(home, "secrets", "credential_key"), "rb") as f:
            old_key = f.read().strip()
        os.remove(os.path.join(home, "secrets", "credential_key"))
        self.keys.append(old_key)
        self.command_key(old_key)
        pristine = os.path.join(self.tmp, "pristine")
        shutil.copytree(home, pristine)
        self.env["HIVE_HOME"] = home
        cdir = os.path.join(home, "credentials", "credentials")
        marker = os.path.join(home, "credentials", "metadata", "key-rotation.json")
        new_file = os.path.join(self.tmp, "new-key")
        delay = 0.05
        for _ in range(20):
            shutil.rmtree(home)
            shutil.copytree(pristine, home)
            if os.path.exists(new_file):
                os.remove(new_file)
            rc = hivetest.kill_when([HIVE_CRED, "rotate-key", "--new-key-file", new_file], self.env, self.tmp,
                                    marker, delay)
            if rc != -signal.SIGKILL or not os.path.exists(marker):
                delay /= 2
                continue
            with open(new_file, "rb") as f:
                new_key = f.read().strip()
            under = {"old": 0, "new": 0}
            for name in os.listdir(cdir):
                if not name.endswith(".enc"):
                    continue
                with open(os.path.join(cdir, name), "rb") as f:
                    token = f.read()
                try:
                    Fernet(old_key).decrypt(token)
                    under["old"] += 1
                except Exception:
                    Fernet(new_key).decrypt(token)   # raises: opens with neither
                    under["new"] += 1
            if under["old"] and under["new"]:
                break
            delay = delay * 2 if under["old"] else delay / 2
        else:
            self.fail("no kill landed in the middle of the rotation in 20 attempts")
        self.keys.append(new_key)
        # readers: every credential, under either key (the command still
        # prints the old key; the record gives the new one)
        ids = ["c%d" % i for i in range(n)]
        r = self.run_cred("resolve", "\n".join("{{%s}}" % i for i in ids))
        self.assertEqual(r.stdout.decode().split("\n")[:-1], ["value-%s-%s" % (i[1:], "x" * 24) for i in ids])
        w = hivetest.run([HIVE_CRED, "add", "during"], self.env, stdin=b"k=written-mid-rotation\n", timeout=TIMEOUT)
        self.assertEqual(w.returncode, 0, w.stderr)
        with open(os.path.join(cdir, "during.enc"), "rb") as f:
            Fernet(new_key).decrypt(f.read())
        r = self.run_cred("doctor", code=1)
        self.assertIn("an interrupted key rotation is pending (the new key is in %s)" % new_file, r.stdout.decode())
        r = self.run_cred("rotate-key")
        self.assertIn("re-encrypted %d of %d credential(s) (%d done by an earlier, interrupted run)"
                      % (under["old"], n + 1, under["new"] + 1), r.stdout.decode())
        self.assertFalse(os.path.exists(marker))
        for name in os.listdir(cdir):
            if name.endswith(".enc"):
                with open(os.path.join(cdir, name), "rb") as f:
                    Fernet(new_key).decrypt(f.read())
        self.command_key(new_key)
        self.assertEqual(self.run_cred("get", "c7").stdout, b"value-7-" + b"x" * 24 + b"\n")


def prerequisite():
    if SYSTEMD_CREDS is None:
        return "systemd-creds not found (Debian's systemd package: scripts/setup installs it)"
    return None


def main():
    hivetest.main(binaries=["hive-cred"], fixture=True, prerequisite=prerequisite)


if __name__ == "__main__":
    main()
