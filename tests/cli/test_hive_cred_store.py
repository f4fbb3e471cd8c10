#!/usr/bin/env python3
"""End-to-end tests of hive-cred's store-level commands: resolve, validate,
accounts, usage and refresh.

Run:  python3 tests/cli/test_hive_cred_store.py [unittest options]

Environment:
  HIVE_CRED     path of the hive-cred binary
                (default: <repo>/build/launcher/hive-cred)
  HIVE_FIXTURE  path of the fixture Hive home written by Python Hive
                (default: <repo>/tests/data/fixtures/hive-home)

Standard library only, plus `cryptography` (for Fernet), as the Python Hive
framework itself uses. The fixture's tokens expired on 2026-03-01 and some
of them cannot be refreshed: validate must say so.
"""

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lib"))
import hivetest  # noqa: E402  (tests/lib/hivetest.py)

HIVE_CRED = hivetest.HIVE_CRED
HIVE_RUN = hivetest.HIVE_RUN
FIXTURE = hivetest.FIXTURE

TIMEOUT = hivetest.scaled(30)

GOOGLE_ID = "Z29vZ2xlOlRpbW90aHk6MTYwNjc6MTM2ODQ"
BRAVE_KEY = "BSA-test-0123456789abcdef"
BEARER_MSG = ("Bearer token 'internal_jwt' cannot be refreshed. "
              "Obtain a new token and save it to the credential store.")
# the fields of a usage spec as `usage show` prints them, with their defaults
SPEC_DEFAULTS = {"required_keys": [], "required_scopes": [], "headers": {}, "query_params": {},
                 "body_fields": {}, "env": {}, "required": True, "description": "", "help_url": ""}


load_expected = hivetest.load_expected


def stem(cred_id):
    return cred_id.replace("/", "_").replace("\\", "_").replace("..", "_")


def spec(cred_id, **fields):
    out = {"credential_id": cred_id}
    out.update(json.loads(json.dumps(SPEC_DEFAULTS)))
    out.update(fields)
    return out


class HiveCredTest(unittest.TestCase):
    """One temporary HIVE_HOME per test; HIVE_CREDENTIAL_KEY removed."""

    maxDiff = None

    def setUp(self):
        self.tmp = hivetest.temp_dir(self, "hive-cred-store-test-")
        self.home = self.tmp
        self.store = os.path.join(self.home, "credentials")
        self.cdir = os.path.join(self.store, "credentials")
        self.usage_path = os.path.join(self.store, "usage.json")
        self.key_path = os.path.join(self.home, "secrets", "credential_key")
        self.env = hivetest.clean_env(self.home)
        self.expected = None

    # --- helpers -------------------------------------------------------

    def run_cred(self, *args, stdin=b""):
        return hivetest.run([HIVE_CRED, *args], self.env, stdin=stdin, timeout=TIMEOUT, cwd=self.tmp)

    def check(self, r, code, what=""):
        what = what or " ".join(map(str, r.args[1:]))
        # a sanitizer report (leak, UB) is a failure whatever the exit status
        for marker in (b"Sanitizer", b"runtime error:"):
            self.assertNotIn(marker, r.stderr, "%s: sanitizer report\nstderr: %s"
                             % (what, r.stderr.decode("utf-8", "replace")))
        self.assertEqual(r.returncode, code,
                         "%s: exit %d, expected %d\nstdout: %r\nstderr: %r"
                         % (what, r.returncode, code, r.stdout, r.stderr))
        return r

    def ok(self, *args, **kw):
        return self.check(self.run_cred(*args, **kw), 0)

    def add(self, cred_id, values, *opts, code=0):
        if isinstance(values, dict):
            values = "".join("%s=%s\n" % kv for kv in values.items())
        return self.check(self.run_cred("add", cred_id, *opts, stdin=values), code, "add %r" % cred_id)

    def error_lines(self, r):
        return r.stderr.decode("utf-8", "replace").splitlines()

    def out_lines(self, r):
        return r.stdout.decode("utf-8").splitlines()

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

    def assert_usage_error(self, r):
        self.assert_error(r, 2, "")
        self.assertEqual(r.stdout, b"")

    def assert_secret_free(self, r, *secrets):
        for s in secrets:
            b = s.encode("utf-8")
            self.assertNotIn(b, r.stderr, "secret leaked to stderr")
            self.assertNotIn(b, r.stdout, "secret leaked to stdout")

    def fixture_secrets(self):
        return [v for c in self.expected["credentials"] for k, v in c["keys"].items()
                if not k.startswith("_") and k != "scope"]

    def copy_fixture(self):
        self.expected = hivetest.copy_fixture(self.home)
        self.key = self.expected["key"]
        return self.expected

    def init_store(self):
        self.ok("init")
        with open(self.key_path) as f:
            self.key = f.read().strip()
        return self.key

    def enc_path(self, cred_id):
        return os.path.join(self.cdir, stem(cred_id) + ".enc")

    def read_bytes(self, path):
        with open(path, "rb") as f:
            return f.read()

    def decrypt(self, cred_id):
        token = self.read_bytes(self.enc_path(cred_id))
        return json.loads(Fernet(self.key.encode()).decrypt(token).decode("utf-8"))

    def write_usage(self, text):
        os.makedirs(self.store, exist_ok=True)
        with open(self.usage_path, "w", encoding="utf-8") as f:
            f.write(text)

    def read_usage(self):
        with open(self.usage_path, encoding="utf-8") as f:
            text = f.read()
        return text, json.loads(text)

    def resolve(self, template):
        return self.run_cred("resolve", "--", template)

    def assert_resolves(self, template, rendered):
        r = self.check(self.resolve(template), 0, "resolve %r" % template)
        self.assertEqual(r.stdout, (rendered + "\n").encode("utf-8"), "resolve %r" % template)
        self.assertEqual(r.stderr, b"", "resolve %r" % template)


# --- resolve ---------------------------------------------------------------

class TestResolve(HiveCredTest):

    def setUp(self):
        super().setUp()
        self.copy_fixture()

    def test_default_key(self):
        for c in self.expected["credentials"]:
            if c["id"] in (GOOGLE_ID, "github_oauth") or "/" in c["id"]:
                continue   # expired and auto-refreshed (warns), or not a template id
            with self.subTest(id=c["id"]):
                self.assert_resolves("{{%s}}" % c["id"], c["default_key"])

    def test_named_keys(self):
        self.assert_resolves("{{brave_search.api_key}}", BRAVE_KEY)
        self.assert_resolves("{{smtp_login.username}}:{{smtp_login.password}}",
                             "alice@example.com:p@ss w\u00f6rd \u2713 \U0001f511")
        self.assert_resolves("Bearer {{internal_jwt.access_token}}", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.test")

    def test_surrounding_and_adjacent_text(self):
        self.assert_resolves("k={{brave_search}}&a={{anthropic.api_key}}{{aden_api_key}}!",
                             "k=%s&a=sk-ant-test-0123456789aden_test_key_0123456789!" % BRAVE_KEY)
        self.assert_resolves("{{brave_search}}{{brave_search}}", BRAVE_KEY * 2)

    def test_literal_text_kept(self):
        for text in ["no templates here", "", "{{ a }}", "{{a.b.c}}", "{{}}", "{{ brave_search }}",
                     "{{brave_search.api_key.x}}", "{{brave_search.}}", "{{.api_key}}",
                     "{{brave_search/}}", "{{brave_search", "brave_search}}", "{brave_search}",
                     "{{brave search}}", "{{a}b}}", "--looks-like-an-option"]:
            with self.subTest(text=text):
                self.assert_resolves(text, text)

    def test_literal_and_references_together(self):
        self.assert_resolves("{{ a }} {{brave_search}} {{a.b.c}} {{}}",
                             "{{ a }} %s {{a.b.c}} {{}}" % BRAVE_KEY)
        self.assert_resolves("{{{brave_search}}}", "{%s}" % BRAVE_KEY)
        self.assert_resolves("{{brave_search|{{brave_search.api_key}}}", "{{brave_search|%s}" % BRAVE_KEY)

    def test_values_not_rescanned(self):
        self.add("loop", {"api_key": "{{brave_search}}", "other": "{{loop.other}} {{nope}}"})
        self.assert_resolves("a{{loop}}b", "a{{brave_search}}b")
        self.assert_resolves("{{loop.other}}", "{{loop.other}} {{nope}}")
        self.assert_resolves("{{loop}}{{brave_search}}", "{{brave_search}}" + BRAVE_KEY)

    def test_missing_credential(self):
        for text in ["{{nope}}", "{{nope.api_key}}", "x {{brave_search}} {{nope}} y"]:
            with self.subTest(text=text):
                r = self.resolve(text)
                self.assert_error(r, 3, "Credential 'nope' not found in store " + self.store, exact=True)
                self.assertEqual(r.stdout, b"")   # nothing half-rendered
                self.assert_secret_free(r, BRAVE_KEY)

    def test_missing_key(self):
        r = self.resolve("{{brave_search.nokey}}")
        self.assert_error(r, 3, "Key 'nokey' not found in credential 'brave_search'", exact=True)
        self.assertEqual(r.stdout, b"")

    def test_expired_oauth_without_provider_warns_and_resolves(self):
        before = self.read_bytes(self.enc_path("github_oauth"))
        r = self.check(self.resolve("token {{github_oauth}}"), 0)
        self.assertEqual(r.stdout, b"token gho_testAccessToken0123456789\n")
        lines = self.error_lines(r)
        self.assertTrue(lines, "no warning on stderr")
        warnings = [l for l in lines if l.startswith("hive-cred: warning: ")]
        self.assertTrue(warnings, lines)
        self.assertIn("github_oauth", warnings[0])
        for line in lines:
            self.assertFalse(line.startswith("hive-cred: error: "), line)
        for secret in (b"gho_testAccessToken0123456789", b"ghr_testRefreshToken0123456789"):
            self.assertNotIn(secret, r.stderr)
        # nothing was refreshed, so nothing was written
        self.assertEqual(self.read_bytes(self.enc_path("github_oauth")), before)

    def test_expired_bearer_without_auto_refresh_resolves(self):
        # auto_refresh is off: the stored value, no refresh attempted
        self.assert_resolves("{{internal_jwt}}", "eyJhbGciOiJIUzI1NiJ9.e30.test")

    def test_operands(self):
        self.assert_usage_error(self.run_cred("resolve"))
        self.assert_usage_error(self.run_cred("resolve", "a", "b"))


# --- validate --------------------------------------------------------------

class TestValidate(HiveCredTest):

    def fixture_problems(self, r):
        self.check(r, 1)
        return self.out_lines(r) + self.error_lines(r)

    def lines_about(self, lines, cred_id):
        return [l for l in lines if "'%s'" % cred_id in l or " %s:" % cred_id in l]

    def test_fixture(self):
        self.copy_fixture()
        # With an Aden API key available (the fixture stores one), the
        # aden_sync provider can refresh the Google token, so it is not a
        # problem; without one it is.
        env_key = os.environ.pop("ADEN_API_KEY", None)
        r = self.run_cred("validate")
        self.assertFalse(self.lines_about(self.fixture_problems(r), GOOGLE_ID))
        self.assertEqual(self.run_cred("delete", "aden_api_key").returncode, 0)
        if env_key is not None:
            os.environ["ADEN_API_KEY"] = env_key
        r = self.run_cred("validate")
        lines = self.fixture_problems(r)
        jwt = self.lines_about(lines, "internal_jwt")
        self.assertTrue(jwt, lines)
        self.assertTrue(any(BEARER_MSG in l for l in jwt), jwt)
        gh = self.lines_about(lines, "github_oauth")
        self.assertTrue(gh, "expired github_oauth (no provider) not reported: %r" % lines)
        self.assertTrue(any("expired" in l for l in gh), gh)
        self.assertTrue(self.lines_about(lines, GOOGLE_ID), "expired aden-managed token not reported")
        for fine in ["brave_search", "brave_search/work", "anthropic", "aden_api_key", "smtp_login"]:
            self.assertEqual(self.lines_about(lines, fine), [], fine)
        self.assertFalse(any(l.startswith("ok:") for l in lines), lines)
        self.assert_secret_free(r, *self.fixture_secrets())

    def test_fixture_one_id(self):
        self.copy_fixture()
        r = self.run_cred("validate", "internal_jwt")
        lines = self.fixture_problems(r)
        self.assertTrue(any(BEARER_MSG in l for l in lines), lines)
        self.assertEqual(self.lines_about(lines, "github_oauth"), [])
        r = self.run_cred("validate", "github_oauth")
        self.assertTrue(self.lines_about(self.fixture_problems(r), "github_oauth"))
        r = self.ok("validate", "brave_search")
        self.assertTrue(r.stdout.startswith(b"ok:"), r.stdout)

    def test_missing_id(self):
        self.copy_fixture()
        r = self.check(self.run_cred("validate", "nope"), 1)
        self.assertIn(b"Credential 'nope' not found", r.stdout + r.stderr)
        self.assertNotIn(b"ok:", r.stdout)

    def test_valid_store(self):
        self.init_store()
        self.add("brave_search", {"api_key": "secret-brave"})
        r = self.ok("validate")
        self.assertEqual(len(self.out_lines(r)), 1, r.stdout)
        self.assertTrue(r.stdout.startswith(b"ok:"), r.stdout)
        self.assertEqual(r.stderr, b"")
        self.assert_secret_free(r, "secret-brave")
        r = self.ok("validate", "--json")
        doc = json.loads(r.stdout)
        self.assertEqual(doc, {"ok": True, "credentials": {}, "usage": {}})
        # an api_key with a future expiry is fine too
        self.add("future", {"api_key": "v"}, "--expires", "api_key=+1d")
        self.ok("validate")

    def test_expired_static_key_reported(self):
        self.init_store()
        self.add("old", {"api_key": "v"}, "--expires", "api_key=2020-01-01T00:00:00Z")
        r = self.check(self.run_cred("validate"), 1)
        self.assertTrue(self.lines_about(self.out_lines(r) + self.error_lines(r), "old"))

    def test_usage_problems(self):
        self.init_store()
        self.add("brave_search", {"api_key": "secret-brave"})
        self.ok("usage", "add", "brave_search", "--key", "api_key", "--env", "B={{brave_search}}")
        self.ok("validate")
        self.ok("usage", "add", "ghost", "--key", "api_key", "--env", "G={{ghost.api_key}}")
        r = self.check(self.run_cred("validate"), 1)
        text = (r.stdout + r.stderr).decode()
        self.assertIn("Credential 'ghost' not found", text)
        ghost = [l for l in text.splitlines() if "Credential 'ghost' not found" in l]
        self.assertEqual(len(ghost), 1, "one message per problem: %r" % ghost)
        self.assertNotIn("brave_search", text)
        self.ok("usage", "remove", "ghost")
        self.ok("usage", "add", "brave_search", "--key", "api_key", "--key", "nokey")
        r = self.check(self.run_cred("validate"), 1)
        text = (r.stdout + r.stderr).decode()
        self.assertIn("Missing required key 'nokey'", text)
        self.assertNotIn("'api_key'", text)
        r = self.check(self.run_cred("validate", "brave_search"), 1)
        self.assertIn(b"Missing required key 'nokey'", r.stdout + r.stderr)
        # a template naming a missing key
        self.ok("usage", "add", "brave_search", "--header", "X={{brave_search.nokey}}")
        r = self.check(self.run_cred("validate"), 1)
        self.assertIn(b"Key 'nokey' not found in credential 'brave_search'", r.stdout + r.stderr)
        self.assert_secret_free(r, "secret-brave")

    def test_blank_values_and_missing_access_token_are_invalid_as_in_hive(self):
        # Hive's StaticProvider wants a key whose value.strip() is not empty;
        # its OAuth2 provider wants an access_token; its bearer provider an
        # access_token or a token
        self.init_store()
        self.add("empty", "api_key=\n")
        self.add("blank", {"api_key": " \t\u3000"})
        self.add("one_good", {"api_key": " ", "other": "x"})
        self.add("no_access", {"refresh_token": "rt"}, "--type", "oauth2")
        self.add("tok_only", {"token": "t"}, "--type", "bearer_token")
        self.add("neither", {"other": "t"}, "--type", "bearer_token")
        r = self.check(self.run_cred("validate", "--json"), 1)
        doc = json.loads(r.stdout)["credentials"]
        self.assertEqual(set(doc), {"empty", "blank", "no_access", "neither"}, doc)
        self.assertIn("no key with a value", doc["blank"][0])
        self.assertIn("access_token", doc["no_access"][0])
        for one in ("empty", "blank", "no_access", "neither"):
            self.check(self.run_cred("validate", one), 1)
        self.ok("validate", "one_good")
        self.ok("validate", "tok_only")

    def test_missing_required_keys_in_the_specs_order_with_duplicates(self):
        self.init_store()
        self.add("svc", {"api_key": "v"})
        self.ok("usage", "add", "svc", "--key", "zeta", "--key", "alpha", "--key", "zeta", "--key", "api_key")
        r = self.check(self.run_cred("validate", "--json"), 1)
        self.assertEqual(json.loads(r.stdout)["usage"]["svc"],
                         ["Missing required key 'zeta'", "Missing required key 'alpha'",
                          "Missing required key 'zeta'"])

    def test_malformed_template_in_a_spec_is_a_problem(self):
        self.init_store()
        self.add("svc", {"api_key": "v"})
        self.ok("usage", "add", "svc", "--env", "S={{ svc }}", "--header", "H=Bearer {{svc}}")
        r = self.check(self.run_cred("validate", "--json"), 1)
        problems = json.loads(r.stdout)["usage"]["svc"]
        self.assertEqual(problems, ["Template '{{ svc }}': the '{{' at column 1 is not a template: "
                                    "a space inside '{{ }}'"])

    def test_json(self):
        self.copy_fixture()
        self.ok("usage", "add", "ghost", "--key", "api_key")
        self.ok("usage", "add", "anthropic", "--key", "api_key", "--key", "nokey")
        r = self.check(self.run_cred("validate", "--json"), 1)
        doc = json.loads(r.stdout)
        self.assertEqual(set(doc), {"ok", "credentials", "usage"})
        self.assertIs(doc["ok"], False)
        self.assertIsInstance(doc["credentials"], dict)
        self.assertIsInstance(doc["usage"], dict)
        self.assertIn("internal_jwt", doc["credentials"])
        self.assertTrue(any(BEARER_MSG in p for p in doc["credentials"]["internal_jwt"]))
        self.assertIn("github_oauth", doc["credentials"])
        self.assertNotIn("brave_search", doc["credentials"])
        self.assertEqual(doc["usage"].get("ghost"), ["Credential 'ghost' not found"])
        self.assertEqual(doc["usage"].get("anthropic"), ["Missing required key 'nokey'"])
        self.assert_secret_free(r, *self.fixture_secrets())
        # one id, as JSON
        r = self.ok("validate", "--json", "brave_search")
        self.assertEqual(json.loads(r.stdout), {"ok": True, "credentials": {}, "usage": {}})

    def test_damaged_usage_file(self):
        self.copy_fixture()
        self.write_usage('{"specs": {"x": ')
        for args in (["validate"], ["validate", "brave_search"], ["validate", "--json"]):
            with self.subTest(args=args):
                r = self.run_cred(*args)
                # the store's error (6), not a credential's (5)
                self.assert_error(r, 6, "usage file %s is damaged" % self.usage_path)

    def test_operands(self):
        self.copy_fixture()
        self.assert_usage_error(self.run_cred("validate", "a", "b"))


# --- accounts --------------------------------------------------------------

class TestAccounts(HiveCredTest):

    def setUp(self):
        super().setUp()
        self.copy_fixture()

    def test_text(self):
        r = self.ok("accounts", "google")
        self.assertEqual(r.stdout, ("%s\tTimothy\temail=timothy@example.com\n" % GOOGLE_ID).encode())
        self.assertEqual(r.stderr, b"")
        r = self.ok("accounts", "brave_search")
        self.assertEqual(r.stdout, b"brave_search/work\twork\tusername=acme-bot\n")
        self.assertEqual(r.stderr, b"")
        self.assert_secret_free(r, *self.fixture_secrets())

    def test_unknown_provider(self):
        for provider in ["nope", "brave", "Brave_search", "google/Timothy", "github"]:
            with self.subTest(provider=provider):
                r = self.ok("accounts", provider)
                self.assertEqual(r.stdout, b"")
                self.assertEqual(r.stderr, b"")
                r = self.ok("accounts", "--json", provider)
                self.assertEqual(json.loads(r.stdout), [])

    def test_json(self):
        r = self.ok("accounts", "--json", "google")
        self.assertEqual(json.loads(r.stdout), [
            {"id": GOOGLE_ID, "provider": "google", "alias": "Timothy",
             "identity": {"email": "timothy@example.com"}}])
        r = self.ok("accounts", "brave_search", "--json")
        doc = json.loads(r.stdout)
        self.assertEqual(doc, [{"id": "brave_search/work", "provider": "brave_search", "alias": "work",
                                "identity": {"username": "acme-bot"}}])
        for entry in doc:
            self.assertEqual(list(entry), ["id", "provider", "alias", "identity"])
        self.assert_secret_free(r, *self.fixture_secrets())

    def test_local_provider_alias_id(self):
        # no _integration_type: the id "provider/alias" makes it an account
        self.add("slack/team", {"api_key": "xoxb-secret"})
        self.add("slack/ops", {"api_key": "xoxb-secret2", "_identity_workspace": "acme"})
        r = self.ok("accounts", "--json", "slack")
        self.assertEqual(json.loads(r.stdout), [
            {"id": "slack/ops", "provider": "slack", "alias": "ops", "identity": {"workspace": "acme"}},
            {"id": "slack/team", "provider": "slack", "alias": "team", "identity": {}}])
        r = self.ok("accounts", "slack")
        rows = [l.split("\t") for l in self.out_lines(r)]
        self.assertEqual([row[:2] for row in rows], [["slack/ops", "ops"], ["slack/team", "team"]])
        self.assertEqual(rows[0][2:], ["workspace=acme"])
        self.assert_secret_free(r, "xoxb-secret")

    def test_operands(self):
        self.assert_usage_error(self.run_cred("accounts"))
        self.assert_usage_error(self.run_cred("accounts", "a", "b"))


# --- usage -----------------------------------------------------------------

class TestUsage(HiveCredTest):

    FULL = ["usage", "add", "brave_search", "--key", "api_key",
            "--header", "X-Subscription-Token={{brave_search.api_key}}",
            "--header", "Accept=application/json",
            "--param", "key={{brave_search}}",
            "--body", "token={{brave_search.api_key}}",
            "--env", "BRAVE_API_KEY={{brave_search}}",
            "--env", "EQ=a=b",
            "-d", "Brave Search API", "--help-url", "https://brave.com/search/api/"]
    FULL_SPEC = spec("brave_search", required_keys=["api_key"],
                     headers={"X-Subscription-Token": "{{brave_search.api_key}}",
                              "Accept": "application/json"},
                     query_params={"key": "{{brave_search}}"},
                     body_fields={"token": "{{brave_search.api_key}}"},
                     env={"BRAVE_API_KEY": "{{brave_search}}", "EQ": "a=b"},
                     description="Brave Search API", help_url="https://brave.com/search/api/")

    def setUp(self):
        super().setUp()
        self.copy_fixture()

    def test_add_writes_file(self):
        self.assertFalse(os.path.exists(self.usage_path))
        r = self.ok(*self.FULL)
        self.assertEqual(r.stdout, b"")
        text, doc = self.read_usage()
        self.assertTrue(text.endswith("}\n"), repr(text[-5:]))
        self.assertFalse(text.endswith("\n\n"))
        self.assertEqual(list(doc), ["version", "specs"])
        self.assertEqual(doc["version"], "1.0")
        self.assertEqual(doc["specs"], {"brave_search": self.FULL_SPEC})
        self.assertIn("{{brave_search.api_key}}", text)
        for secret in self.fixture_secrets():
            self.assertNotIn(secret, text)
        self.assertEqual(stat.S_IMODE(os.stat(self.usage_path).st_mode) & 0o077, 0)
        # the credential itself is untouched
        self.assertEqual(self.decrypt("brave_search")["keys"]["api_key"]["value"], BRAVE_KEY)

    def test_show_and_list(self):
        self.ok(*self.FULL)
        r = self.ok("usage", "show", "brave_search")
        self.assertTrue(r.stdout.endswith(b"\n"))
        self.assertEqual(json.loads(r.stdout), self.FULL_SPEC)
        self.assertEqual(r.stderr, b"")
        self.assertNotIn(BRAVE_KEY.encode(), r.stdout)
        self.ok("usage", "add", "anthropic", "--env", "ANTHROPIC_API_KEY={{anthropic}}")
        self.ok("usage", "add", "aden_api_key")
        r = self.ok("usage", "list")
        self.assertEqual(r.stdout, b"aden_api_key\nanthropic\nbrave_search\n")
        r = self.ok("usage", "show", "aden_api_key")
        self.assertEqual(json.loads(r.stdout), spec("aden_api_key"))
        r = self.ok("usage", "show", "anthropic")
        self.assertEqual(json.loads(r.stdout), spec("anthropic", env={"ANTHROPIC_API_KEY": "{{anthropic}}"}))
        self.assertEqual(set(self.read_usage()[1]["specs"]), {"aden_api_key", "anthropic", "brave_search"})

    def test_list_empty(self):
        r = self.ok("usage", "list")
        self.assertEqual(r.stdout, b"")
        self.assertFalse(os.path.exists(self.usage_path))

    def test_add_replaces(self):
        self.ok(*self.FULL)
        self.ok("usage", "add", "brave_search", "--description", "second")
        r = self.ok("usage", "show", "brave_search")
        self.assertEqual(json.loads(r.stdout), spec("brave_search", description="second"))
        self.assertEqual(list(self.read_usage()[1]["specs"]), ["brave_search"])

    def test_options_anywhere(self):
        self.ok("usage", "--key", "api_key", "add", "--env", "A={{brave_search}}", "brave_search")
        r = self.ok("usage", "show", "brave_search")
        self.assertEqual(json.loads(r.stdout), spec("brave_search", required_keys=["api_key"],
                                                    env={"A": "{{brave_search}}"}))
        # '--' ends the options: an id may begin with '-'
        self.ok("usage", "add", "--", "-dash")
        self.assertEqual(self.ok("usage", "list").stdout, b"-dash\nbrave_search\n")
        self.ok("usage", "remove", "--", "-dash")

    def test_remove(self):
        self.ok(*self.FULL)
        self.ok("usage", "add", "anthropic")
        r = self.ok("usage", "remove", "brave_search")
        self.assertEqual(r.stdout, b"")
        self.assertEqual(self.ok("usage", "list").stdout, b"anthropic\n")
        text, doc = self.read_usage()
        self.assertEqual(doc, {"version": "1.0", "specs": {"anthropic": spec("anthropic")}})
        self.assertTrue(text.endswith("\n"))
        self.ok("usage", "remove", "anthropic")
        self.assertEqual(self.read_usage()[1], {"version": "1.0", "specs": {}})
        self.assertEqual(self.ok("usage", "list").stdout, b"")
        # the credentials stay
        self.assertEqual(self.ok("exists", "brave_search").returncode, 0)

    def test_unknown_id(self):
        self.ok("usage", "add", "anthropic")
        before = self.read_bytes(self.usage_path)
        for sub in ("show", "remove"):
            with self.subTest(sub=sub):
                r = self.run_cred("usage", sub, "nope")
                self.assert_error(r, 3, "No usage spec registered for 'nope'", exact=True)
                self.assertEqual(r.stdout, b"")
        self.assertEqual(self.read_bytes(self.usage_path), before)
        # no file at all
        os.remove(self.usage_path)
        r = self.run_cred("usage", "show", "anthropic")
        self.assert_error(r, 3, "No usage spec registered for 'anthropic'", exact=True)
        r = self.run_cred("usage", "remove", "anthropic")
        self.assert_error(r, 3, "No usage spec registered for 'anthropic'", exact=True)
        self.assertFalse(os.path.exists(self.usage_path))

    def test_hand_edited_file(self):
        self.write_usage('{"specs": {"x": {"env": {"A": "{{x}}"}}}}')
        self.assertEqual(self.ok("usage", "list").stdout, b"x\n")
        r = self.ok("usage", "show", "x")
        self.assertEqual(json.loads(r.stdout), spec("x", env={"A": "{{x}}"}))
        # reading does not rewrite it
        self.assertEqual(self.read_bytes(self.usage_path), b'{"specs": {"x": {"env": {"A": "{{x}}"}}}}')
        # validate sees it: credential x is missing
        r = self.check(self.run_cred("validate", "--json"), 1)
        self.assertEqual(json.loads(r.stdout)["usage"], {"x": ["Credential 'x' not found"]})
        # a write keeps it and adds the version
        self.ok("usage", "add", "brave_search")
        doc = self.read_usage()[1]
        self.assertEqual(doc["version"], "1.0")
        self.assertEqual(doc["specs"], {"x": spec("x", env={"A": "{{x}}"}),
                                        "brave_search": spec("brave_search")})

    def test_damaged_file(self):
        for damaged in ['{"specs": {"x": ', "not json", '{"specs": []}', '[]',
                        '{"specs": {"x": {"env": {"A": 1}}}}']:
            self.write_usage(damaged)
            for args in (["usage", "list"], ["usage", "show", "x"], ["usage", "remove", "x"],
                         ["usage", "add", "y", "--env", "Y={{y}}"]):
                with self.subTest(damaged=damaged, args=args):
                    r = self.run_cred(*args)
                    # the store's error code, naming the file and saying
                    # it is damaged (issue 12 item 15)
                    self.assert_error(r, 6, "usage file %s is damaged" % self.usage_path)
                    self.assertEqual(r.stdout, b"")
                    # never overwritten: it is edited by hand
                    self.assertEqual(self.read_bytes(self.usage_path), damaged.encode())

    def test_file_too_large(self):
        # Issue 12, item 14: a usage.json of tiny values ("[0,0,...]") was
        # parsed into ~60 times its size (32 MiB: 2 GB). Over 1 MiB it is
        # refused as a store error, without being parsed.
        n = 32 * 1024 * 1024 // 2
        piece = ",".join(["0"] * 4096)
        with open(self.usage_path, "w") as f:
            f.write('{"specs": {}, "x": [0')
            for _ in range(n // 4096):
                f.write("," + piece)
            f.write("]}")
        p = subprocess.Popen([HIVE_CRED, "usage", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=self.env, cwd=self.tmp)
        out, err = p.stdout.read(), p.stderr.read()
        _, status, usage = os.wait4(p.pid, 0)
        p.stdout.close()
        p.stderr.close()
        r = subprocess.CompletedProcess(p.args, os.waitstatus_to_exitcode(status), out, err)
        self.assert_error(r, 6, "usage file %s is larger than 1048576 bytes" % self.usage_path)
        self.assertLess(usage.ru_maxrss * 1024, 96 * 1024 * 1024)
        # 2,000 specs as usage add writes them fit
        specs = {"tool%04d" % i: spec("tool%04d" % i, env={"T_%04d" % i: "{{tool%04d.api_key}}" % i})
                 for i in range(2000)}
        self.write_usage(json.dumps({"version": "1.0", "specs": specs}, indent=2) + "\n")
        self.assertGreater(os.path.getsize(self.usage_path), 512 * 1024)
        r = self.ok("usage", "list")
        self.assertEqual(self.out_lines(r), sorted(specs))

    def test_damaged_file_under_hive_run(self):
        # hive-run --usage said "No usage spec registered" for a spec that
        # is there, in a file that is damaged
        self.assertTrue(os.access(HIVE_RUN, os.X_OK), "hive-run not found at %s" % HIVE_RUN)
        self.write_usage('{"specs": {"brave_search": {"env": {"A": "{{brave_search}}"}}, ')
        r = subprocess.run([HIVE_RUN, "--usage", "brave_search", "--", "true"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=self.env, timeout=TIMEOUT, cwd=self.tmp)
        self.assertEqual(r.returncode, 125, r.stderr)
        err = r.stderr.decode()
        self.assertTrue(err.startswith("hive-run: error: usage file %s is damaged: " % self.usage_path), err)
        self.assertIn("line 1 column", err)
        self.assertNotIn("No usage spec", err)

    def test_parallel_adds_keep_every_spec(self):
        # 20 writers at once: each reads the file, adds its spec and writes
        # it; without a lock most specs are lost
        ids = ["tool%02d" % i for i in range(20)]
        procs = [subprocess.Popen([HIVE_CRED, "usage", "add", i, "--env", "V_%s={{brave_search}}" % i],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env, cwd=self.tmp)
                 for i in ids]
        for p in procs:
            out, err = p.communicate(timeout=TIMEOUT)
            self.assertEqual(p.returncode, 0, err)
        r = self.ok("usage", "list")
        self.assertEqual(self.out_lines(r), ids)
        text, doc = self.read_usage()
        self.assertEqual(sorted(doc["specs"]), ids)
        self.assertEqual([n for n in os.listdir(self.store) if n.startswith(".tmp-")], [])
        lock = os.path.join(self.store, ".usage.lock")
        self.assertEqual(stat.S_IMODE(os.stat(lock).st_mode), 0o600)

    def test_killed_writer_leftovers_removed(self):
        # what a writer killed between creating its temporary file and the
        # rename leaves: removed by the next writer, under the lock
        self.ok("usage", "add", "brave_search")
        # and what writers killed before there was a lock left
        leftovers = [os.path.join(self.store, n) for n in (".tmp-usage-4242-0011223344556677",
                                                            ".tmp-4243-8899aabbccddeeff")]
        for left in leftovers:
            with open(os.open(left, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
                f.write('{"version": "1.0", "specs": {}}')
        p = subprocess.Popen([HIVE_CRED, "usage", "add", "anthropic"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=self.env, cwd=self.tmp)
        p.communicate(timeout=TIMEOUT)
        self.assertEqual(p.returncode, 0)
        for left in leftovers:
            self.assertFalse(os.path.exists(left), "a killed writer's temporary file was left")
        text, doc = self.read_usage()
        self.assertEqual(sorted(doc["specs"]), ["anthropic", "brave_search"])

    def test_bad_option_placement(self):
        self.ok("usage", "add", "anthropic")
        before = self.read_bytes(self.usage_path)
        for args in (["usage", "list", "--header", "A=b"],
                     ["usage", "show", "anthropic", "--key", "api_key"],
                     ["usage", "remove", "anthropic", "--env", "A=b"],
                     ["usage", "list", "--help-url", "https://x"],
                     ["list", "--header", "A=b"],
                     ["get", "brave_search", "--env", "A=b"],
                     ["resolve", "{{brave_search}}", "--param", "a=b"],
                     ["usage", "add", "anthropic", "--type", "api_key"],
                     ["usage", "add", "anthropic", "--reveal"]):
            with self.subTest(args=args):
                self.assert_usage_error(self.run_cred(*args))
        self.assertEqual(self.read_bytes(self.usage_path), before)
        # --key belongs to 'usage add', not to the credential command 'add'
        for opt in (["--key", "api_key"], ["--header", "A=b"], ["--help-url", "https://x"]):
            with self.subTest(opt=opt):
                r = self.run_cred("add", "newcred", *opt, stdin="api_key=v\n")
                self.assert_usage_error(r)
                self.check(self.run_cred("exists", "newcred"), 1)

    def test_bad_pairs(self):
        for opt in ("--header", "--param", "--body", "--env"):
            for value in ("noequals", "=value"):
                with self.subTest(opt=opt, value=value):
                    r = self.run_cred("usage", "add", "brave_search", opt, value)
                    self.assert_usage_error(r)
                    self.assertIn(opt, self.error_lines(r)[0])
        self.assertFalse(os.path.exists(self.usage_path))

    def test_bad_subcommands(self):
        for args in (["usage"], ["usage", "frob"], ["usage", "show"], ["usage", "remove"], ["usage", "add"],
                     ["usage", "list", "extra"], ["usage", "show", "a", "b"], ["usage", "add", "a", "b"]):
            with self.subTest(args=args):
                self.assert_usage_error(self.run_cred(*args))
        self.assertFalse(os.path.exists(self.usage_path))


# --- refresh ---------------------------------------------------------------

class TestRefresh(HiveCredTest):

    def setUp(self):
        super().setUp()
        self.copy_fixture()

    def assert_not_refreshed(self, cred_id, code, message=None):
        before = self.read_bytes(self.enc_path(cred_id))
        r = self.run_cred("refresh", cred_id)
        self.assert_error(r, code, message or "")
        self.assertEqual(r.stdout, b"")
        self.assert_secret_free(r, *self.fixture_secrets())
        self.assertEqual(self.read_bytes(self.enc_path(cred_id)), before, "%s rewritten" % cred_id)
        return r

    def test_bearer(self):
        self.assert_not_refreshed("internal_jwt", 7, BEARER_MSG)

    def test_static(self):
        for cred_id in ("brave_search", "smtp_login", "brave_search/work"):
            with self.subTest(id=cred_id):
                self.assert_not_refreshed(cred_id, 7)

    def test_oauth_without_provider(self):
        r = self.assert_not_refreshed("github_oauth", 7)
        self.assertIn("github_oauth", self.error_lines(r)[0])

    def test_missing(self):
        r = self.run_cred("refresh", "nope")
        self.assert_error(r, 3, "Credential 'nope' not found in store " + self.store, exact=True)
        self.assertEqual(r.stdout, b"")

    def test_operands(self):
        self.assert_usage_error(self.run_cred("refresh"))
        self.assert_usage_error(self.run_cred("refresh", "a", "b"))


# --- hints: every error with a next step says it ------------------------------

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "aden"))
from server import AdenServer  # noqa: E402  (tests/aden/server.py, the Aden API stand-in)


class TestHints(HiveCredTest):

    def setUp(self):
        super().setUp()
        self.ok("init")

    def hints(self, r):
        return [l for l in r.stderr.decode().splitlines() if l.startswith("hint: ")]

    def test_dotenv_errors_have_hints(self):
        if not os.access(HIVE_RUN, os.X_OK):
            self.fail("hive-run not found at %s (set HIVE_RUN)" % HIVE_RUN)
        bad = os.path.join(self.tmp, "latin1.env")
        with open(bad, "wb") as f:
            f.write(b"A=caf\xe9\n")
        big = os.path.join(self.tmp, "big.env")
        with open(big, "w") as f:
            f.write("A=x\nB=${A}${A}${A}${A}${A}${A}${A}${A}\n" + "".join(
                "%s=${%s}${%s}${%s}${%s}${%s}${%s}${%s}${%s}\n" % ((chr(67 + i),) + (chr(66 + i),) * 8)
                for i in range(9)))
        cases = ((bad, "not UTF-8", "save the file as UTF-8"),
                 (os.path.join(self.tmp, "absent.env"), "does not exist", "check the file's path"),
                 (big, "expand to more than", "is expanded over and over"))
        for path, msg, hint in cases:
            with self.subTest(path=os.path.basename(path)):
                r = subprocess.run([HIVE_RUN, "--env-file", path, "--", "true"], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env=self.env, timeout=TIMEOUT, cwd=self.tmp)
                self.check(r, 125)
                self.assertIn(msg, r.stderr.decode())
                self.assertTrue(any(hint in h for h in self.hints(r)), r.stderr)

    def test_sync_errors_have_hints(self):
        srv = AdenServer()
        self.addCleanup(srv.close)
        self.env["ADEN_API_URL"] = srv.url
        self.env["ADEN_API_KEY"] = "wrong-key"
        r = self.check(self.run_cred("sync"), 6)
        self.assertIn("Agent API key is invalid or revoked", r.stderr.decode())
        self.assertTrue(any("set ADEN_API_KEY to a valid key" in h for h in self.hints(r)), r.stderr)
        self.env["ADEN_API_KEY"] = srv.api_key
        srv.add("int-a", "github", "work")
        srv.add("int-b", "slack", "team")
        srv.fail("/v1/credentials/int-b", 500)
        r = self.run_cred("sync")
        out = r.stdout.decode()
        self.assertIn("1 failed", out)
        self.check(r, 6)
        self.assertIn("int-b: Aden server answered HTTP 500", r.stderr.decode())
        self.assertEqual(self.hints(r), ["hint: the messages above say why; run 'hive-cred sync' again to retry them"])


def main():
    hivetest.main(binaries=["hive-cred"], fixture=True)


if __name__ == "__main__":
    main()
