#!/usr/bin/env python3
"""End-to-end tests of usage specs' required scopes (usage add --scope,
hive-run --usage, validate, the credential helpers) and of the audit record
($HIVE_HOME/audit.log, hive-cred audit).

Run:  python3 tests/cli/test_scopes_audit.py [unittest options]

Environment: HIVE_CRED, HIVE_RUN, GIT_CREDENTIAL_HIVE, DOCKER_CREDENTIAL_HIVE
(the binaries under test; ctest sets them all).
"""

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import unittest
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lib"))
import hivetest  # noqa: E402  (tests/lib/hivetest.py)

HIVE_CRED = hivetest.HIVE_CRED
HIVE_RUN = hivetest.HIVE_RUN
GIT_HELPER = hivetest.path_from_env("GIT_CREDENTIAL_HIVE", hivetest.BUILD / "launcher" / "git-credential-hive")
DOCKER_HELPER = hivetest.path_from_env("DOCKER_CREDENTIAL_HIVE",
                                       hivetest.BUILD / "launcher" / "docker-credential-hive")
TIMEOUT = hivetest.scaled(30)
TOKEN = "gho_scopetest_0123456789abcdef"
EXIT_SCOPE = 8
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class Base(unittest.TestCase):
    """One temporary HIVE_HOME per test, with a key file and credential gh."""

    maxDiff = None

    def setUp(self):
        self.home = hivetest.temp_dir(self, "hive-scopes-audit-")
        self.store = os.path.join(self.home, "credentials")
        self.log = os.path.join(self.home, "audit.log")
        self.env = hivetest.clean_env(self.home)
        self.ok(HIVE_CRED, "init")

    def run_bin(self, *argv, stdin=b"", env=None):
        return hivetest.run(list(argv), env or self.env, stdin=stdin, timeout=TIMEOUT, cwd=self.home)

    def check(self, r, code):
        for marker in (b"Sanitizer", b"runtime error:"):
            self.assertNotIn(marker, r.stderr, r.stderr.decode("utf-8", "replace"))
        self.assertEqual(r.returncode, code, "%s: exit %d, expected %d\nstdout: %r\nstderr: %r"
                         % (" ".join(map(str, r.args)), r.returncode, code, r.stdout, r.stderr))
        return r

    def ok(self, *argv, **kw):
        return self.check(self.run_bin(*argv, **kw), 0)

    def cred(self, *args, **kw):
        return self.run_bin(HIVE_CRED, *args, **kw)

    def add_gh(self, scope=None):
        values = "access_token=%s\n" % TOKEN
        if scope is not None:
            values += "scope=%s\n" % scope
        self.check(self.cred("add", "gh", "--type", "oauth2", stdin=values.encode()), 0)

    def spec(self, *scopes):
        args = ["usage", "add", "gh", "--env", "GH_TOKEN={{gh}}"]
        for s in scopes:
            args += ["--scope", s]
        self.check(self.cred(*args), 0)

    def stderr_lines(self, r):
        return r.stderr.decode("utf-8", "replace").splitlines()

    def records(self):
        with open(self.log, encoding="utf-8") as f:
            text = f.read()
        self.assertTrue(text.endswith("\n"), "the last line is cut")
        return [json.loads(line) for line in text.splitlines()]

    def log_text(self):
        with open(self.log, encoding="utf-8") as f:
            return f.read()


# --- scopes --------------------------------------------------------------

class TestScopeSpecs(Base):

    def test_scope_is_repeatable_and_shown(self):
        self.add_gh("repo")
        self.spec("repo", "read:org")
        doc = json.loads(self.ok(HIVE_CRED, "usage", "show", "gh").stdout)
        self.assertEqual(doc["required_scopes"], ["repo", "read:org"])
        with open(os.path.join(self.store, "usage.json"), encoding="utf-8") as f:
            self.assertEqual(json.load(f)["specs"]["gh"]["required_scopes"], ["repo", "read:org"])
        doc = json.loads(self.ok(HIVE_CRED, "usage", "list", "--json").stdout)
        self.assertEqual(doc["gh"]["required_scopes"], ["repo", "read:org"])
        self.assertEqual(doc["gh"]["credential_id"], "gh")
        self.assertEqual(self.ok(HIVE_CRED, "usage", "list").stdout, b"gh\n")

    def test_a_bad_scope_is_a_usage_error(self):
        for bad in ("repo gist", "repo,gist", "", 'a"b', "caf\u00e9"):
            with self.subTest(scope=bad):
                r = self.check(self.cred("usage", "add", "gh", "--scope", bad), 2)
                first = self.stderr_lines(r)[0]
                self.assertTrue(first.startswith("hive-cred: error: usage spec 'gh': "), first)
                self.assertIn("is not a scope", first)
        self.assertFalse(os.path.exists(os.path.join(self.store, "usage.json")))

    def test_scope_applies_to_usage_add_and_login_only(self):
        r = self.check(self.cred("list", "--scope", "repo"), 2)
        self.assertIn("--scope applies to 'usage add' and 'login' only", r.stderr.decode())
        r = self.check(self.cred("usage", "list", "--scope", "repo"), 2)
        self.assertIn("--scope applies to 'usage add' and 'login' only", r.stderr.decode())

    def test_a_hand_edited_spec_with_a_bad_scope_list_is_damaged(self):
        with open(os.path.join(self.store, "usage.json"), "w", encoding="utf-8") as f:
            json.dump({"version": "1.0", "specs": {"gh": {"credential_id": "gh", "required_scopes": "repo"}}}, f)
        r = self.check(self.cred("usage", "list"), 6)
        self.assertIn("required_scopes must be a list of strings", r.stderr.decode())


class TestScopeChecks(Base):

    def test_hive_run_refuses_a_token_without_the_scopes_and_names_them(self):
        self.add_gh("repo gist")
        self.spec("repo", "read:org", "workflow")
        r = self.check(self.run_bin(HIVE_RUN, "--usage", "gh", "--", "sh", "-c", "echo ran"), 125)
        self.assertEqual(r.stdout, b"")
        lines = self.stderr_lines(r)
        self.assertEqual(lines[0], "hive-run: error: Credential 'gh' lacks scopes its usage spec requires: "
                                   "read:org, workflow (its token has: repo gist)")
        self.assertTrue(lines[1].startswith("hint: obtain a token granting them (hive-cred login gh"), lines[1])
        self.assertNotIn(TOKEN, r.stderr.decode())

    def test_hive_run_refuses_a_token_with_no_scope_record(self):
        self.add_gh(None)
        self.spec("repo")
        r = self.check(self.run_bin(HIVE_RUN, "--usage", "gh", "--", "true"), 125)
        lines = self.stderr_lines(r)
        self.assertIn("has no record of its token's scopes (no 'scope' key)", lines[0])
        self.assertIn("cannot be checked: repo", lines[0])
        self.assertIn("hive-cred set gh scope", lines[1])

    def test_hive_run_runs_when_every_scope_is_granted(self):
        for granted in ("repo read:org", "read:org,repo", "admin repo  read:org"):
            with self.subTest(scope=granted):
                self.add_gh(granted)
                self.spec("repo", "read:org")
                r = self.ok(HIVE_RUN, "--usage", "gh", "--", "sh", "-c", 'printf %s "$GH_TOKEN"')
                self.assertEqual(r.stdout, TOKEN.encode())

    def test_a_spec_without_scopes_needs_no_record(self):
        self.add_gh(None)
        self.spec()
        r = self.ok(HIVE_RUN, "--usage", "gh", "--", "sh", "-c", 'printf %s "$GH_TOKEN"')
        self.assertEqual(r.stdout, TOKEN.encode())

    def test_e_templates_are_not_checked_against_specs(self):
        # -e names a credential, not a tool: no spec says what it needs
        self.add_gh("repo")
        self.spec("admin")
        r = self.ok(HIVE_RUN, "-e", "T={{gh}}", "--", "sh", "-c", 'printf %s "$T"')
        self.assertEqual(r.stdout, TOKEN.encode())

    def test_dry_run_reports_the_missing_scope(self):
        self.add_gh("repo")
        self.spec("repo", "gist")
        r = self.check(self.run_bin(HIVE_RUN, "--dry-run", "--json", "--usage", "gh", "--", "true"), 125)
        doc = json.loads(r.stdout)
        self.assertIn("Credential 'gh' lacks scopes its usage spec requires: gist (its token has: repo)",
                      doc["problems"])
        self.assertFalse(os.path.exists(self.log), "a dry run writes nothing")

    def test_validate_says_it_as_a_problem_line(self):
        self.add_gh("repo")
        self.spec("repo", "gist")
        r = self.check(self.cred("validate"), 1)
        self.assertIn(b"usage gh: Credential 'gh' lacks scopes its usage spec requires: gist "
                      b"(its token has: repo)\n", r.stdout)
        r = self.check(self.cred("validate", "gh", "--json"), 1)
        self.assertEqual(json.loads(r.stdout)["usage"]["gh"],
                         ["Credential 'gh' lacks scopes its usage spec requires: gist (its token has: repo)"])
        self.check(self.cred("set", "gh", "scope", stdin=b"repo gist"), 0)
        self.check(self.cred("validate"), 0)

    def test_the_helpers_refuse_and_print_nothing(self):
        self.add_gh("repo")
        self.check(self.cred("set", "gh", "server_url", stdin=b"registry.example.com"), 0)
        self.check(self.cred("set", "gh", "username", stdin=b"me"), 0)
        self.check(self.cred("set", "gh", "aws_access_key_id", stdin=b"AKIAEXAMPLE"), 0)
        self.check(self.cred("set", "gh", "aws_secret_access_key", stdin=b"secretexample"), 0)
        self.spec("repo", "write:packages")
        runs = {"git": ([GIT_HELPER, "gh", "get"], b"protocol=https\nhost=github.com\n\n"),
                "docker": ([DOCKER_HELPER, "get"], b"registry.example.com"),
                "exec-credential": ([HIVE_CRED, "exec-credential", "gh"], b""),
                "aws-credential-process": ([HIVE_CRED, "aws-credential-process", "gh"], b"")}
        for name, (argv, stdin) in runs.items():
            with self.subTest(helper=name):
                r = self.check(self.run_bin(*argv, stdin=stdin), EXIT_SCOPE)
                self.assertEqual(r.stdout, b"")
                err = r.stderr.decode()
                self.assertIn("lacks scopes its usage spec requires: write:packages (its token has: repo)", err)
                self.assertIn("hint: obtain a token granting them", err)
                self.assertNotIn(TOKEN, err)
        self.check(self.cred("set", "gh", "scope", stdin=b"repo write:packages"), 0)
        r = self.ok(GIT_HELPER, "gh", "get", stdin=b"\n")
        self.assertIn(("password=%s\n" % TOKEN).encode(), r.stdout)
        fails = [rec for rec in self.records() if rec["event"] == "failure"]
        self.assertEqual(len(fails), 4)
        for rec in fails:
            self.assertIn("write:packages", rec["error"])


# --- the audit record ---------------------------------------------------------

class TestAuditRecord(Base):

    def test_a_launch_records_program_credentials_and_keys_never_values_nor_arguments(self):
        self.add_gh("repo")
        self.check(self.cred("add", "brave", stdin=b"api_key=BSA-secret-value-42\n"), 0)
        r = self.ok(HIVE_RUN, "-e", "GH_TOKEN={{gh.access_token}}", "-e", "B={{brave}}", "-e", "PLAIN=x",
                    "--", "sh", "-c", "echo hunter2-arg >/dev/null")
        self.assertEqual(r.stderr, b"")
        mode = stat.S_IMODE(os.stat(self.log).st_mode)
        self.assertEqual(mode, 0o600)
        recs = self.records()
        self.assertEqual(len(recs), 1)
        rec = recs[0]
        self.assertRegex(rec["time"], TIME_RE)
        self.assertEqual((rec["tool"], rec["command"], rec["event"]), ("hive-run", "run", "launch"))
        self.assertEqual(rec["uid"], os.getuid())
        self.assertEqual(rec["ppid"], os.getpid())
        self.assertTrue(os.path.isabs(rec["program"]) and os.path.basename(rec["program"]) == "sh",
                        rec["program"])
        self.assertEqual(rec["args"], 2)
        self.assertEqual(rec["mode"], "exec")
        self.assertEqual(rec["variables"], ["GH_TOKEN", "B", "PLAIN"])
        self.assertEqual(rec["credentials"], [{"id": "gh", "keys": ["access_token"]},
                                              {"id": "brave", "keys": ["api_key"]}])
        self.assertEqual(rec["refreshed"], [])
        text = self.log_text()
        for secret in (TOKEN, "BSA-secret-value-42", "hunter2-arg", "echo"):
            self.assertNotIn(secret, text)

    def test_the_pid_is_the_programs(self):
        self.add_gh("repo")
        r = self.ok(HIVE_RUN, "-e", "T={{gh}}", "--", "sh", "-c", "echo $$")
        self.assertEqual(self.records()[0]["pid"], int(r.stdout))

    def test_mask_and_fresh_record_their_mode_and_the_programs_pid(self):
        self.add_gh("repo")
        for mode in ("mask", "fresh"):
            with self.subTest(mode=mode):
                # a shell copies its environment: --fresh runs it with launch values only if told to
                extra = ["--allow-launch-values"] if mode == "fresh" else []
                r = self.ok(HIVE_RUN, "--" + mode, *extra, "-e", "T={{gh}}", "--", "sh", "-c", "echo $$")
                rec = self.records()[-1]
                self.assertEqual((rec["event"], rec["mode"]), ("launch", mode))
                self.assertEqual(rec["pid"], int(r.stdout))
                self.assertEqual(rec["credentials"], [{"id": "gh", "keys": ["access_token"]}])
        self.assertEqual(len(self.records()), 2)

    def test_a_refused_fresh_launch_is_recorded_with_its_error(self):
        self.add_gh("repo")
        self.check(self.run_bin(HIVE_RUN, "--fresh", "-e", "T={{gh}}", "--", "sh", "-c", "true"), 125)
        recs = self.records()
        self.assertEqual([r["event"] for r in recs], ["failure"])
        self.assertIn("--fresh cannot keep this program fresh", recs[0]["error"])

    def test_a_failed_launch_is_recorded_with_its_error(self):
        r = self.check(self.run_bin(HIVE_RUN, "-e", "T={{nosuch}}", "--", "true"), 125)
        recs = self.records()
        self.assertEqual(len(recs), 1)
        self.assertEqual(recs[0]["event"], "failure")
        self.assertEqual(recs[0]["ok"], False)
        self.assertEqual("hive-run: error: " + recs[0]["error"], self.stderr_lines(r)[0])

    def test_a_program_not_found_is_a_launch_then_a_failure(self):
        self.add_gh("repo")
        self.check(self.run_bin(HIVE_RUN, "-e", "T={{gh}}", "--", "no-such-program-xyz"), 127)
        events = [(rec["event"], rec.get("program"), rec.get("error")) for rec in self.records()]
        self.assertEqual(events, [("launch", "no-such-program-xyz", None),
                                  ("failure", None, "no-such-program-xyz: command not found")])

    def test_hive_cred_get_and_the_helpers_record_a_handout(self):
        self.add_gh("repo")
        self.ok(HIVE_CRED, "get", "gh")
        self.ok(GIT_HELPER, "gh", "get", stdin=b"\n")
        self.ok(HIVE_CRED, "exec-credential", "gh")
        self.check(self.cred("get", "gh", "nokey"), 3)
        got = [(r["tool"], r["command"], r["event"], r["id"], r.get("keys")) for r in self.records()]
        self.assertEqual(got, [("hive-cred", "get", "handout", "gh", ["access_token"]),
                               ("git-credential-hive", "get", "handout", "gh", ["access_token"]),
                               ("hive-cred", "exec-credential", "handout", "gh", ["access_token"]),
                               ("hive-cred", "get", "failure", "gh", None)])
        self.assertNotIn(TOKEN, self.log_text())

    def test_off_writes_nothing(self):
        self.add_gh("repo")
        for value in ("off", "0", "no", "false"):
            env = dict(self.env, HIVE_AUDIT=value)
            r = self.ok(HIVE_RUN, "-e", "T={{gh}}", "--", "true", env=env)
            self.assertEqual(r.stderr, b"")
            self.ok(HIVE_CRED, "get", "gh", env=env)
        self.assertFalse(os.path.exists(self.log))

    def test_a_bad_switch_is_warned_about_and_the_log_stays_on(self):
        self.add_gh("repo")
        r = self.ok(HIVE_RUN, "-e", "T={{gh}}", "--", "true", env=dict(self.env, HIVE_AUDIT="of"))
        self.assertIn(b"hive-run: warning: HIVE_AUDIT is 'of': 'off' or 'on'; the audit log stays on", r.stderr)
        self.assertEqual(len(self.records()), 1)

    def test_a_symlink_at_the_log_is_refused_said_once_and_the_launch_goes_on(self):
        self.add_gh("repo")
        target = os.path.join(self.home, "target")
        with open(target, "w"):
            pass
        os.symlink(target, self.log)
        r = self.ok(HIVE_RUN, "-e", "T={{gh}}", "-e", "U={{gh}}", "--", "sh", "-c", 'printf %s "$T"')
        self.assertEqual(r.stdout, TOKEN.encode())
        warnings = [line for line in self.stderr_lines(r) if line.startswith("hive-run: warning:")]
        self.assertEqual(len(warnings), 1, r.stderr)
        self.assertIn("audit log %s is a symbolic link: refused" % self.log, warnings[0])
        self.assertIn(b"hint: hive-run goes on without it; HIVE_AUDIT=off turns the audit log off", r.stderr)
        self.assertEqual(os.path.getsize(target), 0)

    def test_a_log_others_can_read_is_refused_and_the_launch_goes_on(self):
        self.add_gh("repo")
        with open(self.log, "w"):
            pass
        os.chmod(self.log, 0o644)
        r = self.ok(HIVE_RUN, "-e", "T={{gh}}", "--", "true")
        self.assertIn(b"is readable by group or others (mode 0644): refused; chmod 600", r.stderr)
        self.assertEqual(os.path.getsize(self.log), 0)

    def test_an_unwritable_log_does_not_block_a_helper(self):
        self.add_gh("repo")
        os.mkdir(self.log)
        r = self.ok(GIT_HELPER, "gh", "get", stdin=b"\n")
        self.assertIn(("password=%s\n" % TOKEN).encode(), r.stdout)
        self.assertIn(b"git-credential-hive: warning: audit record not written: ", r.stderr)

    def test_no_store_no_log(self):
        env = hivetest.clean_env(os.path.join(self.home, "not-there"))
        r = self.ok(HIVE_RUN, "-e", "A=b", "--", "true", env=env)
        self.assertEqual(r.stderr, b"")
        self.ok(HIVE_RUN, "--store", os.path.join(self.home, "nothing", "credentials"), "-e", "A=b", "--", "true")
        self.assertEqual(set(os.listdir(self.home)), {"credentials", "secrets"})
        self.assertFalse(os.path.exists(self.log))
        self.assertFalse(os.path.exists(os.path.join(self.home, "not-there")))

    def test_the_log_lies_beside_a_store_given_with_store(self):
        other = os.path.join(self.home, "other")
        os.mkdir(other)
        store = os.path.join(other, "credentials")
        self.ok(HIVE_CRED, "--store", store, "init")
        self.check(self.cred("--store", store, "add", "x", stdin=b"api_key=v\n"), 0)
        self.ok(HIVE_RUN, "--store", store, "-e", "X={{x}}", "--", "true")
        self.assertTrue(os.path.exists(os.path.join(other, "audit.log")))
        self.assertFalse(os.path.exists(self.log))
        r = self.ok(HIVE_CRED, "--store", store, "audit", "--json")
        self.assertEqual(json.loads(r.stdout)["credentials"], [{"id": "x", "keys": ["api_key"]}])

    def test_twenty_launches_at_once_leave_twenty_whole_lines(self):
        self.add_gh("repo")
        procs = [subprocess.Popen([HIVE_RUN, "-e", "T={{gh}}", "--", "true"], env=self.env, cwd=self.home,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(20)]
        for p in procs:
            _, err = p.communicate(timeout=TIMEOUT)
            self.assertEqual(p.returncode, 0, err)
        recs = self.records()
        self.assertEqual(len(recs), 20)
        self.assertEqual(len({r["pid"] for r in recs}), 20)


class TestAuditRefresh(Base):
    """Refreshes through the real OAuth2 server (tests/oauth/server.js)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hive-audit-oauth-")
        cls.server = hivetest.start_oauth_server(cls.tmp, hivetest.scaled_int(3600))

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def add_refreshable(self, url=None, expires="-1m"):
        srv = self.server
        text = "token_url=%s\nclient_id=%s\nclient_secret=%s\n" % (url or srv.token_url, srv.POST_ID,
                                                                     srv.POST_SECRET)
        self.check(self.cred("add", "idp", "--type", "custom", stdin=text.encode()), 0)
        self.rt = srv.mint()
        self.check(self.cred("add", "gh", "--type", "oauth2", "--provider-id", "idp", "--auto-refresh",
                             "--expires", "access_token=" + expires,
                             stdin=("access_token=old-token\nrefresh_token=%s\n" % self.rt).encode()), 0)

    def test_refreshes_are_recorded_never_their_tokens(self):
        self.add_refreshable()
        self.ok(HIVE_RUN, "-e", "T={{gh}}", "--", "true")
        self.ok(HIVE_CRED, "refresh", "gh")
        self.check(self.cred("set", "gh", "access_token", "--expires", "access_token=-1m", stdin=b"stale"), 0)
        self.ok(HIVE_CRED, "exec-credential", "gh")
        got = [(r["tool"], r["event"], r.get("refreshed"), r.get("id"), r.get("ok")) for r in self.records()]
        self.assertEqual(got, [("hive-run", "launch", ["gh"], None, None),
                               ("hive-cred", "refresh", None, "gh", True),
                               ("hive-cred", "refresh", None, "gh", True),
                               ("hive-cred", "handout", None, "gh", True)])
        text = self.log_text()
        token = self.ok(HIVE_CRED, "get", "gh").stdout.decode().strip()
        refresh_token = self.ok(HIVE_CRED, "get", "gh", "refresh_token").stdout.decode().strip()
        for secret in (token, refresh_token, self.rt, self.server.POST_SECRET):
            self.assertNotIn(secret, text)

    def test_a_refresh_that_failed_is_in_the_launch_record(self):
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))   # bound, not listening: connection refused
            url = "http://127.0.0.1:%d/token" % closed.getsockname()[1]
            self.add_refreshable(url=url, expires="+2m")
            r = self.ok(HIVE_RUN, "-e", "T={{gh}}", "--", "true")
        self.assertIn(b"hive-run: warning: Failed to refresh credential 'gh'", r.stderr)
        rec = self.records()[-1]
        self.assertEqual(rec["refreshed"], [])
        self.assertEqual(len(rec["warnings"]), 1)
        self.assertTrue(rec["warnings"][0].startswith("Failed to refresh credential 'gh'"), rec["warnings"])
        r = self.check(self.cred("refresh", "gh"), 7)
        rec = self.records()[-1]
        self.assertEqual((rec["event"], rec["ok"]), ("refresh", False))
        self.assertTrue(rec["error"].startswith("Failed to refresh credential 'gh'"), rec["error"])


class TestAuditCommand(Base):

    def write_log(self, lines):
        with open(self.log, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
        os.chmod(self.log, 0o600)

    @staticmethod
    def rec(when, event="handout", cred_id="gh", **more):
        r = {"time": when, "tool": "hive-cred", "command": "get", "event": event, "uid": 0, "pid": 7,
             "ppid": 1, "id": cred_id, "keys": ["access_token"], "ok": True}
        r.update(more)
        return json.dumps(r)

    @staticmethod
    def ago(**delta):
        t = datetime.now(timezone.utc) - timedelta(**delta)
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def test_table_and_json(self):
        self.add_gh("repo")
        self.ok(HIVE_RUN, "-e", "T={{gh}}", "--", "true")
        self.ok(HIVE_CRED, "get", "gh")
        r = self.ok(HIVE_CRED, "audit")
        lines = r.stdout.decode().splitlines()
        self.assertEqual(len(lines), 2)
        self.assertRegex(lines[0], r"^\d{4}-\S+Z hive-run run launch pid=\d+ gh:access_token -> /\S+/true$")
        self.assertRegex(lines[1], r"^\S+Z hive-cred get handout pid=\d+ gh:access_token$")
        r = self.ok(HIVE_CRED, "audit", "--json")
        recs = [json.loads(line) for line in r.stdout.decode().splitlines()]
        self.assertEqual(recs, self.records())

    def test_since_relative_and_rfc_3339(self):
        self.write_log([self.rec(self.ago(days=3), cred_id="old"), self.rec(self.ago(hours=2), cred_id="mid"),
                        self.rec(self.ago(minutes=10), cred_id="new")])
        cases = {"1h": ["new"], "30m": ["new"], "90m": ["new"], "3h": ["mid", "new"], "2d": ["mid", "new"],
                 "4d": ["old", "mid", "new"], "1w": ["old", "mid", "new"], "600s": [],
                 self.ago(hours=3): ["mid", "new"],
                 (datetime.now(timezone(timedelta(hours=2))) - timedelta(minutes=30)).isoformat(): ["new"],
                 "2099-01-01T00:00:00Z": []}
        for since, want in cases.items():
            with self.subTest(since=since):
                r = self.ok(HIVE_CRED, "audit", "--json", "--since", since)
                self.assertEqual([json.loads(x)["id"] for x in r.stdout.decode().splitlines()], want)

    def test_bad_since_is_a_usage_error(self):
        self.write_log([self.rec(self.ago(minutes=1))])
        for bad in ("yesterday", "1x", "h", "-1h", "", "12", "2026-13-01T00:00:00Z", "99999999999999d"):
            with self.subTest(since=bad):
                r = self.check(self.cred("audit", "--since", bad), 2)
                self.assertEqual(r.stdout, b"")
                lines = self.stderr_lines(r)
                self.assertTrue(lines[0].startswith("hive-cred: error: --since wants an RFC 3339 time or a "
                                                    "duration back from now"), lines[0])
                self.assertTrue(lines[1].startswith("hint: e.g. --since 2026-03-01T12:00:00Z"), lines[1])

    def test_since_and_id_apply_to_audit_only(self):
        r = self.check(self.cred("list", "--since", "1h"), 2)
        self.assertIn(b"--since applies to 'audit' only", r.stderr)
        r = self.check(self.cred("audit", "extra"), 2)

    def test_id_filters_and_an_unknown_id_is_not_found(self):
        launch = json.dumps({"time": self.ago(minutes=5), "tool": "hive-run", "command": "run",
                             "event": "launch", "uid": 0, "pid": 9, "ppid": 1, "program": "/bin/true",
                             "args": 0, "credentials": [{"id": "aws", "keys": ["k"]}, {"id": "gh", "keys": ["t"]}]})
        self.write_log([self.rec(self.ago(days=2), cred_id="old"), launch, self.rec(self.ago(minutes=1))])
        r = self.ok(HIVE_CRED, "audit", "--json", "--id", "gh")
        self.assertEqual([json.loads(x)["event"] for x in r.stdout.decode().splitlines()], ["launch", "handout"])
        r = self.ok(HIVE_CRED, "audit", "--json", "--id", "aws")
        self.assertEqual(len(r.stdout.decode().splitlines()), 1)
        # named, but not since then: no records, and no error
        r = self.ok(HIVE_CRED, "audit", "--id", "old", "--since", "1h")
        self.assertEqual(r.stdout, b"")
        r = self.check(self.cred("audit", "--id", "nosuch"), 3)
        self.assertEqual(r.stdout, b"")
        self.assertEqual(self.stderr_lines(r)[0],
                         "hive-cred: error: no audit record names credential 'nosuch' in %s" % self.log)

    def test_damaged_lines_are_reported_not_fatal(self):
        good = self.rec(self.ago(minutes=1))
        self.write_log([good, "{not json", "[1, 2]", json.dumps({"event": "x"}), good])
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(good[:40])   # a cut-off last line
        r = self.ok(HIVE_CRED, "audit", "--json")
        self.assertEqual(len(r.stdout.decode().splitlines()), 2)
        err = r.stderr.decode()
        for n, why in ((2, "not JSON"), (3, "not a JSON object"), (4, "no time"), (6, "cut off")):
            self.assertIn("audit log %s: line %d is damaged (%s" % (self.log, n, why), err)

    def test_many_damaged_lines_are_counted(self):
        self.write_log(["garbage %d" % i for i in range(25)])
        r = self.ok(HIVE_CRED, "audit")
        warnings = r.stderr.decode().splitlines()
        self.assertEqual(len(warnings), 11)
        self.assertIn("25 damaged lines in all", warnings[-1])

    def test_control_characters_in_the_table_are_escaped(self):
        self.write_log([self.rec(self.ago(minutes=1), cred_id="evil\x1b[2J\nid")])
        r = self.ok(HIVE_CRED, "audit")
        self.assertIn(b"evil\\x1b[2J\\x0aid", r.stdout)
        self.assertNotIn(b"\x1b", r.stdout)

    def test_no_log_yet(self):
        r = self.ok(HIVE_CRED, "audit")
        self.assertEqual(r.stdout, b"")
        self.assertIn(b"no audit log at %s" % self.log.encode(), r.stderr)
        r = self.check(self.cred("audit", "--id", "gh"), 3)

    def test_a_symlink_or_a_directory_is_refused(self):
        target = os.path.join(self.home, "target")
        with open(target, "w") as f:
            f.write(self.rec(self.ago(minutes=1)) + "\n")
        os.symlink(target, self.log)
        r = self.check(self.cred("audit"), 6)
        self.assertEqual(r.stdout, b"")
        self.assertIn(b"is a symbolic link: refused", r.stderr)
        os.unlink(self.log)
        os.mkdir(self.log)
        r = self.check(self.cred("audit"), 6)
        self.assertIn(b"is not a regular file: refused", r.stderr)

    def test_an_unreadable_log_is_a_store_error(self):
        self.write_log([self.rec(self.ago(minutes=1))])
        os.chmod(self.log, 0)
        if os.access(self.log, os.R_OK):
            # root reads whatever the mode: make the log unreadable another way
            os.chmod(self.log, 0o600)
            os.rename(self.log, self.log + ".real")
            os.mkfifo(self.log, 0o600)
        r = self.check(self.cred("audit"), 6)
        self.assertEqual(r.stdout, b"")
        self.assertTrue(r.stderr.startswith(b"hive-cred: error: "), r.stderr)

    def test_a_log_others_can_write_is_read_with_a_warning(self):
        self.write_log([self.rec(self.ago(minutes=1))])
        os.chmod(self.log, 0o622)
        r = self.ok(HIVE_CRED, "audit", "--json")
        self.assertEqual(len(r.stdout.splitlines()), 1)
        self.assertIn(b"writable by group or others (mode 0622): its records may have been forged", r.stderr)


if __name__ == "__main__":
    hivetest.main(binaries=("hive-run", "hive-cred"), prerequisite=hivetest.missing_oauth_server)
