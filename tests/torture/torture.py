#!/usr/bin/env python3
"""Crash and concurrency torture of the file store, through hive-cred.

One store (hive-cred init, then c0..c39 with values v-<id>-0). Each round
starts, as real processes and all at once, several `hive-cred add` writers
(each gives cK a new value v-cK-<round>, padded to a random length of up to
4 KB), two `hive-cred delete`, one `hive-cred add` of a brand-new id
n<round>, and one `hive-cred rotate-key`; after a random delay (0 to
--max-delay-ms, sometimes 0) every one still running gets SIGKILL.

Then the store is checked twice, independently: with Python alone
(cryptography's Fernet, trying secrets/credential_key and, if present,
secrets/credential_key.new), and through hive-cred (list, resolve, get):

- a credential nobody touched keeps exactly its last committed value;
- one a writer wrote has its old value or the writer's (the writer's when
  the add exited 0); a deleted one is gone or has its old value (gone when
  the delete exited 0); the new id is absent or has its value;
- no file decrypts with neither key, and the keys only move forward;
- after `hive-cred list` (which repairs a stale index) the index lists
  exactly the ids that exist;
- after the next locked write (an add of `torture_probe`) no `.tmp-*` file
  is left in credentials/, metadata/ or secrets/.

The expected state is then set from what was observed. After the last
round a `hive-cred rotate-key` runs to completion: everything must decrypt
with the final key and no other, and secrets/credential_key.new be gone.

Usage: torture.py [--rounds N] [--seed S] [--hive-cred PATH] [--keep]
Default: 200 rounds; `ctest -L torture` runs 25. HIVE_CRED names the binary
(default <repo>/build/launcher/hive-cred). Exit 0 when every check held,
1 otherwise, with the seed, round and what was found. The seed replays the
same choices (ids, values, delays); the timing of the kills is up to the
machine, so a failure may need a few runs to show again.
"""

import argparse
import json
import os
import random
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lib"))
import hivetest  # noqa: E402  (tests/lib/hivetest.py)

N_INITIAL = 40
PROBE = "torture_probe"
PAD_ALPHABET = string.ascii_letters + string.digits + "-_"
TIMEOUT = hivetest.scaled(60)


def stem(cred_id):
    return cred_id.replace("/", "_").replace("\\", "_").replace("..", "_")


def b(text):
    return text.encode("utf-8")


class Failure(Exception):
    pass


class Store:
    """A HIVE_HOME and the hive-cred that works on it."""

    def __init__(self, hive_cred, home, work):
        self.hive_cred = hive_cred
        self.home = home
        self.work = work          # stdin and output files, outside the store
        self.store = os.path.join(home, "credentials")
        self.cdir = os.path.join(self.store, "credentials")
        self.mdir = os.path.join(self.store, "metadata")
        self.sdir = os.path.join(home, "secrets")
        self.key_path = os.path.join(self.sdir, "credential_key")
        self.new_path = self.key_path + ".new"
        self.env = hivetest.clean_env(home)
        self.seq = 0

    def run(self, *args, stdin=b""):
        return hivetest.run([self.hive_cred, *args], self.env, stdin=stdin, timeout=TIMEOUT, cwd=self.work)

    def must(self, *args, stdin=b""):
        r = self.run(*args, stdin=stdin)
        if r.returncode != 0:
            raise Failure("hive-cred %s: exit %d\nstderr: %s"
                          % (" ".join(args), r.returncode, r.stderr.decode("utf-8", "replace")))
        return r

    def start(self, *args, stdin=b""):
        """Start hive-cred in the background; stdin, stdout and stderr are
        files, so that a kill never leaves a pipe half written."""
        self.seq += 1
        base = os.path.join(self.work, "p%d" % self.seq)
        with open(base + ".in", "wb") as f:
            f.write(stdin)
        fin = open(base + ".in", "rb")
        fout = open(base + ".out", "wb")
        ferr = open(base + ".err", "wb")
        try:
            p = subprocess.Popen([self.hive_cred, *args], stdin=fin, stdout=fout, stderr=ferr,
                                 env=self.env, cwd=self.work)
        finally:
            fin.close()
            fout.close()
            ferr.close()
        p.out_base = base
        return p

    # --- reading the store with Python alone ----------------------------

    def read_key(self, path):
        try:
            with open(path, "rb") as f:
                text = f.read()
        except FileNotFoundError:
            return None
        return text.strip()

    def keys(self):
        return self.read_key(self.key_path), self.read_key(self.new_path)

    def scan(self):
        """{id: (value, which key opened it)} from the files; problems."""
        key, new = self.keys()
        problems = []
        found = {}
        if key is None:
            problems.append("secrets/credential_key is missing")
            return found, problems
        fernets = [("key", Fernet(key))]
        if new is not None:
            fernets.append(("new", Fernet(new)))
        for name in sorted(os.listdir(self.cdir)):
            if not name.endswith(".enc") or name.startswith("."):
                continue
            with open(os.path.join(self.cdir, name), "rb") as f:
                token = f.read()
            plain = which = None
            for label, fer in fernets:
                try:
                    plain = fer.decrypt(token)
                    which = label
                    break
                except InvalidToken:
                    pass
            if plain is None:
                problems.append("credentials/%s (%d bytes) decrypts with neither key%s"
                                % (name, len(token), "" if new else " (no .new key file)"))
                continue
            try:
                doc = json.loads(plain)
                cred_id = doc["id"]
                value = doc["keys"]["value"]["value"]
            except (ValueError, KeyError, TypeError) as e:
                problems.append("credentials/%s decrypts but is not a credential: %r" % (name, e))
                continue
            if stem(cred_id) + ".enc" != name:
                problems.append("credentials/%s holds id %r" % (name, cred_id))
                continue
            found[cred_id] = (value, which)
        return found, problems

    def tmp_files(self):
        out = []
        for d in (self.cdir, self.mdir, self.sdir):
            for name in sorted(os.listdir(d)):
                if name.startswith(".tmp-"):
                    out.append(os.path.join(os.path.relpath(d, self.home), name))
        return out

    def read_index(self):
        with open(os.path.join(self.mdir, "index.json"), "rb") as f:
            return json.loads(f.read())

    def decrypts_with(self, path, key):
        with open(path, "rb") as f:
            token = f.read()
        try:
            Fernet(key).decrypt(token)
            return True
        except InvalidToken:
            return False


def short(value):
    """A value as it appears in a report: its tag and its length."""
    if value is None:
        return "(absent)"
    head = value[:24]
    return "%s...(%d bytes)" % (head, len(value)) if len(value) > 24 else value


class Torture:

    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.failures = []
        self.reported_tmp = set()
        self.stats = dict(procs=0, killed=0, killed_landed=0, killed_writers=0,
                          rotation_interrupted=0, rotation_done=0, rotation_killed=0,
                          orphans_seen=0, index_repaired=0, index_damaged=0, delay0=0)
        self.all_keys = set()

    def fail(self, rnd, msg):
        self.failures.append((rnd, msg))
        print("FAIL seed=%d round=%s: %s" % (self.args.seed, rnd, msg), flush=True)

    def value_for(self, cred_id, rnd):
        tag = "v-%s-%d" % (cred_id, rnd)
        n = self.rng.choice([0, self.rng.randint(1, 64), self.rng.randint(0, 4096)])
        if n == 0:
            return tag
        return tag + "-" + "".join(self.rng.choice(PAD_ALPHABET) for _ in range(n))

    # --- the run ---------------------------------------------------------

    def setup(self):
        st = self.st
        st.must("init")
        # the initial credentials, 8 at a time
        def add(i):
            cid = "c%d" % i
            st.must("add", cid, stdin=b("value=v-%s-0\n" % cid))
        with ThreadPoolExecutor(8) as ex:
            list(ex.map(add, range(N_INITIAL)))
        self.expected = {"c%d" % i: "v-c%d-0" % i for i in range(N_INITIAL)}
        key, new = st.keys()
        self.key, self.new = key, new
        self.all_keys.add(key)
        found, problems = st.scan()
        if problems or {k: v for k, (v, _) in found.items()} != self.expected:
            raise Failure("the initial store is not what was written: %r" % problems)

    def round(self, rnd, kill=True):
        st = self.st
        rng = self.rng
        ids = ["c%d" % i for i in range(N_INITIAL)]
        writers = rng.sample(ids, rng.randint(3, 5))
        candidates = sorted(i for i in self.expected if i not in writers and i != PROBE)
        deleters = rng.sample(candidates, min(2, len(candidates)))
        new_id = "n%d" % rnd
        jobs = []   # (role, id, value, args, stdin)
        for cid in writers:
            v = self.value_for(cid, rnd)
            jobs.append(("add", cid, v, ("add", cid), b("value=%s\n" % v)))
        for cid in deleters:
            jobs.append(("delete", cid, None, ("delete", cid), b""))
        v = self.value_for(new_id, rnd)
        jobs.append(("new", new_id, v, ("add", new_id), b("value=%s\n" % v)))
        jobs.append(("rotate", None, None, ("rotate-key",), b""))
        rng.shuffle(jobs)
        delay = 0.0 if rng.random() < 0.12 else rng.uniform(0, self.window)
        if not kill:
            delay = TIMEOUT
        elif delay == 0.0:
            self.stats["delay0"] += 1

        t0 = time.monotonic()
        procs = [(j, st.start(*j[3], stdin=j[4])) for j in jobs]
        if delay:
            end = t0 + delay
            while time.monotonic() < end and any(p.poll() is None for _, p in procs):
                time.sleep(min(0.002, max(0.0, end - time.monotonic())))
        for _, p in procs:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGKILL)
                except ProcessLookupError:
                    pass
        outcome = {}
        for j, p in procs:
            rc = p.wait(timeout=TIMEOUT)
            killed = rc == -signal.SIGKILL
            if kill:
                self.stats["procs"] += 1
                self.stats["killed"] += killed
            with open(p.out_base + ".err", "rb") as f:
                err = f.read().decode("utf-8", "replace")
            if not killed and (rc != 0 or "Sanitizer" in err):
                self.fail(rnd, "hive-cred %s was not killed and exited %d\nstderr: %s"
                          % (" ".join(j[3]), rc, err))
            if killed and not kill:
                self.fail(rnd, "hive-cred %s did not finish in %d s" % (" ".join(j[3]), TIMEOUT))
            if "Sanitizer" in err:
                self.fail(rnd, "sanitizer report from hive-cred %s:\n%s" % (" ".join(j[3]), err))
            outcome[j] = (rc, killed)
        desc = ", ".join("%s%s %s" % (j[0], " " + j[1] if j[1] else "",
                                      "KILLED" if outcome[j][1] else "rc=%d" % outcome[j][0])
                         for j in jobs)
        batch = time.monotonic() - t0
        if kill and not any(k for _, k in outcome.values()) and not self.args.fixed_window:
            # everything finished before the kill: how long a batch takes
            # now (the machine's load changes), for the next windows
            self.window = max(self.args.max_delay_ms / 1000.0, (self.window + batch) / 2)
        when = "delay %.1f ms" % (delay * 1000) if kill else "no kill, %.0f ms" % (batch * 1000)
        if self.args.verbose:
            print("round %d: %s: %s" % (rnd, when, desc), flush=True)
        before = dict(self.expected)
        n_before = len(self.failures)
        self.verify(rnd, jobs, outcome, delay)
        if len(self.failures) > n_before:
            print("  round %d was: %s: %s" % (rnd, when, desc), flush=True)
            for j in jobs:
                if j[0] in ("add", "new"):
                    print("  %s %s wrote %s (before: %s)"
                          % (j[0], j[1], short(j[2]), short(before.get(j[1]))), flush=True)
        return batch

    def verify(self, rnd, jobs, outcome, delay):
        st = self.st
        found, problems = st.scan()
        for p in problems:
            self.fail(rnd, p)
        observed = {k: v for k, (v, _) in found.items()}

        # --- the keys only move forward
        key, new = st.keys()
        rot = [j for j in jobs if j[0] == "rotate"][0]
        rot_rc, rot_killed = outcome[rot]
        if key is None:
            return
        if self.new is not None:
            if key not in (self.key, self.new):
                self.fail(rnd, "the key file holds a key that is neither the old one nor the pending one")
            if new not in (None, self.new):
                self.fail(rnd, "credential_key.new changed in the middle of a rotation")
            if key == self.new and new is not None:
                self.fail(rnd, "credential_key.new is still there after the switch")
        elif key != self.key and new is not None:
            self.fail(rnd, "the key changed and credential_key.new is there: two rotations in one round?")
        if not rot_killed and rot_rc == 0 and (new is not None or key == self.key):
            self.fail(rnd, "rotate-key exited 0 but the key file did not switch (or .new remains)")
        if new is None:
            notkey = [i for i, (_, w) in found.items() if w != "key"]
            if notkey:
                self.fail(rnd, "no rotation pending, yet not under the key: %s" % notkey)
        if new is not None and new != self.new:
            self.stats["rotation_interrupted"] += 1
        if key != self.key:
            self.stats["rotation_done"] += 1
        self.stats["rotation_killed"] += rot_killed
        self.all_keys.update(k for k in (key, new) if k)

        # --- every credential, against what was committed before the round
        touched = {}
        for j in jobs:
            if j[1] is not None:
                touched[j[1]] = j
        for cid in sorted(set(self.expected) | set(observed) | set(touched)):
            before = self.expected.get(cid)
            now = observed.get(cid)
            j = touched.get(cid)
            if j is None:
                if now != before:
                    self.fail(rnd, "%s was not touched this round: expected %s, found %s"
                              % (cid, short(before), short(now)))
                continue
            role, _, value, args, _ = j
            rc, killed = outcome[j]
            if role in ("add", "new"):
                allowed = [value] if not killed else [before, value]
                if killed:
                    self.stats["killed_writers"] += 1
                    if now == value and before != value:
                        self.stats["killed_landed"] += 1
            else:
                allowed = [None] if not killed else [None, before]
            if now not in allowed:
                self.fail(rnd, "%s %s (%s): found %s, allowed %s"
                          % (role, cid, "killed" if killed else "exit %d" % rc, short(now),
                             " or ".join(short(a) for a in allowed)))

        # --- orphans before the next locked write (counted, not an error)
        self.stats["orphans_seen"] += len(st.tmp_files())

        # --- hive-cred's view, in parallel (readers all): list, which
        # repairs the index; resolve of every id at once; get of a few of
        # this round's ids, present or not
        # now and then the index is lost or damaged as well: list rebuilds it
        damage = self.rng.random()
        index_path = os.path.join(st.mdir, "index.json")
        if damage < 0.04:
            os.remove(index_path)
            self.stats["index_damaged"] += 1
        elif damage < 0.08:
            with open(index_path, "r+b") as f:
                f.truncate(max(0, os.path.getsize(index_path) // 2))
            self.stats["index_damaged"] += 1
        try:
            idx_before = set(st.read_index()["credentials"])
        except (OSError, ValueError, KeyError, TypeError):
            idx_before = None
        ids = sorted(observed)
        sample = self.rng.sample(sorted(touched), min(3, len(touched)))
        with ThreadPoolExecutor(2 + len(sample)) as ex:
            f_list = ex.submit(st.run, "list")
            f_resolve = ex.submit(st.run, "resolve", "\n".join("{{%s}}" % i for i in ids)) if ids else None
            f_gets = [(cid, ex.submit(st.run, "get", cid)) for cid in sample]

            r = f_list.result()
            if r.returncode != 0:
                self.fail(rnd, "hive-cred list: exit %d: %s" % (r.returncode, r.stderr.decode("utf-8", "replace")))
            else:
                listed = r.stdout.decode("utf-8").splitlines()
                if set(listed) != set(observed) or len(listed) != len(set(listed)):
                    self.fail(rnd, "hive-cred list: extra %s, missing %s"
                              % (sorted(set(listed) - set(observed)), sorted(set(observed) - set(listed))))
            try:
                idx = st.read_index()
                in_index = set(idx["credentials"])
                if idx.get("version") != "2.0":
                    self.fail(rnd, "index version %r" % idx.get("version"))
                if in_index != set(observed):
                    self.fail(rnd, "index after list: extra %s, missing %s"
                              % (sorted(in_index - set(observed)), sorted(set(observed) - in_index)))
            except (OSError, ValueError, KeyError, TypeError) as e:
                self.fail(rnd, "index unreadable after list: %r" % e)
            if idx_before != set(observed):
                self.stats["index_repaired"] += 1

            if f_resolve is not None:
                r = f_resolve.result()
                got = r.stdout.decode("utf-8", "replace").split("\n")
                if r.returncode != 0 or len(got) != len(ids) + 1:
                    self.fail(rnd, "hive-cred resolve of every id: exit %d, %d lines\nstderr: %s"
                              % (r.returncode, len(got), r.stderr.decode("utf-8", "replace")))
                else:
                    for i, v in zip(ids, got):
                        if v != observed[i]:
                            self.fail(rnd, "hive-cred resolve {{%s}} gave %s, the file holds %s"
                                      % (i, short(v), short(observed[i])))

            for cid, f in f_gets:
                r = f.result()
                if cid in observed:
                    if r.returncode != 0 or r.stdout != b(observed[cid] + "\n"):
                        self.fail(rnd, "hive-cred get %s: exit %d, %s; the file holds %s"
                                  % (cid, r.returncode, short(r.stdout.decode("utf-8", "replace")),
                                     short(observed[cid])))
                elif r.returncode != 3:
                    self.fail(rnd, "hive-cred get %s (no file): exit %d, expected 3" % (cid, r.returncode))

        # --- the next locked write removes the orphans
        probe = "probe-%d" % rnd
        r = st.run("add", PROBE, stdin=b("value=%s\n" % probe))
        if r.returncode != 0:
            self.fail(rnd, "hive-cred add %s: exit %d: %s" % (PROBE, r.returncode, r.stderr.decode("utf-8", "replace")))
        else:
            observed[PROBE] = probe
        left = [t for t in st.tmp_files() if t not in self.reported_tmp]
        if left:
            self.reported_tmp.update(left)
            self.fail(rnd, "temporary files left after the next locked write: %s" % left)

        self.expected = observed
        self.key, self.new = st.keys()

    def finish(self):
        st = self.st
        r = st.run("rotate-key")
        if r.returncode != 0:
            self.fail("final", "rotate-key: exit %d: %s" % (r.returncode, r.stderr.decode("utf-8", "replace")))
            return
        key, new = st.keys()
        if new is not None or os.path.exists(st.new_path):
            self.fail("final", "secrets/credential_key.new is still there after rotate-key")
        found, problems = st.scan()
        for p in problems:
            self.fail("final", p)
        observed = {k: v for k, (v, _) in found.items()}
        if observed != self.expected:
            self.fail("final", "values changed by the final rotation: %s"
                      % sorted(k for k in set(observed) | set(self.expected)
                               if observed.get(k) != self.expected.get(k)))
        others = [k for k in self.all_keys if k != key]
        for name in sorted(os.listdir(st.cdir)):
            if not name.endswith(".enc"):
                continue
            path = os.path.join(st.cdir, name)
            if not st.decrypts_with(path, key):
                self.fail("final", "%s does not decrypt with the final key" % name)
            if any(st.decrypts_with(path, k) for k in others):
                self.fail("final", "%s still decrypts with an earlier key" % name)
        r = st.run("list")
        if r.returncode != 0 or set(r.stdout.decode("utf-8").splitlines()) != set(self.expected):
            self.fail("final", "hive-cred list after the final rotation: exit %d" % r.returncode)
        if set(st.read_index()["credentials"]) != set(self.expected):
            self.fail("final", "the index after the final rotation is wrong")
        print("final rotation: %d credentials, all under the final key, none under the %d earlier keys"
              % (len(observed), len(others)), flush=True)

    def main(self):
        args = self.args
        top = tempfile.mkdtemp(prefix="hive-torture-")
        home = os.path.join(top, "home")
        work = os.path.join(top, "work")
        os.mkdir(home, 0o700)
        os.mkdir(work)
        self.st = Store(args.hive_cred, home, work)
        print("torture: seed %d, %d rounds, hive-cred %s, store %s"
              % (args.seed, args.rounds, args.hive_cred, home), flush=True)
        t0 = time.monotonic()
        windows = []
        try:
            self.setup()
            # Round 0 kills nothing: it checks the happy path strictly and
            # measures how long a batch takes here, the window the kills
            # are spread over (at least --max-delay-ms); rounds that end
            # before their kill adjust it.
            self.window = 10.0
            batch = self.round(0, kill=False)
            self.window = max(args.max_delay_ms / 1000.0, batch) if not args.fixed_window \
                else args.max_delay_ms / 1000.0
            print("torture: an unkilled batch took %.0f ms; kills at 0 to %.0f ms"
                  % (batch * 1000, self.window * 1000), flush=True)
            for rnd in range(1, args.rounds + 1):
                self.round(rnd)
                windows.append(self.window)
                # a fresh work dir every so often: the stdin/out files pile up
                if rnd % 20 == 0:
                    for name in os.listdir(work):
                        os.remove(os.path.join(work, name))
            self.finish()
        except Failure as e:
            self.fail("-", str(e))
        s = self.stats
        if windows:
            print("torture: kill windows from %.0f to %.0f ms" % (min(windows) * 1000, max(windows) * 1000))
        print("torture: %d rounds in %.1f s; %d processes, %d killed (%d killed writers, %d of whose "
              "values landed); rotation: %d killed, %d completed, %d left pending; %d orphan temp "
              "files seen; index stale %d times (%d of them lost or damaged on purpose), repaired by list; "
              "%d rounds with no delay; "
              "%d credentials at the end"
              % (args.rounds, time.monotonic() - t0, s["procs"], s["killed"], s["killed_writers"],
                 s["killed_landed"], s["rotation_killed"], s["rotation_done"],
                 s["rotation_interrupted"], s["orphans_seen"], s["index_repaired"], s["index_damaged"],
                 s["delay0"],
                 len(self.expected)), flush=True)
        if self.failures:
            print("torture: FAILED, %d problem(s); seed %d (rerun: --seed %d --rounds %d); store kept at %s"
                  % (len(self.failures), args.seed, args.seed, args.rounds, home), flush=True)
            return 1
        if args.keep:
            print("torture: store kept at %s" % home)
        else:
            shutil.rmtree(top, ignore_errors=True)
        print("torture: OK")
        return 0


def main():
    default_cred = hivetest.HIVE_CRED
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    ap.add_argument("--hive-cred", default=default_cred,
                    help="the binary (default: $HIVE_CRED, else <repo>/build/launcher/hive-cred)")
    ap.add_argument("--max-delay-ms", type=float, default=80.0,
                    help="kills come 0 to this many ms after the start, or as long as an unkilled "
                    "batch takes (measured in round 0, then in rounds that end before their "
                    "kill) when that is longer (default 80)")
    ap.add_argument("--fixed-window", action="store_true",
                    help="use --max-delay-ms as it is, even when a batch takes longer")
    ap.add_argument("--keep", action="store_true", help="keep the store when all went well")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per round")
    args = ap.parse_args()
    args.hive_cred = os.path.abspath(args.hive_cred)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 31)
    if not os.access(args.hive_cred, os.X_OK):
        sys.exit("hive-cred not found at %s (set HIVE_CRED or --hive-cred)" % args.hive_cred)
    return Torture(args).main()


if __name__ == "__main__":
    sys.exit(main())
