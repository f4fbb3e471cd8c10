#!/usr/bin/env python3
"""End-to-end tests of the hive-cred binary.

Run:  python3 tests/cli/test_hive_cred.py [unittest options]

Environment:
  HIVE_CRED     path of the hive-cred binary
                (default: <repo>/build/launcher/hive-cred)
  HIVE_FIXTURE  path of the fixture Hive home written by Python Hive
                (default: <repo>/tests/data/fixtures/hive-home)

Standard library only, plus `cryptography` (for Fernet), which the Python
Hive framework itself uses: what hive-cred writes must be readable with
nothing but cryptography.fernet and json, and vice versa.
"""

import base64
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest
from datetime import datetime, timezone
from pathlib import Path

from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lib"))
import hivetest  # noqa: E402  (tests/lib/hivetest.py)

HIVE_CRED = hivetest.HIVE_CRED
FIXTURE = hivetest.FIXTURE

TIMEOUT = hivetest.scaled(30)

CRED_ORDER = ["id", "credential_type", "keys", "provider_id", "last_refreshed", "auto_refresh",
              "last_used", "use_count", "description", "tags", "created_at", "updated_at"]
KEY_ORDER = ["name", "value", "expires_at", "metadata"]
# Python's isoformat() of an aware UTC datetime, with +00:00 replaced by Z.
CRED_TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")
INDEX_TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$")


load_expected = hivetest.load_expected


def stem(cred_id):
    return cred_id.replace("/", "_").replace("\\", "_").replace("..", "_")


def bsorted(ids):
    return sorted(ids, key=lambda s: s.encode("utf-8"))


def lines_out(ids):
    return "".join(i + "\n" for i in ids).encode("utf-8")


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


class HiveCredTest(unittest.TestCase):
    """One temporary HIVE_HOME per test; HIVE_CREDENTIAL_KEY removed."""

    maxDiff = None

    def setUp(self):
        self.tmp = hivetest.temp_dir(self, "hive-cred-test-")
        self.home = self.tmp
        self.store = os.path.join(self.home, "credentials")
        self.cdir = os.path.join(self.store, "credentials")
        self.mdir = os.path.join(self.store, "metadata")
        self.index_path = os.path.join(self.mdir, "index.json")
        self.key_path = os.path.join(self.home, "secrets", "credential_key")
        self.env = hivetest.clean_env(self.home)

    # --- helpers -------------------------------------------------------

    def run_cred(self, *args, stdin=b"", env=None, extra_env=None):
        e = dict(self.env if env is None else env)
        if extra_env:
            e.update(extra_env)
        return hivetest.run([HIVE_CRED, *args], e, stdin=stdin, timeout=TIMEOUT, cwd=self.tmp)

    def check(self, r, code, what=""):
        self.assertEqual(r.returncode, code,
                         "%s: exit %d, expected %d\nstdout: %r\nstderr: %r"
                         % (what or " ".join(map(str, r.args[1:])), r.returncode, code,
                            r.stdout, r.stderr))
        return r

    def ok(self, *args, **kw):
        return self.check(self.run_cred(*args, **kw), 0)

    def add(self, cred_id, values, *opts, code=0, **kw):
        """values: dict (written as NAME=VALUE lines) or raw str/bytes."""
        if isinstance(values, dict):
            values = "".join("%s=%s\n" % kv for kv in values.items())
        return self.check(self.run_cred("add", cred_id, *opts, stdin=values, **kw), code,
                          "add %r" % cred_id)

    def get(self, cred_id, *key, **kw):
        return self.run_cred("get", cred_id, *key, **kw)

    def assert_get(self, cred_id, key, value, **kw):
        args = (key,) if key is not None else ()
        r = self.check(self.get(cred_id, *args, **kw), 0, "get %r %r" % (cred_id, key))
        self.assertEqual(r.stdout, (value + "\n").encode("utf-8"), "get %r %r" % (cred_id, key))
        self.assertEqual(r.stderr, b"")

    def assert_secret_free(self, r, *secrets):
        for s in secrets:
            b = s.encode("utf-8") if isinstance(s, str) else s
            self.assertNotIn(b, r.stderr, "secret leaked to stderr")
            self.assertNotIn(b, r.stdout, "secret leaked to stdout")

    def error_lines(self, r):
        return r.stderr.decode("utf-8", "replace").splitlines()

    def assert_error(self, r, code, message, exact=False):
        self.check(r, code)
        lines = self.error_lines(r)
        self.assertTrue(lines, "no message on stderr")
        first = lines[0]
        self.assertTrue(first.startswith("hive-cred: error: "), first)
        if exact:
            self.assertEqual(first, "hive-cred: error: " + message)
        else:
            self.assertIn(message, first)
        for line in lines[1:]:
            self.assertTrue(line.startswith("hint: ") or line.startswith("hive-cred: "), line)

    def copy_fixture(self):
        self.expected = hivetest.copy_fixture(self.home)
        self.key = self.expected["key"]
        with open(self.key_path) as f:
            self.assertEqual(f.read(), self.key)
        return self.expected

    def init_store(self):
        self.ok("init")
        with open(self.key_path) as f:
            self.key = f.read().strip()
        return self.key

    def enc_path(self, cred_id):
        return os.path.join(self.cdir, stem(cred_id) + ".enc")

    def decrypt_file(self, path, key=None):
        with open(path, "rb") as f:
            token = f.read()
        return Fernet((key or self.key).encode()).decrypt(token).decode("utf-8")

    def write_token(self, cred_id_or_path, plaintext, key=None):
        path = cred_id_or_path if os.path.isabs(cred_id_or_path) else self.enc_path(cred_id_or_path)
        if isinstance(plaintext, str):
            plaintext = plaintext.encode("utf-8")
        with open(path, "wb") as f:
            f.write(Fernet((key or self.key).encode()).encrypt(plaintext))

    def read_index(self):
        return self.read_index_at(self.store)

    def read_index_at(self, store):
        with open(os.path.join(store, "metadata", "index.json"), encoding="utf-8") as f:
            text = f.read()
        return text, json.loads(text)

    def list_ids(self):
        r = self.ok("list")
        self.assertEqual(r.stderr, b"")
        return r.stdout.decode("utf-8").splitlines()

    def tree(self, top):
        """Every path under top with its type and content."""
        out = {}
        for root, dirs, files in os.walk(top):
            for d in dirs:
                p = os.path.join(root, d)
                out[os.path.relpath(p, top)] = ("dir", None)
            for f in files:
                p = os.path.join(root, f)
                if os.path.islink(p):
                    out[os.path.relpath(p, top)] = ("link", os.readlink(p))
                else:
                    with open(p, "rb") as fh:
                        out[os.path.relpath(p, top)] = ("file", fh.read())
        return out


# --- 1. the fixture written by Python Hive --------------------------------

class TestFixtureReadBack(HiveCredTest):

    def setUp(self):
        super().setUp()
        self.copy_fixture()

    def test_get_every_key_and_default(self):
        creds = self.expected["credentials"]
        self.assertEqual(len(creds), 8)
        for c in creds:
            with self.subTest(id=c["id"]):
                for name, value in c["keys"].items():
                    self.assert_get(c["id"], name, value)
                self.assert_get(c["id"], None, c["default_key"])

    def test_astral_value_bytes(self):
        r = self.ok("get", "smtp_login", "password")
        self.assertEqual(r.stdout, "p@ss w\u00f6rd \u2713 \U0001f511\n".encode("utf-8"))
        self.assertEqual(r.stdout, b"p@ss w\xc3\xb6rd \xe2\x9c\x93 \xf0\x9f\x94\x91\n")

    def test_list_exact(self):
        ids = [c["id"] for c in self.expected["credentials"]]
        r = self.ok("list")
        self.assertEqual(r.stdout, lines_out(bsorted(ids)))
        self.assertEqual(r.stderr, b"")
        # byte order: uppercase first, and "brave_search" before "brave_search/work"
        self.assertEqual(r.stdout.splitlines()[0], b"Z29vZ2xlOlRpbW90aHk6MTYwNjc6MTM2ODQ")

    def test_list_json(self):
        ids = bsorted(c["id"] for c in self.expected["credentials"])
        r = self.ok("list", "--json")
        doc = json.loads(r.stdout)
        self.assertIsInstance(doc, list)
        self.assertEqual([e["id"] for e in doc], ids)
        for e in doc:
            self.assertNotIn("value", json.dumps(e))  # metadata only
        self.assert_secret_free(r, *[v for c in self.expected["credentials"]
                                     for k, v in c["keys"].items() if not k.startswith("_")])

    def test_exists(self):
        for c in self.expected["credentials"]:
            with self.subTest(id=c["id"]):
                r = self.check(self.run_cred("exists", c["id"]), 0)
                self.assertEqual(r.stdout, b"")
        for missing in ["nope", "brave_search_work", "brave_search/home", "../../etc/passwd", "BRAVE_SEARCH"]:
            with self.subTest(missing=missing):
                self.check(self.run_cred("exists", missing), 1)

    def test_missing_credential_message(self):
        r = self.get("nope")
        self.assert_error(r, 3, "Credential 'nope' not found in store %s" % self.store, exact=True)
        self.assertEqual(r.stdout, b"")

    def test_missing_credential_did_you_mean(self):
        r = self.get("brave_serach")
        self.assert_error(r, 3, "Credential 'brave_serach' not found in store %s" % self.store, exact=True)
        self.assertIn("hint: did you mean id 'brave_search'?", self.error_lines(r))
        # the nearest first, at most three
        for i in (1, 2, 3):
            self.add("svc%d" % i, {"api_key": "v"})
        r = self.get("svc")
        self.assertIn("hint: did you mean id 'svc1', 'svc2' or 'svc3'?", self.error_lines(r))
        self.add("svc", {"api_key": "v"})
        r = self.get("svc1x")
        self.assertIn("hint: did you mean id 'svc1', 'svc' or 'svc2'?", self.error_lines(r))
        # the commands that resolve templates and refresh say the same
        r = self.run_cred("resolve", "x {{brave_serach}} y")
        self.assert_error(r, 3, "Credential 'brave_serach' not found in store %s" % self.store, exact=True)
        self.assertIn("hint: did you mean id 'brave_search'?", self.error_lines(r))
        r = self.run_cred("refresh", "brave_serach")
        self.assert_error(r, 3, "Credential 'brave_serach' not found in store %s" % self.store, exact=True)
        # nothing near: no guess
        r = self.get("zzzzzzzzzzzz")
        self.assertFalse([l for l in self.error_lines(r) if "did you mean" in l], r.stderr)

    def test_missing_key_message(self):
        r = self.get("brave_search", "nokey")
        self.assert_error(r, 3, "Key 'nokey' not found in credential 'brave_search'", exact=True)
        self.assertEqual(r.stdout, b"")
        self.assertIn("hint: credential 'brave_search' has: api_key", self.error_lines(r))
        r = self.get("brave_search", "api_kye")
        self.assertIn("hint: did you mean key 'api_key'?", self.error_lines(r))

    def test_options_anywhere_and_store_option(self):
        # the whole store elsewhere; HIVE_HOME points at an empty directory
        other = os.path.join(self.tmp, "elsewhere")
        os.mkdir(other)
        for name in ("credentials", "secrets"):
            shutil.move(os.path.join(self.home, name), os.path.join(other, name))
        self.env["HIVE_HOME"] = os.path.join(self.tmp, "empty")
        store = os.path.join(other, "credentials")
        want = b"BSA-test-0123456789abcdef\n"
        for args in (["--store", store, "get", "brave_search", "api_key"],
                     ["get", "--store", store, "brave_search", "api_key"],
                     ["get", "brave_search", "--store", store, "api_key"],
                     ["get", "brave_search", "api_key", "--store", store],
                     ["get", "brave_search", "api_key", "--store=" + store]):
            with self.subTest(args=args):
                r = self.ok(*args)
                self.assertEqual(r.stdout, want)
        r = self.ok("list", "--store", store)
        self.assertEqual(len(r.stdout.splitlines()), 8)
        # without --store: nothing there
        r = self.get("brave_search")
        self.assertNotEqual(r.returncode, 0)

    def test_reader_tolerance(self):
        # Python's Fernet accepts a trailing newline and the '+/' alphabet.
        path = self.enc_path("brave_search")
        with open(path, "rb") as f:
            token = f.read()
        variants = {
            "newline": token + b"\n",
            "crlf": token + b"\r\n",
            "std-alphabet": token.replace(b"-", b"+").replace(b"_", b"/"),
        }
        for name, t in variants.items():
            with self.subTest(variant=name):
                Fernet(self.key.encode()).decrypt(t)  # what Python accepts
                with open(path, "wb") as f:
                    f.write(t)
                self.assert_get("brave_search", None, "BSA-test-0123456789abcdef")

    def test_plaintext_variants(self):
        # BOM, +00:00, naive datetimes, unknown fields: all readable.
        doc = json.loads(self.expected["credentials"][0]["plaintext_json"])
        doc["created_at"] = "2026-03-01T12:00:00+00:00"
        doc["updated_at"] = "2026-03-01T12:00:00"
        doc["keys"]["api_key"]["expires_at"] = "2030-03-01T12:00:00.123456+02:00"
        doc["extra_field"] = {"x": [1, 2]}
        self.write_token("brave_search", "\ufeff" + json.dumps(doc))
        self.assert_get("brave_search", "api_key", "BSA-test-0123456789abcdef")


# --- 2. what hive-cred writes, read back with Python only -----------------

SAMPLES = [
    # id, type, options, values (ordered)
    ("openai", "api_key", ["--description", "OpenAI key", "--tag", "llm", "--tag", "prod"],
     {"api_key": "sk-test=abc==", "org": "org \"quoted\" 'single'"}),
    ("github", "oauth2",
     ["--expires", "access_token=2030-01-01T00:00:00Z", "--auto-refresh", "--provider-id", "github_app"],
     {"access_token": "gho_abc", "refresh_token": "ghr_back\\slash\\\\two", "scope": "repo\tuser"}),
    ("smtp", "basic_auth", ["--description", "Caf\u00e9 \u2713 \U0001f511"],
     {"username": "b\u00f6b@example.com", "password": "p\u00e4ss \U0001f511 \u2713 \u00e9\u00e8"}),
    ("brave_search/work", "api_key", [],
     {"api_key": "BSA=x=y", "_alias": "work", "_integration_type": "brave_search",
      "_identity_email": "w@example.com"}),
    ("misc", "custom", [],
     {"json": "{\"a\": [1, \"b\"]}", "ctl": "bell\x07 esc\x1b del\x7f cr\rin", "hash": "a#b # c",
      "eq": "=leading", "spaces": "  two  spaces  ", "long": "x" * 5000}),
]


class TestWrittenStore(HiveCredTest):

    def setUp(self):
        super().setUp()
        self.init_store()
        for cred_id, ctype, opts, values in SAMPLES:
            self.add(cred_id, values, "--type", ctype, *opts)

    def test_python_reads_back(self):
        for cred_id, ctype, opts, values in SAMPLES:
            with self.subTest(id=cred_id):
                path = self.enc_path(cred_id)
                with open(path, "rb") as f:
                    token = f.read()
                self.assertRegex(token, rb"^[A-Za-z0-9_-]+=*$")  # urlsafe, no newline
                self.assertEqual(len(token) % 4, 0)
                self.assertEqual(base64.urlsafe_b64decode(token)[0], 0x80)
                text = self.decrypt_file(path)
                doc = json.loads(text)
                # we write what Python writes
                self.assertEqual(json.dumps(doc), text)
                self.assertEqual(list(doc), CRED_ORDER)
                self.assertEqual(doc["id"], cred_id)
                self.assertEqual(doc["credential_type"], ctype)
                self.assertEqual(list(doc["keys"]), list(values))
                for name, value in values.items():
                    entry = doc["keys"][name]
                    self.assertEqual(list(entry), KEY_ORDER)
                    self.assertEqual(entry["name"], name)
                    self.assertEqual(entry["value"], value)
                    self.assertEqual(entry["metadata"], {})
                    if cred_id == "github" and name == "access_token":
                        self.assertEqual(entry["expires_at"], "2030-01-01T00:00:00Z")
                    else:
                        self.assertIsNone(entry["expires_at"])
                self.assertEqual(doc["use_count"], 0)
                self.assertIsNone(doc["last_used"])
                for field in ("created_at", "updated_at"):
                    self.assertRegex(doc[field], CRED_TIME_RE)
                self.assertLessEqual(doc["created_at"], doc["updated_at"])
                if doc["last_refreshed"] is not None:
                    self.assertRegex(doc["last_refreshed"], CRED_TIME_RE)
                if cred_id == "github":
                    self.assertTrue(doc["auto_refresh"])
                    self.assertEqual(doc["provider_id"], "github_app")
                else:
                    self.assertFalse(doc["auto_refresh"])
                    self.assertIsNone(doc["provider_id"])
                if cred_id == "openai":
                    self.assertEqual(doc["tags"], ["llm", "prod"])
                    self.assertEqual(doc["description"], "OpenAI key")
                elif cred_id == "smtp":
                    self.assertEqual(doc["description"], "Caf\u00e9 \u2713 \U0001f511")
                    self.assertIn("\\ud83d\\udd11", text)  # lowercase surrogate pair
                    self.assertNotIn("\u00e9", text)       # ensure_ascii
                else:
                    self.assertEqual(doc["tags"], [])
                    if cred_id != "github":
                        self.assertEqual(doc["description"], "")

    def test_get_round_trip(self):
        for cred_id, ctype, opts, values in SAMPLES:
            for name, value in values.items():
                with self.subTest(id=cred_id, key=name):
                    self.assert_get(cred_id, name, value)

    def test_index(self):
        text, index = self.read_index()
        self.assertEqual(json.dumps(index, indent=2), text)
        self.assertFalse(text.endswith("\n"))
        self.assertEqual(index["version"], "2.0")
        self.assertEqual(set(index["credentials"]), {s[0] for s in SAMPLES})
        self.assertEqual(index["store_path"], self.store)
        self.assertRegex(index["generated_at"], INDEX_TIME_RE)
        gh = index["credentials"]["github"]
        self.assertEqual(gh["credential_type"], "oauth2")
        self.assertEqual(gh["key_names"], ["access_token", "refresh_token", "scope"])
        self.assertEqual(gh["expires_at"], "2030-01-01T00:00:00+00:00")
        self.assertTrue(gh["auto_refresh"])
        self.assertRegex(gh["created_at"], INDEX_TIME_RE)
        bw = index["credentials"]["brave_search/work"]
        self.assertEqual(bw["provider"], "brave_search")
        self.assertEqual(bw["alias"], "work")
        self.assertEqual(bw["identity"], {"email": "w@example.com"})
        self.assertEqual(bw["key_names"], ["api_key"])
        self.assertEqual(index["credentials"]["openai"]["tags"], ["llm", "prod"])
        # no secret in the plaintext index
        for cred_id, ctype, opts, values in SAMPLES:
            for name, value in values.items():
                if not name.startswith("_") and len(value) > 4:
                    self.assertNotIn(json.dumps(value)[1:-1], text)

    def test_modes(self):
        for d in (self.home + "/secrets", self.store, self.cdir, self.mdir):
            self.assertEqual(mode(d), 0o700, d)
        self.assertEqual(mode(self.key_path), 0o600)
        self.assertEqual(mode(self.index_path), 0o600)
        for name in os.listdir(self.cdir):
            self.assertEqual(mode(os.path.join(self.cdir, name)), 0o600, name)
        self.assertEqual(sorted(n for n in os.listdir(self.cdir) if n.endswith(".enc")),
                         sorted(stem(s[0]) + ".enc" for s in SAMPLES))
        for d in (self.cdir, self.mdir):
            self.assertEqual([n for n in os.listdir(d) if n.startswith(".tmp-")], [])

    def test_list_and_show_json(self):
        self.assertEqual(self.list_ids(), bsorted(s[0] for s in SAMPLES))
        r = self.ok("show", "--json", "github", "--reveal")
        doc = json.loads(r.stdout)
        self.assertEqual(doc, json.loads(self.decrypt_file(self.enc_path("github"))))

    def test_stdin_forms(self):
        # comments, blank lines, CRLF, no final newline
        raw = b"# a comment\r\n\r\n\napi_key=crlf-value\r\n\n#other=skip\nsecond=last-no-newline"
        r = self.add("forms", raw)
        self.assert_secret_free(r, "crlf-value", "last-no-newline")
        doc = json.loads(self.decrypt_file(self.enc_path("forms")))
        self.assertEqual({k: v["value"] for k, v in doc["keys"].items()},
                         {"api_key": "crlf-value", "second": "last-no-newline"})

    def test_whitespace_only_line_is_blank(self):
        # "blank lines are skipped": a line of spaces or tabs is blank too
        r = self.add("ws", b"api_key=ws-value\n  \n\t\r\nother=o\n")
        self.assert_secret_free(r, "ws-value")
        self.assert_get("ws", "other", "o")

    def test_large_value(self):
        big = "".join(chr(0x20 + (i * 7) % 90) for i in range(200000))
        self.add("big", "api_key=" + big + "\n")
        self.assert_get("big", "api_key", big)

    def test_default_key(self):
        cases = [
            ({"token": "t", "value": "V", "api_key": "A", "access_token": "T"}, "V"),
            ({"access_token": "T", "foo": "f", "api_key": "A"}, "A"),
            ({"foo": "f", "access_token": "T"}, "T"),
            ({"zeta": "Z", "alpha": "a"}, "Z"),
        ]
        for i, (values, want) in enumerate(cases):
            with self.subTest(values=values):
                self.add("dk%d" % i, values, "--type", "custom")
                self.assert_get("dk%d" % i, None, want)

    def test_expires_forms(self):
        # UTC, Unix seconds and naive input (naive means UTC) are written with
        # 'Z': a naive expires_at would make Python Hive's aware/naive
        # comparison in is_expired raise TypeError.
        for i, when in enumerate(["2030-01-01T00:00:00Z", "2030-01-01T00:00:00+00:00", "1893456000",
                                  "2030-01-01T00:00:00", "2030-01-01T02:00:00+02:00"]):
            with self.subTest(when=when):
                self.add("exp%d" % i, {"access_token": "t"}, "--type", "bearer_token",
                         "--expires", "access_token=" + when)
                doc = json.loads(self.decrypt_file(self.enc_path("exp%d" % i)))
                got = doc["keys"]["access_token"]["expires_at"]
                if i < 4:
                    self.assertEqual(got, "2030-01-01T00:00:00Z")
                else:
                    # another offset may be kept (as Python keeps it), or
                    # converted to UTC: the same instant, and aware.
                    self.assertRegex(got, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$")
                    self.assertEqual(datetime.fromisoformat(got.replace("Z", "+00:00")),
                                     datetime(2030, 1, 1, tzinfo=timezone.utc))
        self.add("rel", {"access_token": "t"}, "--expires", "access_token=+1h")
        doc = json.loads(self.decrypt_file(self.enc_path("rel")))
        self.assertRegex(doc["keys"]["access_token"]["expires_at"], CRED_TIME_RE)

    def test_expires_in_the_past(self):
        """A past expiry is legitimate (a token known to be expired): -1h."""
        now = datetime.now(timezone.utc).timestamp()
        for when, ago in (("-1h", 3600), ("-90s", 90), ("-2d", 172800), ("-5m", 300)):
            with self.subTest(when=when):
                self.add("past", {"access_token": "t"}, "--type", "bearer_token",
                         "--expires", "access_token=" + when)
                doc = json.loads(self.decrypt_file(self.enc_path("past")))
                got = datetime.fromisoformat(doc["keys"]["access_token"]["expires_at"].replace("Z", "+00:00"))
                self.assertAlmostEqual(got.timestamp(), now - ago, delta=60)
                r = self.ok("show", "past")
                self.assertIn(b"(expired)", r.stdout)
        for bad in ("--1h", "-1y", "-", "-h", "+-1h"):
            with self.subTest(bad=bad):
                r = self.add("bad", {"access_token": "t"}, "--expires", "access_token=" + bad, code=2)
                self.assertIn("is not a time", r.stderr.decode())

    def test_dash_ids_and_double_dash(self):
        self.check(self.run_cred("add", "--", "-dash", stdin="api_key=dashed\n"), 0)
        r = self.ok("get", "--", "-dash")
        self.assertEqual(r.stdout, b"dashed\n")
        r = self.ok("get", "--", "-dash", "api_key")
        self.assertEqual(r.stdout, b"dashed\n")
        self.assertIn("-dash", self.list_ids())
        # options after the operand, before --
        r = self.check(self.run_cred("add", "opt-after", "--type", "oauth2", "--tag", "t1",
                                     stdin="access_token=x\n"), 0)
        doc = json.loads(self.decrypt_file(self.enc_path("opt-after")))
        self.assertEqual((doc["credential_type"], doc["tags"]), ("oauth2", ["t1"]))


# --- 3. re-saving ---------------------------------------------------------

class TestResave(HiveCredTest):

    def test_replace_keeps_created_at(self):
        self.init_store()
        self.add("svc", {"api_key": "first", "old_only": "gone-soon"}, "--description", "one")
        doc1 = json.loads(self.decrypt_file(self.enc_path("svc")))
        self.add("svc", {"api_key": "second", "new_key": "fresh"}, "--description", "two")
        doc2 = json.loads(self.decrypt_file(self.enc_path("svc")))
        self.assertEqual(doc2["created_at"], doc1["created_at"])
        self.assertGreaterEqual(doc2["updated_at"], doc1["updated_at"])
        self.assertEqual(doc2["description"], "two")
        self.assert_get("svc", None, "second")
        self.assert_get("svc", "new_key", "fresh")
        r = self.get("svc", "old_only")
        self.assert_error(r, 3, "Key 'old_only' not found in credential 'svc'", exact=True)
        self.assertIn("hint: credential 'svc' has: api_key, new_key", self.error_lines(r))
        self.assertEqual(self.list_ids(), ["svc"])
        _, index = self.read_index()
        self.assertEqual(index["credentials"]["svc"]["key_names"], ["api_key", "new_key"])
        self.assertEqual(index["credentials"]["svc"]["created_at"],
                         doc1["created_at"].replace("Z", "+00:00"))

    def test_resave_fixture_credential(self):
        self.copy_fixture()
        self.add("github_oauth", {"access_token": "new-token"}, "--type", "oauth2")
        doc = json.loads(self.decrypt_file(self.enc_path("github_oauth")))
        self.assertEqual(doc["created_at"], "2026-03-01T12:00:00Z")
        self.assertNotEqual(doc["updated_at"], "2026-03-01T12:00:00Z")
        self.assert_get("github_oauth", None, "new-token")
        # the others are untouched
        for c in self.expected["credentials"]:
            if c["id"] != "github_oauth":
                self.assertEqual(self.decrypt_file(os.path.join(self.home, c["file"])),
                                 c["plaintext_json"])
        text, index = self.read_index()
        self.assertEqual(json.dumps(index, indent=2), text)
        self.assertEqual(len(index["credentials"]), 8)


# --- 4. concurrency -------------------------------------------------------

class TestParallel(HiveCredTest):

    N = 50

    def run_all(self, jobs, env=None):
        """Start every (args, stdin bytes) job at once; return [(rc, out, err)]."""
        env = dict(self.env if env is None else env)
        files, procs = [], []
        try:
            for n, (args, data) in enumerate(jobs):
                path = os.path.join(self.tmp, ".stdin-%03d" % n)
                with open(path, "wb") as f:
                    f.write(data)
                files.append(open(path, "rb"))
            for (args, data), f in zip(jobs, files):
                procs.append(subprocess.Popen([HIVE_CRED, *args], stdin=f, stdout=subprocess.PIPE,
                                              stderr=subprocess.PIPE, env=env, cwd=self.tmp))
            results = []
            for p in procs:
                out, err = p.communicate(timeout=TIMEOUT)
                results.append((p.returncode, out, err))
            return results
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            for f in files:
                f.close()
            for n in range(len(jobs)):
                os.remove(os.path.join(self.tmp, ".stdin-%03d" % n))

    def parallel_add(self, extra_env=None):
        env = dict(self.env)
        env.update(extra_env or {})
        jobs = [(["add", "par-%02d" % i], b"api_key=value-%02d\nother=o%02d\n" % (i, i))
                for i in range(self.N)]
        for i, (rc, out, err) in enumerate(self.run_all(jobs, env)):
            self.assertEqual(rc, 0, "add par-%02d: %r" % (i, err))
            self.assertNotIn(b"value-%02d" % i, out + err)
        ids = ["par-%02d" % i for i in range(self.N)]
        self.assertEqual(self.list_ids(), ids)
        text, index = self.read_index()
        self.assertEqual(index["version"], "2.0")
        self.assertEqual(sorted(index["credentials"]), ids)
        self.assertEqual(json.dumps(index, indent=2), text)
        for i in range(self.N):
            self.assert_get("par-%02d" % i, None, "value-%02d" % i)
        for d in (self.cdir, self.mdir):
            self.assertEqual([n for n in os.listdir(d) if n.startswith(".tmp-")], [], d)
        self.assertEqual(sorted(os.listdir(self.cdir)), [i + ".enc" for i in ids])

    def test_parallel_add_after_init(self):
        self.init_store()
        self.parallel_add()

    def test_parallel_same_id(self):
        self.init_store()
        results = self.run_all([(["add", "same"], b"api_key=v%02d\n" % i) for i in range(20)])
        for rc, out, err in results:
            self.assertEqual(rc, 0, err)
        self.assertEqual(self.list_ids(), ["same"])
        r = self.ok("get", "same")
        self.assertRegex(r.stdout, rb"^v\d\d\n$")
        self.assertEqual(sorted(os.listdir(self.cdir)), ["same.enc"])
        self.assertEqual(sorted(os.listdir(self.mdir)), ["index.json"])

    def test_parallel_add_and_list_with_missing_index(self):
        # list repairs the index while adds run: no entry may be lost
        self.copy_fixture()
        os.remove(self.index_path)
        jobs = []
        for i in range(20):
            jobs.append((["add", "mix-%02d" % i], b"api_key=m%02d\n" % i))
            jobs.append((["list"], b""))
        for rc, out, err in self.run_all(jobs):
            self.assertEqual(rc, 0, err)
        ids = bsorted([c["id"] for c in self.expected["credentials"]] + ["mix-%02d" % i for i in range(20)])
        text, index = self.read_index()
        self.assertEqual(sorted(index["credentials"]), sorted(ids))
        self.assertEqual(self.list_ids(), ids)

    def test_parallel_init(self):
        for rc, out, err in self.run_all([(["init"], b"")] * 10):
            self.assertEqual(rc, 0, err)
        with open(self.key_path) as f:
            self.key = f.read()
        Fernet(self.key.encode())
        self.assertEqual(os.listdir(os.path.dirname(self.key_path)), ["credential_key"])
        self.add("after", {"api_key": "works"})
        self.assert_get("after", None, "works")

    def test_parallel_add_fresh_store_env_key(self):
        # no init: 50 writers race to create the layout
        key = Fernet.generate_key().decode()
        self.env["HIVE_CREDENTIAL_KEY"] = key
        self.key = key
        self.parallel_add()
        self.assertFalse(os.path.exists(self.key_path))


# --- 5. bad input ---------------------------------------------------------

class TestHostileIds(HiveCredTest):

    def setUp(self):
        super().setUp()
        self.init_store()

    def test_traversal_stays_inside(self):
        before = self.tree(self.tmp)
        etc_before = {p: os.path.lexists(p) for p in ("/etc/x", "/etc/x.enc", "/etc/x_enc")}
        ids = {"../../etc/x": "____etc_x.enc", "/etc/x": "_etc_x.enc",
               "../../../../../../../../../etc/x": "_" * 18 + "etc_x.enc",
               "..\\..\\win": "____win.enc", "..": "_.enc", "a/../b": "a___b.enc"}
        for i, (cred_id, fname) in enumerate(ids.items()):
            with self.subTest(id=cred_id):
                self.assertEqual(stem(cred_id) + ".enc", fname)
                r = self.add(cred_id, {"api_key": "hostile-%d" % i})
                self.assert_secret_free(r, "hostile-%d" % i)
                self.assertTrue(os.path.isfile(os.path.join(self.cdir, fname)))
                self.assert_get(cred_id, None, "hostile-%d" % i)
                doc = json.loads(self.decrypt_file(os.path.join(self.cdir, fname)))
                self.assertEqual(doc["id"], cred_id)  # the true id is kept inside
        after = self.tree(self.tmp)
        changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
        allowed = {os.path.join("credentials", "metadata", "index.json"),
                   os.path.join("credentials", ".lock")}
        allowed |= {os.path.join("credentials", "credentials", f) for f in ids.values()}
        # each write takes the credential's refresh lock (it waits for a refresh under way)
        allowed |= {os.path.join("credentials", ".refresh")}
        allowed |= {os.path.join("credentials", ".refresh", f[:-len(".enc")] + ".lock") for f in ids.values()}
        # each get is recorded in the audit log, $HIVE_HOME/audit.log
        allowed |= {"audit.log"}
        self.assertLessEqual(changed, allowed)
        self.assertEqual({os.path.basename(p) for p in changed if p.endswith(".enc")},
                         set(ids.values()))
        self.assertEqual({p: os.path.lexists(p) for p in etc_before}, etc_before)
        self.assertEqual(self.list_ids(), bsorted(ids))
        # reading hostile ids that do not exist
        for cred_id in ("../../etc/passwd", "/etc/passwd", "../credentials/x", "a/../../b"):
            with self.subTest(get=cred_id):
                r = self.get(cred_id)
                self.assert_error(r, 3, "Credential '%s' not found in store %s" % (cred_id, self.store), exact=True)
                self.check(self.run_cred("exists", cred_id), 1)

    def test_bad_ids_rejected(self):
        bad = {
            "empty": "",
            "300 chars": "a" * 300,
            "newline": "a\nb",
            "tab": "a\tb",
            "dot": ".",
        }
        for what, cred_id in bad.items():
            with self.subTest(what=what):
                r = self.add(cred_id, {"api_key": "never-stored"}, code=2)
                self.assert_secret_free(r, "never-stored")
                self.assertTrue(r.stderr.startswith(b"hive-cred: error: "), r.stderr)
        r = self.check(self.run_cred("add", b"bad\xffutf8", stdin=b"api_key=never-stored\n"), 2)
        self.assertEqual([n for n in os.listdir(self.cdir) if n.endswith(".enc")], [])
        self.assertEqual(self.list_ids(), [])
        for what in ("empty", "300 chars"):
            with self.subTest(get=what):
                self.check(self.get(bad[what]), 2)
        self.assertIn(self.get(bad["newline"]).returncode, (2, 3))

    def test_special_files_do_not_hang(self):
        os.mkfifo(self.enc_path("fifo"))
        os.mkdir(self.enc_path("dir"))
        for cred_id in ("fifo", "dir"):
            with self.subTest(id=cred_id):
                r = self.get(cred_id)   # a FIFO must not block the reader
                self.assertNotIn(r.returncode, (0, 1, 2, 4))
                self.assertEqual(r.stdout, b"")
        self.ok("list")
        self.add("normal", {"api_key": "n"})
        self.assert_get("normal", None, "n")

    def test_tmp_prefixed_id_is_not_lost(self):
        # .tmp-* is the writers' temporary name: such an id must be refused,
        # or survive the orphan clean-up of the next write.
        r = self.run_cred("add", ".tmp-evil", stdin="api_key=kept\n")
        self.assertIn(r.returncode, (0, 2), r.stderr)
        self.add("another", {"api_key": "x"})
        if r.returncode == 0:
            self.assert_get(".tmp-evil", None, "kept")

    def test_id_length_limit(self):
        self.add("a" * 250, {"api_key": "long-ok"})
        self.assert_get("a" * 250, None, "long-ok")
        self.add("a" * 251, {"api_key": "too-long"}, code=2)


class TestDamagedFiles(HiveCredTest):

    def setUp(self):
        super().setUp()
        self.copy_fixture()
        self.by_id = {c["id"]: c for c in self.expected["credentials"]}
        self.secrets = [v for c in self.expected["credentials"] for k, v in c["keys"].items()
                        if not k.startswith("_")] + [self.key]

    def damage(self):
        def rd(i):
            with open(self.enc_path(i), "rb") as f:
                return f.read()

        def wr(i, data):
            with open(self.enc_path(i), "wb") as f:
                f.write(data)

        t = bytearray(rd("brave_search"))
        pos = len(t) // 2
        t[pos] = ord("A") if t[pos] != ord("A") else ord("B")
        wr("brave_search", bytes(t))                               # flipped byte
        t = rd("aden_api_key")
        wr("aden_api_key", t[: len(t) // 2])                       # truncated
        t = rd("anthropic")
        wr("anthropic", t[:-3])                                    # truncated, bad length
        wr("smtp_login", b"")                                      # empty
        other = Fernet.generate_key().decode()
        self.write_token("internal_jwt", self.by_id["internal_jwt"]["plaintext_json"], key=other)
        self.write_token("github_oauth", "this is { not json")    # right key, not JSON
        self.write_token("Z29vZ2xlOlRpbW90aHk6MTYwNjc6MTM2ODQ", "[1, 2, 3]")  # JSON, not a credential
        return ["brave_search", "aden_api_key", "anthropic", "smtp_login", "internal_jwt",
                "github_oauth", "Z29vZ2xlOlRpbW90aHk6MTYwNjc6MTM2ODQ"]

    def test_damaged_files(self):
        damaged = self.damage()
        for cred_id in damaged:
            with self.subTest(id=cred_id):
                r = self.get(cred_id)
                self.assert_error(r, 5, "Failed to decrypt credential '%s': " % cred_id)
                first = self.error_lines(r)[0]
                cause = first.split("Failed to decrypt credential '%s': " % cred_id, 1)[1]
                self.assertTrue(cause.strip(), "no cause given")
                self.assertEqual(r.stdout, b"")
                self.assert_secret_free(r, *self.secrets)
                # show fails the same way
                r = self.run_cred("show", cred_id)
                self.check(r, 5)
                self.assert_secret_free(r, *self.secrets)
        # the rest still works, and list still lists everything
        c = self.by_id["brave_search/work"]
        for name, value in c["keys"].items():
            self.assert_get("brave_search/work", name, value)
        r = self.ok("list")
        self.assertEqual(r.stdout, lines_out(bsorted(self.by_id)))
        for cred_id in self.by_id:
            self.check(self.run_cred("exists", cred_id), 0)

    def test_damaged_file_can_be_replaced_and_deleted(self):
        self.damage()
        self.add("brave_search", {"api_key": "replaced"})
        self.assert_get("brave_search", None, "replaced")
        self.ok("delete", "smtp_login")
        self.check(self.run_cred("exists", "smtp_login"), 1)
        self.assertNotIn("smtp_login", self.list_ids())

    def test_symlinked_enc_not_followed(self):
        outside = os.path.join(self.tmp, "outside.enc")
        shutil.copy(self.enc_path("brave_search"), outside)
        os.remove(self.enc_path("brave_search"))
        os.symlink(outside, self.enc_path("brave_search"))
        r = self.get("brave_search")
        self.assertNotEqual(r.returncode, 0, "followed a symlinked .enc file")
        self.assertNotIn(b"BSA-test", r.stdout)
        self.assertTrue(r.stderr.startswith(b"hive-cred: error: "))
        # writing through it must not touch the target either
        with open(outside, "rb") as f:
            target = f.read()
        os.symlink(outside, self.enc_path("evil"))
        self.run_cred("add", "evil", stdin="api_key=written\n")
        with open(outside, "rb") as f:
            self.assertEqual(f.read(), target)
        self.assertTrue(os.path.islink(self.enc_path("brave_search")))

    def test_symlinked_store_subdir_not_followed(self):
        real = os.path.join(self.tmp, "realcreds")
        shutil.move(self.cdir, real)
        os.symlink(real, self.cdir)
        r = self.get("anthropic")
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(r.stdout, b"")


class TestKeys(HiveCredTest):

    def setUp(self):
        super().setUp()
        self.copy_fixture()

    def test_no_key(self):
        os.remove(self.key_path)
        r = self.get("brave_search")
        self.check(r, 4)
        self.assertTrue(r.stderr.startswith(b"hive-cred: error: "))
        self.assertIn(b"hive-cred init", r.stderr)
        self.assertIn(b"hint: ", r.stderr)
        self.assertEqual(r.stdout, b"")
        r = self.add("new", {"api_key": "no-key-secret"}, code=4)
        self.assert_secret_free(r, "no-key-secret")
        self.assertFalse(os.path.exists(self.key_path), "a key was generated silently")
        self.assertFalse(os.path.exists(self.enc_path("new")))

    def test_env_key_garbage(self):
        for garbage in ("garbage-not-a-key", "A" * 43, base64.urlsafe_b64encode(b"x" * 31).decode(),
                        self.key[:-2]):
            with self.subTest(garbage=garbage):
                r = self.get("brave_search", extra_env={"HIVE_CREDENTIAL_KEY": garbage})
                self.check(r, 4)
                self.assert_secret_free(r, garbage, self.key, "BSA-test")
                r = self.add("x", {"api_key": "s3cr3t"}, code=4,
                             extra_env={"HIVE_CREDENTIAL_KEY": garbage})
                self.assert_secret_free(r, garbage, "s3cr3t")

    def test_env_key_wins(self):
        other = Fernet.generate_key().decode()
        r = self.get("brave_search", extra_env={"HIVE_CREDENTIAL_KEY": other})
        self.assert_error(r, 5, "Failed to decrypt credential 'brave_search'")
        self.assert_secret_free(r, other, self.key)
        # the right key in the environment, a broken key file: the file is not read
        with open(self.key_path, "w") as f:
            f.write("broken")
        os.chmod(self.key_path, 0o644)
        self.assert_get("brave_search", None, "BSA-test-0123456789abcdef",
                        extra_env={"HIVE_CREDENTIAL_KEY": self.key})

    def test_key_file_mode(self):
        for m in (0o644, 0o640, 0o604, 0o660):
            with self.subTest(mode=oct(m)):
                os.chmod(self.key_path, m)
                r = self.get("brave_search")
                self.check(r, 6)
                self.assertTrue(r.stderr.startswith(b"hive-cred: error: "))
                self.assertIn(b"chmod 600", r.stderr)
                self.assert_secret_free(r, self.key, "BSA-test")
        os.chmod(self.key_path, 0o400)
        self.assert_get("brave_search", None, "BSA-test-0123456789abcdef")

    def test_key_file_writable(self):
        # group- or world-writable, even if not readable: refused, naming
        # the file and the chmod that fixes it
        for m in (0o620, 0o602, 0o666):
            with self.subTest(mode=oct(m)):
                os.chmod(self.key_path, m)
                r = self.get("brave_search")
                self.assert_error(r, 6, "key file %s is writable by group or others (mode %04o); it must be "
                                  "0600: chmod 600 %s" % (self.key_path, m, self.key_path), exact=True)
        os.chmod(self.key_path, 0o600)

    def test_open_paths_warned_once_with_count(self):
        # Issue 12, item 15: a store or secrets/ directory of mode 0777 was
        # not warned about: anyone could replace the key or a credential.
        # Issue 16, item 6: one warning per command and store, with the
        # count and the command that fixes them all, not one per path.
        home_store = os.path.dirname(self.cdir)
        sdir = os.path.dirname(self.key_path)
        self.add("second", {"api_key": "two"})
        cases = [
            ({home_store: 0o777}, 1, "%s (mode 0777)" % home_store),
            ({sdir: 0o777}, 1, "%s (mode 0777)" % sdir),
            ({self.cdir: 0o755}, 1, "%s (mode 0755)" % self.cdir),
            ({home_store: 0o757, sdir: 0o770}, 2, "%s (mode 0757)" % home_store),
            ({self.enc_path("brave_search"): 0o644, self.enc_path("second"): 0o640, self.index_path: 0o666},
             3, None),
        ]
        for modes, count, first in cases:
            with self.subTest(modes=modes):
                for path, m in modes.items():
                    os.chmod(path, m)
                # two credentials read: still one warning
                r = self.check(self.run_cred("resolve", "{{brave_search}} {{second}}"), 0)
                self.assertEqual(r.stdout, b"BSA-test-0123456789abcdef two\n")
                lines = r.stderr.decode().splitlines()
                self.assertEqual(len(lines), 2, lines)
                self.assertTrue(lines[0].startswith("hive-cred: warning: %d path(s) of store %s can be reached "
                                                    "by group or others, e.g. " % (count, home_store)), lines[0])
                if first:
                    self.assertTrue(lines[0].endswith(first), lines[0])
                self.assertEqual(lines[1], "hint: hive-cred doctor --fix makes its directories 0700 and its "
                                           "files 0600")
                # the fixture's expired tokens are problems doctor reports too (exit 1)
                r = self.check(self.run_cred("doctor", "--fix"), 1)
                self.assertIn("fixed    %d path(s) were open to group or others" % count, r.stdout.decode())
                for path in modes:
                    self.assertEqual(mode(path), 0o700 if os.path.isdir(path) else 0o600)
        r = self.check(self.run_cred("resolve", "{{brave_search}} {{second}}"), 0)
        self.assertEqual(r.stderr, b"")

    def test_key_file_garbage(self):
        with open(self.key_path, "w") as f:
            f.write("not a fernet key at all")
        r = self.get("brave_search")
        self.check(r, 4)
        self.assert_secret_free(r, "not a fernet key at all")

    def test_key_file_trailing_newline_ok(self):
        with open(self.key_path, "w") as f:
            f.write(self.key + "\n")
        self.assert_get("brave_search", None, "BSA-test-0123456789abcdef")


class TestBadInput(HiveCredTest):

    def setUp(self):
        super().setUp()
        self.init_store()

    def assert_nothing_stored(self):
        self.assertEqual([n for n in os.listdir(self.cdir) if n.endswith(".enc")], [])

    def test_stdin_errors(self):
        cases = {
            "no equals": (b"api_key=fine\nsupersecretNoEquals\n", "supersecretNoEquals"),
            "space in name": (b"bad name=secretAfterSpace\n", "secretAfterSpace"),
            "empty name": (b"=secretNoName\n", "secretNoName"),
            "bad utf-8": (b"api_key=sec\xffret\n", b"sec\xffret"),
            "nul": (b"api_key=sec\x00ret\n", b"sec\x00ret"),
            "empty": (b"", None),
            "only comments": (b"# api_key=commented\n\n\r\n", "commented"),
        }
        for what, (data, secret) in cases.items():
            with self.subTest(what=what):
                r = self.run_cred("add", "victim", stdin=data)
                self.check(r, 2)
                self.assertTrue(r.stderr.startswith(b"hive-cred: error: "), r.stderr)
                if secret is not None:
                    self.assert_secret_free(r, secret)
                self.assert_nothing_stored()
        r = self.check(self.run_cred("add", "victim", stdin=b"api_key=" + b"x" * (1536 * 1024) + b"\n"), 2)
        self.assert_nothing_stored()

    def test_expires_errors(self):
        for spec in ("access_token=not-a-time", "access_token=2030-13-45T99:00:00Z",
                     "access_token=", "noequals", "=2030-01-01T00:00:00Z", "access_token=+5y",
                     "missing_key=2030-01-01T00:00:00Z"):
            with self.subTest(spec=spec):
                r = self.run_cred("add", "tok", "--type", "oauth2", "--expires", spec,
                                  stdin="access_token=tok-secret\n")
                self.check(r, 2)
                self.assert_secret_free(r, "tok-secret")
                self.assert_nothing_stored()

    def test_usage_errors(self):
        for args in (["frobnicate"], ["list", "--bogus"], ["--bogus", "list"], [],
                     ["get"], ["get", "a", "b", "c"], ["exists"], ["delete"], ["init", "x"],
                     ["list", "extra"], ["add"], ["show"], ["add", "x", "--type"],
                     ["add", "x", "--type", "nonsense"]):
            with self.subTest(args=args):
                r = self.run_cred(*args, stdin="api_key=usage-secret\n")
                self.check(r, 2)
                self.assertEqual(r.stdout, b"")
                self.assert_secret_free(r, "usage-secret")
        self.assert_nothing_stored()
        self.assertEqual(self.ok("--help").stdout[:17], b"Usage: hive-cred ")

    def test_value_not_in_argv_or_output(self):
        r = self.add("quiet", {"api_key": "never-printed-1"})
        self.assert_secret_free(r, "never-printed-1")
        r = self.ok("list")
        self.assert_secret_free(r, "never-printed-1")


# --- 6. the index is a cache ----------------------------------------------

class TestIndexRobustness(HiveCredTest):

    def setUp(self):
        super().setUp()
        self.copy_fixture()
        with open(self.index_path, encoding="utf-8") as f:
            self.fixture_index = json.load(f)
        self.ids = bsorted(c["id"] for c in self.expected["credentials"])

    def assert_index_rebuilt(self, extra=()):
        text, index = self.read_index()
        self.assertEqual(json.dumps(index, indent=2), text)
        self.assertEqual(index["version"], "2.0")
        self.assertEqual(sorted(index["credentials"]), sorted(self.ids + list(extra)))
        # rebuilt entries equal those Hive's own code wrote
        for cred_id, entry in self.fixture_index["credentials"].items():
            self.assertEqual(index["credentials"][cred_id], entry, cred_id)

    # Issue 12, item 14: an index of tiny values ("[0,0,...]") made `list`
    # parse it into ~75 times its size (32 MiB took 4 GB). Now an index
    # larger than 16 MiB, or denser than any index Hive writes, is rebuilt
    # from the files without being parsed.

    def peak_rss_of(self, *args):
        """Run hive-cred; (result, its peak resident set in bytes)."""
        p = subprocess.Popen([HIVE_CRED, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=self.env, cwd=self.tmp)
        out, err = p.stdout.read(), p.stderr.read()
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        p.stdout.close()
        p.stderr.close()
        return subprocess.CompletedProcess(p.args, p.returncode, out, err), usage.ru_maxrss * 1024

    def write_dense_index(self, size, element):
        # in pieces: a child's peak RSS counts the parent's pages at fork
        n = (size - 200) // (len(element) + 1)
        piece = ",".join([element] * 4096)
        with open(self.index_path, "w") as f:
            f.write('{"version": "2.0", "credentials": {"brave_search": {"tags": [%s' % element)
            for _ in range((n - 1) // 4096):
                f.write("," + piece)
            f.write("]}}}")
            return f.tell()

    def test_index_of_tiny_values_bounded(self):
        mib = 1024 * 1024
        for size in (32 * mib, 15 * mib):
            with self.subTest(size=size):
                n = self.write_dense_index(size, "0")
                r, rss = self.peak_rss_of("list")
                self.check(r, 0)
                self.assertEqual(r.stdout.decode().splitlines(), self.ids)
                # the text once, plus the sanitizers' and the program's own
                self.assertLess(rss, 2 * n + 96 * mib, "peak RSS %d MiB for a %d MiB index"
                                % (rss // mib, n // mib))
                self.assert_index_rebuilt()

    def test_real_index_of_10000_parsed(self):
        # a store Hive wrote, 10,000 credentials: its index (3.6 MB) is
        # read as it is, neither refused nor rebuilt
        shutil.rmtree(self.home)
        subprocess.run([sys.executable, str(REPO / "bench" / "make_store.py"), self.home, "10000"],
                       check=True, timeout=120)
        os.utime(self.index_path, (1, 1))
        text, index = self.read_index()
        self.assertGreater(len(text), 3 * 1024 * 1024)
        r, rss = self.peak_rss_of("list")
        self.check(r, 0)
        self.assertEqual(r.stdout.decode().splitlines(), bsorted(index["credentials"]))
        self.assertEqual(os.stat(self.index_path).st_mtime, 1, "a sound index was rewritten")
        self.assertEqual(self.read_index()[0], text)

    def test_index_missing(self):
        os.remove(self.index_path)
        self.assertEqual(self.list_ids(), self.ids)
        self.assertIn("brave_search/work", self.list_ids())
        self.assertTrue(os.path.exists(self.index_path), "index not rewritten")
        self.assert_index_rebuilt()

    def test_metadata_dir_missing(self):
        shutil.rmtree(self.mdir)
        self.assertEqual(self.list_ids(), self.ids)
        self.add("after", {"api_key": "x"})
        self.assert_index_rebuilt(["after"])

    def test_index_garbage(self):
        for garbage in (b"\x00garbage{{{", b"", b"[]", b'{"credentials": []}', b'{"version": "2.0"}',
                        b'{"credentials": {"brave_search": 5}, "version": "2.0"}'):
            with self.subTest(garbage=garbage):
                with open(self.index_path, "wb") as f:
                    f.write(garbage)
                self.assertEqual(self.list_ids(), self.ids)
                self.assert_index_rebuilt()

    def test_index_stale_and_incomplete(self):
        text, index = self.read_index()
        del index["credentials"]["brave_search/work"]
        index["credentials"]["ghost"] = dict(index["credentials"]["brave_search"])
        with open(self.index_path, "w") as f:
            f.write(json.dumps(index, indent=2))
        self.assertEqual(self.list_ids(), self.ids)
        self.check(self.run_cred("exists", "ghost"), 1)
        self.add("after", {"api_key": "x"})
        self.assert_index_rebuilt(["after"])

    def test_index_schema_1_0(self):
        old = {"credentials": {"brave_search": {"updated_at": "2026-03-01T12:00:00+00:00", "type": "api_key"},
                               "github_oauth": {"updated_at": "2026-03-01T12:00:00+00:00", "type": "oauth2"}},
               "version": "1.0", "last_modified": "2026-03-01T12:00:00+00:00"}
        with open(self.index_path, "w") as f:
            f.write(json.dumps(old, indent=2))
        self.assertEqual(self.list_ids(), self.ids)
        self.assert_get("brave_search/work", None, "BSA-work-account-key")
        self.add("newcomer", {"api_key": "n"})
        self.assertEqual(self.list_ids(), bsorted(self.ids + ["newcomer"]))
        self.assert_index_rebuilt(["newcomer"])

    def test_list_without_key_uses_index(self):
        os.remove(self.key_path)
        self.assertEqual(self.list_ids(), self.ids)


# --- 7. init and keygen ---------------------------------------------------

class TestInitKeygen(HiveCredTest):

    def test_init_twice(self):
        r1 = self.ok("init")
        with open(self.key_path) as f:
            key = f.read()
        self.assertEqual(len(key), 44)
        Fernet(key.encode())
        out = r1.stdout.decode()
        lines = out.splitlines()
        self.assertEqual(lines[0], "store: " + self.store)
        self.assertTrue(lines[1].startswith("key:"), out)
        self.assertIn(self.key_path, lines[1])
        self.assertEqual(len(lines), 2, out)
        self.assert_secret_free(r1, key, key[:20])
        self.assertEqual(mode(self.key_path), 0o600)
        for d in (self.store, self.cdir, self.mdir, os.path.dirname(self.key_path)):
            self.assertTrue(os.path.isdir(d), d)
            self.assertEqual(mode(d), 0o700, d)
        text, index = self.read_index()
        self.assertEqual(index["version"], "2.0")
        self.assertEqual(index["credentials"], {})
        self.assertEqual(json.dumps(index, indent=2), text)

        r2 = self.ok("init")
        self.assert_secret_free(r2, key, key[:20])
        lines2 = r2.stdout.decode().splitlines()
        self.assertEqual(lines2[0], "store: " + self.store)
        self.assertTrue(lines2[1].startswith("key:"))
        with open(self.key_path) as f:
            self.assertEqual(f.read(), key)
        self.assertEqual(os.listdir(os.path.dirname(self.key_path)), ["credential_key"])
        # the store is usable
        self.add("first", {"api_key": "v1"})
        self.assert_get("first", None, "v1")
        self.ok("init")
        self.assert_get("first", None, "v1")

    def test_init_with_env_key(self):
        key = Fernet.generate_key().decode()
        r = self.ok("init", extra_env={"HIVE_CREDENTIAL_KEY": key})
        self.assert_secret_free(r, key, key[:20])
        self.assertIn(b"HIVE_CREDENTIAL_KEY", r.stdout)
        self.assertFalse(os.path.exists(self.key_path))
        self.assertTrue(os.path.isdir(self.cdir))
        self.add("e", {"api_key": "env"}, extra_env={"HIVE_CREDENTIAL_KEY": key})
        self.assertEqual(json.loads(self.decrypt_file(self.enc_path("e"), key=key))["id"], "e")

    def test_init_on_existing_fixture(self):
        self.copy_fixture()
        before = self.tree(self.tmp)
        r = self.ok("init")
        self.assert_secret_free(r, self.key)
        after = self.tree(self.tmp)
        changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
        self.assertLessEqual(changed, {os.path.join("credentials", ".lock")})

    def test_default_home(self):
        # no HIVE_HOME: ~/.hive
        env = dict(self.env)
        del env["HIVE_HOME"]
        env["HOME"] = self.tmp
        r = self.ok("init", env=env)
        self.assertEqual(r.stdout.decode().splitlines()[0],
                         "store: " + os.path.join(self.tmp, ".hive", "credentials"))
        self.assertTrue(os.path.isfile(os.path.join(self.tmp, ".hive", "secrets", "credential_key")))
        self.add("h", {"api_key": "home"}, env=env)
        self.assert_get("h", None, "home", env=env)

    def test_relative_store(self):
        r = self.ok("init", "--store", "rel/creds")
        self.assertEqual(r.stdout.decode().splitlines()[0],
                         "store: " + os.path.join(self.tmp, "rel", "creds"))
        self.add("r", {"api_key": "rel"}, "--store", "rel/creds")
        r = self.ok("get", "r", "--store", "rel/creds/")
        self.assertEqual(r.stdout, b"rel\n")
        _, index = self.read_index_at(os.path.join(self.tmp, "rel", "creds"))
        self.assertEqual(index["store_path"], os.path.join(self.tmp, "rel", "creds"))

    def test_init_store_option(self):
        store = os.path.join(self.tmp, "x", "creds")
        r = self.ok("init", "--store", store)
        self.assertEqual(r.stdout.decode().splitlines()[0], "store: " + store)
        self.assertTrue(os.path.isfile(os.path.join(self.tmp, "x", "secrets", "credential_key")))
        self.assertFalse(os.path.exists(self.key_path))

    def test_keygen(self):
        keys = set()
        for _ in range(3):
            r = self.ok("keygen")
            self.assertEqual(len(r.stdout), 45)
            self.assertTrue(r.stdout.endswith(b"\n"))
            self.assertEqual(r.stderr, b"")
            key = r.stdout[:-1]
            self.assertRegex(key, rb"^[A-Za-z0-9_-]{43}=$")
            self.assertEqual(len(base64.urlsafe_b64decode(key)), 32)
            f = Fernet(key)
            self.assertEqual(f.decrypt(f.encrypt(b"x")), b"x")
            keys.add(key)
        self.assertEqual(len(keys), 3)
        self.assertEqual(os.listdir(self.tmp), [])  # keygen writes nothing


# --- 8. two ids, one file --------------------------------------------------

class TestCollision(HiveCredTest):

    def setUp(self):
        super().setUp()
        self.init_store()

    def test_collisions(self):
        pairs = [("a/b", "a_b"), ("c_d", "c/d"), ("e\\f", "e/f"), ("g..h", "g_h")]
        for first, second in pairs:
            with self.subTest(first=first, second=second):
                self.add(first, {"api_key": "first-" + first})
                r = self.add(second, {"api_key": "second-secret"}, code=6)
                self.assertTrue(r.stderr.startswith(b"hive-cred: error: "))
                self.assert_secret_free(r, "second-secret", "first-" + first)
                self.assert_get(first, None, "first-" + first)
                r = self.get(second)
                self.assert_error(r, 3, "Credential '%s' not found in store %s" % (second, self.store), exact=True)
                self.check(self.run_cred("exists", second), 1)
                r = self.run_cred("delete", second)
                self.check(r, 3)
                self.assert_get(first, None, "first-" + first)
        self.assertEqual(self.list_ids(), bsorted(p[0] for p in pairs))

    def test_collision_without_index(self):
        self.add("a/b", {"api_key": "kept"})
        os.remove(self.index_path)
        self.add("a_b", {"api_key": "other"}, code=6)
        self.assert_get("a/b", None, "kept")

    # a_b.enc holds "a/b". With no index (or a damaged one) to say so, "a_b"
    # must still not exist, and deleting "a_b" must not delete "a/b".

    def damage_index(self, how):
        if how == "missing":
            os.remove(self.index_path)
        else:
            with open(self.index_path, "w") as f:
                f.write("{garbage")

    def test_exists_shadow_id_without_index(self):
        for how in ("missing", "garbage"):
            with self.subTest(index=how):
                self.add("a/b", {"api_key": "kept-" + how})
                self.damage_index(how)
                self.check(self.run_cred("exists", "a_b"), 1, "exists a_b")
                self.check(self.run_cred("exists", "a/b"), 0, "exists a/b")

    def test_delete_shadow_id_without_index(self):
        for how in ("missing", "garbage"):
            with self.subTest(index=how):
                self.add("a/b", {"api_key": "kept-" + how})
                self.damage_index(how)
                r = self.run_cred("delete", "a_b")
                self.assert_error(r, 3, "Credential 'a_b' not found in store " + self.store, exact=True)
                self.assertTrue(os.path.exists(self.enc_path("a/b")), "delete a_b removed a/b")
                self.assert_get("a/b", None, "kept-" + how)

    # Issue 12, item 4: an index entry left behind by a file removed by hand
    # ("a/b" listed, its file a_b.enc now holding "a_b") must not let "a/b"
    # delete or overwrite "a_b": the id inside the file decides.

    def stale_entry_store(self, how):
        if how == "by hand":
            self.add("a/b", {"api_key": "gone"})
            os.remove(self.enc_path("a/b"))
            self.add("a_b", {"api_key": "kept"})
        else:
            # an index that lists "a/b" for a_b.enc, e.g. written by a tool
            # that does not check: both entries, the stale one first
            self.add("a_b", {"api_key": "kept"})
            text, index = self.read_index()
            entry = index["credentials"]["a_b"]
            index["credentials"] = {"a/b": entry, "a_b": entry}
            with open(self.index_path, "w") as f:
                f.write(json.dumps(index, indent=2))

    def assert_only_a_b(self):
        """a_b intact, the only entry of the repaired index; then clean."""
        self.assert_get("a_b", None, "kept")
        text, index = self.read_index()
        self.assertEqual(list(index["credentials"]), ["a_b"])
        self.assertEqual(self.list_ids(), ["a_b"])
        os.remove(self.enc_path("a_b"))
        os.remove(self.index_path)

    def test_stale_entry_cannot_delete_other_id(self):
        for how in ("by hand", "stale index"):
            with self.subTest(how=how):
                self.stale_entry_store(how)
                self.check(self.run_cred("exists", "a/b"), 1, "exists a/b")
                r = self.run_cred("delete", "a/b")
                self.assert_error(r, 3, "Credential 'a/b' not found in store " + self.store, exact=True)
                self.assert_only_a_b()

    def test_stale_entry_cannot_overwrite_other_id(self):
        for how in ("by hand", "stale index"):
            with self.subTest(how=how):
                self.stale_entry_store(how)
                r = self.add("a/b", {"api_key": "intruder-secret"}, code=6)
                self.assertIn(b"which holds credential 'a_b'", r.stderr)
                self.assert_secret_free(r, "intruder-secret", "kept")
                self.assert_only_a_b()

    def test_stale_entry_without_key(self):
        # no key to read the file with: an index giving one file to two ids
        # cannot say whose it is, so neither is deleted
        self.stale_entry_store("stale index")
        os.remove(self.key_path)
        for cred_id in ("a/b", "a_b"):
            r = self.run_cred("delete", cred_id)
            self.assert_error(r, 3, "Credential '%s' not found in store %s" % (cred_id, self.store), exact=True)
            self.assertTrue(os.path.exists(self.enc_path("a_b")))

    def test_list_drops_second_entry_for_one_file(self):
        self.stale_entry_store("stale index")
        self.assertEqual(self.list_ids(), ["a_b"])
        text, index = self.read_index()
        self.assertEqual(list(index["credentials"]), ["a_b"])


# --- 9. delete --------------------------------------------------------------

class TestDelete(HiveCredTest):

    def test_delete(self):
        self.copy_fixture()
        for cred_id in ("brave_search", "brave_search/work"):
            with self.subTest(id=cred_id):
                r = self.ok("delete", cred_id)
                self.assertEqual(r.stderr, b"")
                self.assertFalse(os.path.exists(self.enc_path(cred_id)))
                r = self.get(cred_id)
                self.assert_error(r, 3, "Credential '%s' not found in store %s" % (cred_id, self.store), exact=True)
                r = self.run_cred("delete", cred_id)
                self.assert_error(r, 3, "Credential '%s' not found in store %s" % (cred_id, self.store), exact=True)
                self.check(self.run_cred("exists", cred_id), 1)
                self.assertNotIn(cred_id, self.list_ids())
                text, index = self.read_index()
                self.assertNotIn(cred_id, index["credentials"])
                self.assertEqual(json.dumps(index, indent=2), text)
        self.assertEqual(len(self.list_ids()), 6)
        self.assert_get("github_oauth", None, "gho_testAccessToken0123456789")

    def test_delete_missing(self):
        self.init_store()
        r = self.run_cred("delete", "never")
        self.assert_error(r, 3, "Credential 'never' not found in store " + self.store, exact=True)

    def test_delete_without_key(self):
        self.copy_fixture()
        os.remove(self.key_path)
        self.ok("delete", "anthropic")
        self.assertNotIn("anthropic", self.list_ids())



# --- a full disk ------------------------------------------------------------

class TestFullDisk(HiveCredTest):
    """Issue 12, item 15: with the disk full after the credential's file
    went into place, the index could not be written and hive-cred said the
    save failed. Files larger than a limit fail to write (RLIMIT_FSIZE,
    SIGXFSZ ignored: EFBIG), as on a full disk: the credential (under 1 KiB)
    fits, the index of 30 credentials (about 12 KiB) does not."""

    LIMIT = 4096

    def setUp(self):
        super().setUp()
        self.init_store()
        for i in range(30):
            self.add("c%02d" % i, {"api_key": "value-%02d" % i})
        self.assertGreater(os.path.getsize(self.index_path), 2 * self.LIMIT)

    def run_limited(self, *args, stdin=b""):
        import resource
        import signal

        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (self.LIMIT, self.LIMIT))
        return subprocess.run([HIVE_CRED, *args], input=stdin, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=self.env, timeout=TIMEOUT, cwd=self.tmp,
                              preexec_fn=limit)

    def assert_saved_warning(self, r, what, cred_id):
        self.check(r, 0)
        err = r.stderr.decode()
        self.assertTrue(err.startswith("hive-cred: warning: credential '%s' %s, but the index %s was not "
                                       "updated: " % (cred_id, what, self.index_path)), err)
        self.assertIn("File too large", err)
        self.assertEqual([n for n in os.listdir(self.mdir) if n.startswith(".tmp-")], [])

    def test_add_saved_index_not_updated(self):
        before = self.read_index()[0]
        r = self.run_limited("add", "new_one", stdin=b"api_key=new-secret-value\n")
        self.assert_saved_warning(r, "saved", "new_one")
        self.assert_secret_free(r, "new-secret-value")
        self.assertEqual(self.read_index()[0], before)
        self.assert_get("new_one", None, "new-secret-value")
        # the index is a cache: list finds the file and repairs it
        self.assertIn("new_one", self.list_ids())
        self.assertIn("new_one", self.read_index()[1]["credentials"])

    def test_replace_saved_index_not_updated(self):
        r = self.run_limited("add", "c03", stdin=b"api_key=replaced\n")
        self.assert_saved_warning(r, "saved", "c03")
        self.assert_get("c03", None, "replaced")

    def test_delete_done_index_not_updated(self):
        r = self.run_limited("delete", "c05")
        self.assert_saved_warning(r, "deleted", "c05")
        self.assertFalse(os.path.exists(self.enc_path("c05")))
        self.assertNotIn("c05", self.list_ids())
        self.assertNotIn("c05", self.read_index()[1]["credentials"])

    def test_credential_not_saved(self):
        # a credential too large for the disk: nothing changes, exit 6
        big = "x" * (2 * self.LIMIT)
        r = self.run_limited("add", "c07", stdin=("api_key=%s\n" % big).encode())
        self.check(r, 6)
        err = r.stderr.decode()
        self.assertTrue(err.startswith("hive-cred: error: cannot save credential 'c07': "), err)
        self.assertIn("File too large", err)
        self.assert_get("c07", None, "value-07")
        self.assertEqual([n for n in os.listdir(self.cdir) if n.startswith(".tmp-")], [])

# --- 10. show ---------------------------------------------------------------

class TestShow(HiveCredTest):

    def setUp(self):
        super().setUp()
        self.copy_fixture()

    def test_show_masked(self):
        for c in self.expected["credentials"]:
            with self.subTest(id=c["id"]):
                r = self.ok("show", c["id"])
                out = r.stdout.decode("utf-8")
                self.assertIn(c["id"], out)
                for name, value in c["keys"].items():
                    self.assertIn(name, out)
                    if name.startswith("_"):
                        self.assertIn(value, out)
                    else:
                        self.assertNotIn(value, out)
                        self.assertNotIn(value, r.stderr.decode("utf-8", "replace"))
                self.assertIn("********", out)

    def test_show_reveal(self):
        for c in self.expected["credentials"]:
            with self.subTest(id=c["id"]):
                for args in (["show", c["id"], "--reveal"], ["show", "--reveal", c["id"]]):
                    out = self.ok(*args).stdout.decode("utf-8")
                    for value in c["keys"].values():
                        self.assertIn(value, out)

    def test_show_json(self):
        for c in self.expected["credentials"]:
            with self.subTest(id=c["id"]):
                want = json.loads(c["plaintext_json"])
                r = self.ok("show", c["id"], "--json")
                got = json.loads(r.stdout)
                masked = json.loads(c["plaintext_json"])
                for name, entry in masked["keys"].items():
                    if not name.startswith("_"):
                        entry["value"] = None
                self.assertEqual(got, masked)
                self.assertEqual(list(got), list(want))
                for name, value in c["keys"].items():
                    if not name.startswith("_"):
                        self.assertNotIn(json.dumps(value).encode(), r.stdout)
                        self.assertNotIn(value.encode("utf-8"), r.stdout)
                r = self.ok("show", "--json", "--reveal", c["id"])
                self.assertEqual(json.loads(r.stdout), want)

    def test_show_missing(self):
        r = self.run_cred("show", "nope")
        self.assert_error(r, 3, "Credential 'nope' not found in store %s" % self.store, exact=True)
        self.assertEqual(r.stdout, b"")

# --- set, unset, --from-file, and what re-adding keeps -----------------------

PEM = ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
       "BKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n")


class TestSingleKeys(HiveCredTest):

    def setUp(self):
        super().setUp()
        self.init_store()

    def doc(self, cred_id):
        return json.loads(self.decrypt_file(self.enc_path(cred_id)))

    def test_add_multiline_was_refused(self):
        """The reason for set: NAME=VALUE lines cannot hold a PEM."""
        r = self.add("tls", "key=" + PEM, code=2)
        self.assertIn("stdin line 2 is not NAME=VALUE", r.stderr.decode())

    def test_set_multiline_keeps_the_rest(self):
        self.add("tls", {"cert_id": "abc", "token": "t0"}, "--type", "custom", "-d", "TLS for api",
                 "--tag", "prod", "--provider-id", "my_idp", "--auto-refresh",
                 "--expires", "token=2030-01-01T00:00:00Z")
        before = self.doc("tls")
        r = self.ok("set", "tls", "private_key", stdin=PEM)
        self.assertEqual(r.stdout + r.stderr, b"")
        after = self.doc("tls")
        self.assertEqual(after["keys"]["private_key"]["value"], PEM)   # newlines and all
        r = self.ok("get", "tls", "private_key")
        self.assertEqual(r.stdout, (PEM + "\n").encode())
        for field in ("credential_type", "description", "tags", "provider_id", "auto_refresh", "created_at"):
            self.assertEqual(after[field], before[field], field)
        self.assertEqual(after["keys"]["token"], before["keys"]["token"])   # expiry kept
        self.assertEqual(after["keys"]["cert_id"], before["keys"]["cert_id"])
        self.assertGreater(after["updated_at"], before["updated_at"])
        _, index = self.read_index()
        self.assertEqual(index["credentials"]["tls"]["key_names"], ["cert_id", "private_key", "token"])
        # replacing the key: value verbatim (no newline added or dropped)
        self.ok("set", "tls", "token", "--expires", "token=+1h", stdin="t1")
        self.assertEqual(self.doc("tls")["keys"]["token"]["value"], "t1")
        self.assertIsNotNone(self.doc("tls")["keys"]["token"]["expires_at"])

    def test_set_json_document_and_new_credential(self):
        sa = json.dumps({"type": "service_account", "private_key": PEM}, indent=2) + "\n"
        self.ok("set", "gcp", "service_account_json", "--type", "custom", stdin=sa)
        doc = self.doc("gcp")
        self.assertEqual(doc["credential_type"], "custom")
        self.assertEqual(json.loads(doc["keys"]["service_account_json"]["value"]), json.loads(sa))
        # --type naming another type for an existing credential: refused
        r = self.run_cred("set", "gcp", "x", "--type", "oauth2", stdin="v")
        self.assert_error(r, 2, "credential 'gcp' is of type custom")

    def test_set_bad_input(self):
        self.add("svc", {"api_key": "a"})
        before = self.doc("svc")
        for stdin, msg in ((b"", "no value on stdin"), (b"a\0b", "NUL byte"), (b"\xff\xfe", "UTF-8")):
            with self.subTest(stdin=stdin):
                r = self.run_cred("set", "svc", "k", stdin=stdin)
                self.check(r, 2)
                self.assertIn(msg, r.stderr.decode())
        self.assert_error(self.run_cred("set", "svc", "bad name", stdin="v"), 2, "is not a key name")
        self.assert_error(self.run_cred("set", "svc", stdin="v"), 2, "'set' takes ID and KEY")
        self.assertEqual(self.doc("svc"), before)

    def test_unset(self):
        self.add("svc", {"api_key": "a", "extra": "b"}, "-d", "kept")
        self.ok("unset", "svc", "extra")
        doc = self.doc("svc")
        self.assertEqual(list(doc["keys"]), ["api_key"])
        self.assertEqual(doc["description"], "kept")
        r = self.run_cred("unset", "svc", "extra")
        self.assert_error(r, 3, "Key 'extra' not found in credential 'svc'", exact=True)
        self.assertIn("hint: credential 'svc' has: api_key", self.error_lines(r))
        r = self.run_cred("unset", "nope", "k")
        self.assert_error(r, 3, "Credential 'nope' not found")
        self.assertFalse(os.path.exists(self.enc_path("nope")))

    def test_add_from_file(self):
        pem = os.path.join(self.tmp, "key.pem")
        with open(pem, "w") as f:
            f.write(PEM)
        self.check(self.run_cred("add", "tls", "--from-file", "private_key=" + pem,
                                 "--from-file", "cert=" + pem, "--type", "custom",
                                 stdin="ignored=1\n"), 0)
        doc = self.doc("tls")
        self.assertEqual(list(doc["keys"]), ["private_key", "cert"])
        self.assertEqual(doc["keys"]["private_key"]["value"], PEM)
        r = self.run_cred("add", "tls2", "--from-file", "k=" + os.path.join(self.tmp, "missing"))
        self.assert_error(r, 3, "--from-file")
        for bad in ("nokey", "=x", "k="):
            with self.subTest(bad=bad):
                self.assert_error(self.run_cred("add", "tls3", "--from-file", bad), 2, "KEY=PATH")
        self.assert_error(self.run_cred("get", "tls", "--from-file", "k=" + pem), 2, "applies to 'add' only")
        self.assertFalse(os.path.exists(self.enc_path("tls2")))

    def test_readd_keeps_metadata_not_given(self):
        """Re-adding silently dropped description and tags: options not
        given keep their old values; given ones replace them."""
        self.add("svc", {"access_token": "a"}, "--type", "oauth2", "-d", "GitHub", "--tag", "ci",
                 "--tag", "prod", "--provider-id", "my_idp", "--auto-refresh")
        first = self.doc("svc")
        self.add("svc", {"access_token": "b"})
        doc = self.doc("svc")
        for field in ("credential_type", "description", "tags", "provider_id", "auto_refresh", "created_at"):
            self.assertEqual(doc[field], first[field], field)
        self.assertEqual(doc["keys"]["access_token"]["value"], "b")
        self.add("svc", {"access_token": "c"}, "-d", "new", "--tag", "only", "--no-auto-refresh")
        doc = self.doc("svc")
        self.assertEqual((doc["description"], doc["tags"], doc["auto_refresh"], doc["provider_id"]),
                         ("new", ["only"], False, "my_idp"))
        _, index = self.read_index()
        self.assertEqual(index["credentials"]["svc"]["tags"], ["only"])


# --- which store, and what is wrong with it ----------------------------------

class TestStoreMessages(HiveCredTest):

    def test_list_of_a_store_that_does_not_exist(self):
        missing = os.path.join(self.tmp, "nonexistent")
        r = self.run_cred("--store", missing, "list")
        self.assert_error(r, 6, "store %s does not exist" % missing, exact=True)
        self.assertIn("hint: 'hive-cred init' creates it; check --store and HIVE_HOME", self.error_lines(r))
        self.assertEqual(r.stdout, b"")
        r = self.run_cred("--store", missing, "get", "x")
        self.assert_error(r, 3, "Credential 'x' not found in store %s" % missing, exact=True)
        self.assertTrue(any("that store does not exist" in l for l in self.error_lines(r)))
        self.assertFalse(os.path.exists(missing))

    def test_malformed_etcd_url(self):
        for spec in ("etcd:/bad", "etcd:bad", "etcds:/x", "etcd:"):
            with self.subTest(spec=spec):
                r = self.run_cred("--store", spec, "list")
                self.assert_error(r, 2, "malformed etcd URL '%s'" % spec)
                self.assertFalse(os.path.exists(os.path.join(self.tmp, spec.split(":")[0] + ":")))

    def test_copy_into_a_store_with_no_key(self):
        self.init_store()
        for i in range(3):
            self.add("c%d" % i, {"api_key": "v%d" % i})
        dst = os.path.join(self.tmp, "dst", "credentials")
        r = self.run_cred("copy", self.store, dst)
        self.assert_error(r, 4, "No encryption key")
        self.assertEqual(len([l for l in self.error_lines(r) if "error" in l]), 1, r.stderr)
        self.assertFalse(os.path.exists(os.path.join(dst, "credentials", "c0.enc")))


class TestDoctor(HiveCredTest):

    def setUp(self):
        super().setUp()
        self.init_store()
        self.add("svc", {"api_key": "doctor-secret-1"})

    def doctor(self, *args, code=0, **kw):
        r = self.check(self.run_cred("doctor", *args, **kw), code)
        self.assert_secret_free(r, "doctor-secret-1", self.key)
        return r.stdout.decode()

    def test_healthy(self):
        out = self.doctor()
        self.assertEqual(out.splitlines(), [
            "store    %s (files)" % self.store, "ok       permissions", "key      %s" % self.key_path,
            "ok       1 credential(s) read", "no problems found"])
        out = self.doctor(extra_env={"HIVE_CREDENTIAL_KEY": self.key})
        self.assertIn("key      from HIVE_CREDENTIAL_KEY (the key file beside the store is not used)", out)

    def test_store_missing(self):
        missing = os.path.join(self.tmp, "nowhere")
        out = self.doctor("--store", missing, code=1)
        self.assertIn("problem  the store does not exist", out)
        self.assertIn("fix: hive-cred --store %s init" % missing, out)

    def test_index_drift_fixed(self):
        self.add("other", {"api_key": "x"})
        os.remove(self.enc_path("other"))
        # the index is a cache that every list rebuilds: doctor rebuilds it and says so
        out = self.doctor()
        self.assertIn("fixed    the index listed 1 id(s) with no file, and 0 file(s) were not in it: "
                      "rebuilt from the files", out)
        self.assertEqual(list(self.read_index()[1]["credentials"]), ["svc"])
        os.remove(self.index_path)
        out = self.doctor(code=0)
        self.assertIn("fixed    index %s was missing: rebuilt from the files (it is a cache)" % self.index_path, out)
        self.assertEqual(list(self.read_index()[1]["credentials"]), ["svc"])
        self.assertIn("no problems found", self.doctor())

    def test_unreadable_file_and_pending_rotation(self):
        self.write_token("svc", b"{}", key=Fernet.generate_key().decode())
        with open(self.key_path + ".new", "w") as f:
            f.write(Fernet.generate_key().decode())
        os.chmod(self.key_path + ".new", 0o600)
        out = self.doctor(code=1)
        self.assertIn("problem  credential svc: Failed to decrypt credential 'svc'", out)
        self.assertIn("fix: a file no key opens", out)
        self.assertIn("problem  an interrupted key rotation is pending (%s.new)" % self.key_path, out)
        self.assertIn("fix: env -u HIVE_NEW_CREDENTIAL_KEY hive-cred rotate-key finishes it", out)

    def test_tokens_and_usage(self):
        self.add("soon", {"access_token": "t"}, "--type", "bearer_token", "--expires", "access_token=+2h")
        out = self.doctor()
        self.assertRegex(out, r"warning  credential soon: key access_token expires in 1[12]\d min and will not "
                              r"be refreshed \(auto_refresh is off\)")
        self.add("gone", {"access_token": "t"}, "--type", "bearer_token", "--expires", "access_token=-1h")
        self.ok("usage", "add", "tool", "--key", "api_key", "--env", "T={{missing_cred.api_key}}")
        out = self.doctor(code=1)
        self.assertIn("problem  credential gone: Key 'access_token' of credential 'gone' expired", out)
        self.assertIn("problem  usage tool: Credential 'tool' not found", out)
        self.assertEqual(out.splitlines()[-1], "2 problem(s)")

    def test_fix_only_for_doctor(self):
        self.assert_error(self.run_cred("list", "--fix"), 2, "option --fix applies to 'doctor' only")



def main():
    hivetest.main(binaries=["hive-cred"], fixture=True)


if __name__ == "__main__":
    main()
