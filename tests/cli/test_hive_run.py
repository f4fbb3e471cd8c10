#!/usr/bin/env python3
"""End-to-end tests of the hive-run launcher.

Run:  python3 tests/cli/test_hive_run.py [unittest options]

Environment:
  HIVE_RUN      path of the hive-run binary
                (default: <repo>/build/launcher/hive-run)
  HIVE_CRED     path of the hive-cred binary
                (default: <repo>/build/launcher/hive-cred)
  HIVE_FIXTURE  path of the fixture Hive home written by Python Hive
                (default: <repo>/tests/data/fixtures/hive-home)

Standard library only, plus `cryptography` (for Fernet), to write stores
the way Python Hive writes them. Every test spawns the real binaries in a
temporary HIVE_HOME holding a copy of the fixture.
"""

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import unittest
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lib"))
import hivetest  # noqa: E402  (tests/lib/hivetest.py)

HIVE_RUN = hivetest.HIVE_RUN
HIVE_CRED = hivetest.HIVE_CRED
FIXTURE = hivetest.FIXTURE

TIMEOUT = hivetest.scaled(30)

# A child that reports what it got: its PID, its parent's PID, its argv and
# its environment as bytes (hex, so that any byte survives).
ENV_CHILD = [
    sys.executable, "-c",
    "import json, os, sys\n"
    "sys.stdout.write(json.dumps({'pid': os.getpid(), 'ppid': os.getppid(), 'argv': sys.argv[1:],\n"
    "    'env': {k.hex(): v.hex() for k, v in os.environb.items()}}))\n",
]

# every refused name of the README's table, and members of each refused prefix
UNSAFE_NAMES = [
    "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "DYLD_INSERT_LIBRARIES", "GCONV_PATH",
    "BASH_ENV", "ENV", "ZDOTDIR", "FPATH", "SHELLOPTS", "BASHOPTS", "BASH_LOADABLES_PATH",
    "BASH_FUNC_true", "BASH_FUNC_x", "PROMPT_COMMAND", "PS0", "PS1", "PS2", "PS3", "PS4",
    "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONINSPECT", "PYTHONBREAKPOINT", "PYTHONUSERBASE",
    "PYTHONPYCACHEPREFIX", "PYTHONPLATLIBDIR", "PYTHONWARNINGS",
    "PERL5OPT", "PERL5LIB", "PERLLIB", "PERL5DB", "RUBYOPT", "RUBYLIB", "LUA_INIT", "LUA_INIT_5_4",
    "NODE_OPTIONS", "NODE_PATH", "NODE_REPL_EXTERNAL_MODULE",
    "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH",
    "GIT_SSH", "GIT_SSH_COMMAND", "GIT_PROXY_COMMAND", "GIT_EXTERNAL_DIFF", "GIT_ASKPASS", "GIT_EXEC_PATH",
    "GIT_EDITOR", "GIT_SEQUENCE_EDITOR", "GIT_PAGER", "GIT_DIR", "GIT_TEMPLATE_DIR", "GIT_CONFIG",
    "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0",
    "GIT_CONFIG_PARAMETERS",
    "EDITOR", "VISUAL", "PAGER", "MANPAGER", "LESSOPEN", "LESSCLOSE", "BROWSER", "SHELL",
    "SSH_ASKPASS", "SUDO_ASKPASS"]

# fixture values
BRAVE = "BSA-test-0123456789abcdef"
ANTHROPIC = "sk-ant-test-0123456789"
ADEN = "aden_test_key_0123456789"
SMTP_USER = "alice@example.com"
SMTP_PASS = "p@ss w\u00f6rd \u2713 \U0001f511"
GITHUB_ACCESS = "gho_testAccessToken0123456789"
JWT = "eyJhbGciOiJIUzI1NiJ9.e30.test"


load_expected = hivetest.load_expected


def cred_plaintext(cred_id, keys, ctype="api_key"):
    """A credential as Python Hive's json.dumps writes it."""
    return json.dumps({
        "id": cred_id, "credential_type": ctype,
        "keys": {k: {"name": k, "value": v, "expires_at": None, "metadata": {}} for k, v in keys.items()},
        "provider_id": None, "last_refreshed": None, "auto_refresh": False, "last_used": None,
        "use_count": 0, "description": "", "tags": [],
        "created_at": "2026-03-01T12:00:00Z", "updated_at": "2026-03-01T12:00:00Z"})


class HiveRunTest(unittest.TestCase):
    """One temporary HIVE_HOME per test, holding a copy of the fixture;
    HIVE_CREDENTIAL_KEY removed."""

    maxDiff = None

    def setUp(self):
        self.tmp = hivetest.temp_dir(self, "hive-run-test-")
        self.home = os.path.join(self.tmp, "home")
        self.work = os.path.join(self.tmp, "work")
        os.mkdir(self.work)
        self.store = os.path.join(self.home, "credentials")
        self.cdir = os.path.join(self.store, "credentials")
        self.key_path = os.path.join(self.home, "secrets", "credential_key")
        self.expected = hivetest.copy_fixture(self.home)
        self.key = self.expected["key"]
        # every secret of the fixture, to check that none leaks
        self.secrets = set()
        for c in self.expected["credentials"]:
            for name, value in c["keys"].items():
                if not name.startswith("_") and name not in ("scope", "username"):
                    self.secrets.add(value)
        self.secrets.add(self.key)
        self.env = hivetest.clean_env(self.home)
        for name in UNSAFE_NAMES:
            self.env.pop(name, None)

    # --- helpers -------------------------------------------------------

    def run_hr(self, *args, env=None, extra_env=None, stdin=b""):
        e = dict(self.env if env is None else env)
        if extra_env:
            e.update(extra_env)
        return hivetest.run([HIVE_RUN, *args], e, stdin=stdin, timeout=TIMEOUT, cwd=self.work)

    def run_cred(self, *args, stdin=b""):
        r = hivetest.run([HIVE_CRED, *args], self.env, stdin=stdin, timeout=TIMEOUT, cwd=self.work)
        self.assertEqual(r.returncode, 0, "hive-cred %r: %r" % (args, r.stderr))
        return r

    def check(self, r, code, what=""):
        self.assertEqual(r.returncode, code,
                         "%s: exit %d, expected %d\nstdout: %r\nstderr: %r"
                         % (what or " ".join(map(str, r.args[1:]))[:300], r.returncode, code,
                            r.stdout[:2000], r.stderr[:2000]))
        return r

    def assert_secret_free(self, data, *extra):
        for s in list(self.secrets) + list(extra):
            b = s.encode("utf-8") if isinstance(s, str) else s
            self.assertNotIn(b, data, "a secret leaked: %r" % s[:40])

    def lines(self, data):
        return data.decode("utf-8", "replace").splitlines()

    def assert_error(self, r, code, message, exact=False):
        """Exit code, a first line 'hive-run: error: ...' holding message,
        only hint/hive-run lines after it, no secret on stderr."""
        self.check(r, code)
        lines = self.lines(r.stderr)
        errors = [ln for ln in lines if ln.startswith("hive-run: error: ")]
        self.assertEqual(len(errors), 1, "want one error line: %r" % lines)
        if exact:
            self.assertEqual(errors[0], "hive-run: error: " + message)
        else:
            self.assertIn(message, errors[0])
        for ln in lines:
            self.assertTrue(ln.startswith("hint: ") or ln.startswith("hive-run: "), ln)
        self.assert_secret_free(r.stderr)
        return lines

    def hints(self, r):
        return [ln for ln in self.lines(r.stderr) if ln.startswith("hint: ")]

    def child(self, *args, code=0, **kw):
        """Run ENV_CHILD under hive-run with the given options."""
        r = self.check(self.run_hr(*args, "--", *ENV_CHILD, **kw), code)
        out = json.loads(r.stdout)
        out["env"] = {bytes.fromhex(k): bytes.fromhex(v) for k, v in out["env"].items()}
        return r, out

    def child_env(self, *args, **kw):
        r, out = self.child(*args, **kw)
        self.assertEqual(r.stderr, b"")
        return out["env"]

    def expect_env(self, env, **set_vars):
        """What the child must see: the parent's environment minus
        HIVE_CREDENTIAL_KEY, with set_vars set."""
        want = {k.encode(): v.encode() for k, v in (env or self.env).items()}
        want.pop(b"HIVE_CREDENTIAL_KEY", None)
        for k, v in set_vars.items():
            want[k.encode()] = v.encode("utf-8")
        return want

    def shell(self, *opts, script, code=0, **kw):
        return self.check(self.run_hr(*opts, "--", "sh", "-c", script, **kw), code)

    def write(self, name, text, mode=0o600):
        path = os.path.join(self.work, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def write_cred(self, cred_id, keys):
        path = os.path.join(self.cdir, cred_id + ".enc")
        with open(path, "wb") as f:
            f.write(Fernet(self.key.encode()).encrypt(cred_plaintext(cred_id, keys).encode("utf-8")))
        os.chmod(path, 0o600)

    def marker(self):
        """A command that would create a file, and the file."""
        path = os.path.join(self.work, "ran-marker")
        return ["sh", "-c", 'touch "$0"', path], path


# --- sources ---------------------------------------------------------------

class TestSources(HiveRunTest):

    def test_e_templates(self):
        env = self.child_env(
            "-e", "DEFAULT={{brave_search}}",
            "-e", "KEYED={{smtp_login.password}}",
            "-e", "URL=https://x.test/?k={{anthropic.api_key}}&u={{smtp_login.username}}!",
            "-e", "PLAIN=no template here",
            "-e", "EMPTY=",
            "-e", "LONG_OPT={{aden_api_key}}")
        self.assertEqual(env, self.expect_env(
            None, DEFAULT=BRAVE, KEYED=SMTP_PASS,
            URL="https://x.test/?k=%s&u=%s!" % (ANTHROPIC, SMTP_USER),
            PLAIN="no template here", EMPTY="",
            LONG_OPT=ADEN))

    def test_env_long_option_and_equals_form(self):
        env = self.child_env("--env", "A={{brave_search}}", "--env=B={{anthropic}}", "-eC={{aden_api_key}}")
        self.assertEqual(env, self.expect_env(None, A=BRAVE, B=ANTHROPIC, C=ADEN))

    def test_later_e_wins(self):
        env = self.child_env("-e", "X={{brave_search}}", "-e", "Y=1", "-e", "X={{anthropic}}",
                             "-e", "X=last-{{aden_api_key}}")
        self.assertEqual(env, self.expect_env(None, X="last-" + ADEN, Y="1"))

    def test_value_overrides_inherited_plain_value(self):
        env = self.child_env("-e", "HOSTVAR={{brave_search}}", extra_env={"HOSTVAR": "old"})
        self.assertEqual(env[b"HOSTVAR"], BRAVE.encode())

    def test_env_file(self):
        path = self.write("app.env", "\n".join([
            "# a comment line",
            "   # an indented comment",
            "",
            "export EXPORTED={{brave_search}}",
            "UNQUOTED=plain words  # trailing comment",
            "SINGLE='a\\nb $HOME \"x\" # not a comment'",
            'DOUBLE="line1\\nline2\\t\\"q\\" \\\\ end"',
            'DTEMPLATE="Bearer {{anthropic.api_key}}\\n"',
            "TEMPLATED=user={{smtp_login.username}};pw={{smtp_login.password}}",
            "SPACED = {{aden_api_key}}",
            "EQUALS=a=b=c",
            'MULTI="first',
            'second"',
            "EMPTY=",
            "DUP=first",
            "DUP=second",
            "",
        ]))
        env = self.child_env("--env-file", path)
        self.assertEqual(env, self.expect_env(
            None, EXPORTED=BRAVE, UNQUOTED="plain words", SINGLE='a\\nb $HOME "x" # not a comment',
            DOUBLE='line1\nline2\t"q" \\ end', DTEMPLATE="Bearer %s\n" % ANTHROPIC,
            TEMPLATED="user=%s;pw=%s" % (SMTP_USER, SMTP_PASS), SPACED=ADEN, EQUALS="a=b=c",
            MULTI="first\nsecond", EMPTY="", DUP="second"))

    def test_env_file_bad_statement_is_skipped_with_a_warning(self):
        # python-dotenv skips the statement alone, warning with its line
        path = self.write("bad.env", "# ok\nA=1\nthis-is-not-a-line Zq9SECRETISH {{brave_search}}\nB=2\n")
        r, out = self.child("--env-file", path)
        self.assertEqual(out["env"][b"A"], b"1")
        self.assertEqual(out["env"][b"B"], b"2")
        lines = self.lines(r.stderr)
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("hive-run: warning: --env-file %s: " % path), lines)
        self.assertIn("line 3", lines[0])
        self.assertNotIn(b"Zq9SECRETISH", r.stderr, "the line's text is shown")
        self.assertNotIn(b"this-is-not-a-line", r.stderr)

    def test_env_file_unterminated_quote_skips_its_line(self):
        path = self.write("bad.env", "A=1\nB=\"Zq9SECRETISH\nC=3\n")
        r, out = self.child("--env-file", path)
        self.assertNotIn(b"B", out["env"])
        self.assertEqual(out["env"][b"C"], b"3")
        self.assertIn(b"line 2", r.stderr)
        self.assertNotIn(b"Zq9SECRETISH", r.stderr)

    def test_env_file_expands_variables_as_python_dotenv(self):
        path = self.write("vars.env", "\n".join([
            "PREFIX=Bearer",
            "AUTH=${PREFIX} {{brave_search}}",
            "FROM_ENV=${HIVE_TEST_REGION}-x",
            "DEFAULTED=${HIVE_TEST_UNSET:-fallback}",
            "SINGLE='${PREFIX}'",
            "LITERAL=$PREFIX",
            "",
        ]))
        env = self.child_env("--env-file", path, extra_env={"HIVE_TEST_REGION": "eu"})
        self.assertEqual(env[b"AUTH"], ("Bearer " + BRAVE).encode())
        self.assertEqual(env[b"FROM_ENV"], b"eu-x")
        self.assertEqual(env[b"DEFAULTED"], b"fallback")
        self.assertEqual(env[b"SINGLE"], b"Bearer")
        self.assertEqual(env[b"LITERAL"], b"$PREFIX")

    def test_env_file_never_expands_the_store_key(self):
        path = self.write("key.env", "LEAK=${HIVE_CREDENTIAL_KEY}\n")
        cmd, marker = self.marker()
        r = self.run_hr("--env-file", path, "--", *cmd)
        self.assert_error(r, 125, "HIVE_CREDENTIAL_KEY")
        self.assertNotIn(self.key.encode(), r.stderr + r.stdout)
        self.assertFalse(os.path.exists(marker))

    def test_env_file_takes_no_template_from_the_environment(self):
        # a CI variable someone else controls must not pull a secret into the program
        path = self.write("ci.env", "TITLE=${HIVE_TEST_PR_TITLE}\n")
        cmd, marker = self.marker()
        r = self.run_hr("--env-file", path, "--", *cmd, extra_env={"HIVE_TEST_PR_TITLE": "x {{brave_search}}"})
        self.assert_error(r, 125, "HIVE_TEST_PR_TITLE")
        self.assertFalse(os.path.exists(marker))

    def test_env_file_name_alone_sets_nothing(self):
        path = self.write("alone.env", "LONELY\nA=${LONELY:-d}\n")
        env = self.child_env("--env-file", path)
        self.assertNotIn(b"LONELY", env)
        self.assertEqual(env[b"A"], b"")

    def test_env_file_not_utf8_fails(self):
        path = os.path.join(self.work, "latin1.env")
        with open(path, "wb") as f:
            f.write(b"A=caf\xe9\n")
        r = self.run_hr("--env-file", path, "--", "true")
        self.assert_error(r, 125, "UTF-8")

    def test_env_file_missing(self):
        r = self.run_hr("--env-file", os.path.join(self.work, "nope.env"), "--", "true")
        self.assert_error(r, 125, "nope.env")

    def test_usage(self):
        self.run_cred("usage", "add", "brave_search", "--env", "BRAVE_API_KEY={{brave_search.api_key}}",
                      "--env", "BRAVE_HEADER=X-Token: {{brave_search}}")
        env = self.child_env("--usage", "brave_search")
        self.assertEqual(env, self.expect_env(None, BRAVE_API_KEY=BRAVE, BRAVE_HEADER="X-Token: " + BRAVE))

    def test_usage_unknown(self):
        cmd, marker = self.marker()
        r = self.run_hr("--usage", "nope", "--", *cmd)
        self.assert_error(r, 125, "No usage spec registered for 'nope'")
        self.assertFalse(os.path.exists(marker))

    def test_inherited_templates(self):
        extra = {"MYTOKEN": "{{brave_search}}", "MYHEADER": "Bearer {{anthropic.api_key}}",
                 "PLAINVAR": "no template", "NOTATEMPLATE": "{{ brave_search }} {{x.y.z}} {{",
                 "BRACES": "{}{{}}", "RENDERED_PLAIN": "no template either"}
        env = dict(self.env, **extra)
        got = self.child_env("--render-env", "MYTOKEN", "--render-env", "MYHEADER",
                             "--render-env", "RENDERED_PLAIN", env=env)
        self.assertEqual(got, self.expect_env(env, MYTOKEN=BRAVE, MYHEADER="Bearer " + ANTHROPIC))

    def test_precedence(self):
        self.run_cred("usage", "add", "aden_api_key", "--env", "X=usage-{{aden_api_key}}",
                      "--env", "Y=usage-{{aden_api_key}}", "--env", "Z=usage-{{aden_api_key}}")
        envfile = self.write("p.env", "X=file-{{anthropic}}\nY=file-{{anthropic}}\n")
        parent = dict(self.env, X="inh-{{smtp_login.username}}", Y="inh-{{smtp_login.username}}",
                      Z="inh-{{smtp_login.username}}", W="inh-{{smtp_login.username}}")
        want = self.expect_env(parent, X="flag-" + BRAVE, Y="file-" + ANTHROPIC, Z="usage-" + ADEN,
                               W="inh-" + SMTP_USER)
        render = ["--render-env", "X", "--render-env", "Y", "--render-env", "Z", "--render-env", "W"]
        orders = [
            ["-e", "X=flag-{{brave_search}}", "--env-file", envfile, "--usage", "aden_api_key"],
            ["--usage", "aden_api_key", "--env-file", envfile, "-e", "X=flag-{{brave_search}}"],
            ["--env-file", envfile, "-e", "X=flag-{{brave_search}}", "--usage", "aden_api_key"],
        ]
        for opts in orders:
            with self.subTest(opts=opts):
                self.assertEqual(self.child_env(*opts, *render, env=parent), want)
                self.assertEqual(self.child_env(*render, *opts, env=parent), want)

    def test_same_kind_in_order_given(self):
        self.run_cred("usage", "add", "brave_search", "--env", "U={{brave_search}}")
        self.run_cred("usage", "add", "anthropic", "--env", "U={{anthropic}}")
        f1 = self.write("1.env", "F=one\n")
        f2 = self.write("2.env", "F=two\n")
        env = self.child_env("--usage", "brave_search", "--env-file", f2, "--usage", "anthropic",
                             "--env-file", f1)
        self.assertEqual(env[b"U"], ANTHROPIC.encode())
        self.assertEqual(env[b"F"], b"one")


# --- inherited variables: rendered only when named; -i and --keep ----------

class TestInherited(HiveRunTest):
    """Issue 12 item 10, issue 16 item 4: a template in an inherited
    variable is rendered only when the user names the variable."""

    def test_ci_variables_are_not_rendered(self):
        # in CI whoever opens a pull request controls its title and branch name
        ci = {"GITHUB_HEAD_REF": "{{github_oauth}}", "PR_TITLE": "fix: leak {{brave_search.api_key}} please",
              "PLAIN": "x"}
        parent = dict(self.env, **ci)
        r, out = self.child("-e", "A={{anthropic}}", env=parent)
        self.assertEqual(out["env"], self.expect_env(parent, A=ANTHROPIC))
        self.assertEqual(out["env"][b"PR_TITLE"], ci["PR_TITLE"].encode())
        self.assert_secret_free(r.stdout.replace(ANTHROPIC.encode(), b"") + r.stderr)
        # one hint, naming both, saying how to render one
        self.assertEqual(self.lines(r.stderr), self.hints(r), r.stderr)
        self.assertEqual(len(self.hints(r)), 1, r.stderr)
        hint = self.hints(r)[0]
        for name in ["GITHUB_HEAD_REF", "PR_TITLE", "--render-env"]:
            self.assertIn(name, hint)
        self.assertNotIn("PLAIN", hint)
        self.assertNotIn("{{", hint, "the hint shows a value")

    def test_hint_for_one_names_the_option(self):
        r, out = self.child(extra_env={"GH_TOKEN": "{{github_oauth}}"})
        self.assertEqual(out["env"][b"GH_TOKEN"], b"{{github_oauth}}")
        self.assertEqual(self.hints(r), ["hint: GH_TOKEN holds a template, passed as is: inherited variables "
                                         "are rendered only when named (--render-env GH_TOKEN)"])

    def test_hint_lists_a_few(self):
        extra = {"T%d" % i: "{{brave_search}}" for i in range(7)}
        r, out = self.child(extra_env=extra)
        hints = self.hints(r)
        self.assertEqual(len(hints), 1, r.stderr)
        self.assertIn(", ...", hints[0])
        self.assertLess(len(hints[0]), 300)

    def test_no_hint_when_overridden_or_rendered(self):
        r, out = self.child("-e", "GH_TOKEN={{brave_search}}", "--render-env", "OTHER",
                            extra_env={"GH_TOKEN": "{{github_oauth}}", "OTHER": "{{anthropic}}"})
        self.assertEqual(out["env"][b"GH_TOKEN"], BRAVE.encode())
        self.assertEqual(out["env"][b"OTHER"], ANTHROPIC.encode())
        self.assertEqual(r.stderr, b"")

    def test_render_env_only_the_named(self):
        parent = dict(self.env, A="{{brave_search}}", B="{{anthropic}}")
        r, out = self.child("--render-env", "B", env=parent)
        self.assertEqual(out["env"], self.expect_env(parent, B=ANTHROPIC))
        self.assertEqual(len(self.hints(r)), 1, r.stderr)
        self.assertIn("--render-env A", self.hints(r)[0])

    def test_render_env_missing_variable(self):
        cmd, marker = self.marker()
        r = self.run_hr("--render-env", "GH_TOKEN", "--", *cmd)
        self.assert_error(r, 125, "--render-env GH_TOKEN: there is no GH_TOKEN in the environment")
        self.assertTrue(self.hints(r))
        self.assertFalse(os.path.exists(marker))

    def test_render_env_takes_names_not_patterns(self):
        for bad in ["GH_*", "*", "GH_?", "[A-Z]*", "A B", "1A", "", "A=B", "BASH_FUNC_f%%"]:
            with self.subTest(bad=bad):
                cmd, marker = self.marker()
                r = self.run_hr("--render-env", bad, "--", *cmd, extra_env={"GH_TOKEN": "{{brave_search}}"})
                lines = self.assert_error(r, 125, "invalid variable name")
                self.assertIn("--render-env", lines[0])
                self.assertIn("letters, digits and '_'", lines[0])
                self.assertTrue(self.hints(r))
                if "*" in bad or "?" in bad:
                    self.assertIn("patterns are not accepted", self.hints(r)[0])
                self.assertFalse(os.path.exists(marker))

    def test_render_env_failure_names_the_variable_and_its_origin(self):
        r = self.run_hr("--render-env", "DEPLOY_TOKEN", "--", "true", extra_env={"DEPLOY_TOKEN": "{{nope}}"})
        lines = self.assert_error(r, 125, "DEPLOY_TOKEN (from the environment, --render-env): "
                                          "Credential 'nope' not found", exact=True)
        self.assertTrue(self.hints(r))

    def test_render_env_refused_name(self):
        r = self.run_hr("--render-env", "NODE_OPTIONS", "--", "true",
                        extra_env={"NODE_OPTIONS": "--require={{brave_search}}"})
        self.assert_error(r, 125, "refusing to set NODE_OPTIONS (from the environment, --render-env)")
        # not named: not hive-run's to set, passed as it is
        r, out = self.child(extra_env={"NODE_OPTIONS": "--title={{brave_search}}"})
        self.assertEqual(out["env"][b"NODE_OPTIONS"], b"--title={{brave_search}}")

    def test_render_env_key_refused(self):
        for opt in ["--render-env", "--keep"]:
            with self.subTest(opt=opt):
                r = self.run_hr("-i", opt, "HIVE_CREDENTIAL_KEY", "--", "true",
                                extra_env={"HIVE_CREDENTIAL_KEY": self.key})
                self.assert_error(r, 125, "HIVE_CREDENTIAL_KEY is never passed to the program")

    def bare_env(self, *args, env):
        """The environment exactly as execve gave it (env -0: no runtime
        adds its own variables, as Python does with LC_CTYPE)."""
        r = self.check(self.run_hr(*args, "--", "env", "-0", env=env), 0)
        return r, dict(e.split(b"=", 1) for e in r.stdout.split(b"\0") if e)

    def test_ignore_environment(self):
        parent = dict(self.env, SOMETHING="x", TOKEN_T="{{brave_search}}", HIVE_CREDENTIAL_KEY=self.key)
        for opt in ["-i", "--ignore-environment"]:
            with self.subTest(opt=opt):
                r, env = self.bare_env(opt, "-e", "A={{brave_search}}", "--env-file",
                                       self.write("i.env", "F=1\n"), env=parent)
                self.assertEqual(env, {b"A": BRAVE.encode(), b"F": b"1"})
                self.assertEqual(r.stderr, b"")

    def test_ignore_environment_keep(self):
        parent = dict(self.env, KEEP_ME="kept", DROP_ME="dropped", T="{{anthropic}}", U="{{brave_search}}")
        r, env = self.bare_env("-i", "--keep", "KEEP_ME", "--keep", "ABSENT", "--keep", "U", "--render-env", "T",
                               "-e", "A=1", env=parent)
        self.assertEqual(env, {b"KEEP_ME": b"kept", b"T": ANTHROPIC.encode(), b"A": b"1",
                               b"U": b"{{brave_search}}"})
        self.assertEqual(len(self.hints(r)), 1, r.stderr)   # U: kept, holds a template, not rendered
        self.assertIn("--render-env U", self.hints(r)[0])
        # not kept: not passed, so nothing to say
        r, env = self.bare_env("-i", "-e", "A=1", env=parent)
        self.assertEqual(env, {b"A": b"1"})
        self.assertEqual(r.stderr, b"")

    def test_ignore_environment_finds_the_program(self):
        # no PATH in the program's environment: the default path, as env -i does
        r = self.check(self.run_hr("-i", "-e", "X={{anthropic}}", "--", "sh", "-c", 'printf %s "$X"'), 0)
        self.assertEqual(r.stdout, ANTHROPIC.encode())

    def test_keep_needs_i(self):
        cmd, marker = self.marker()
        r = self.run_hr("--keep", "HOME", "--", *cmd)
        self.assert_error(r, 125, "--keep goes with -i")
        self.assertFalse(os.path.exists(marker))
        r = self.run_hr("-i", "--keep", "A*", "--", "true")
        self.assert_error(r, 125, "invalid variable name 'A*' (--keep)")

    def test_dry_run_says_what_is_not_rendered(self):
        parent = dict(self.env, PR_TITLE="x {{brave_search}}", R="{{anthropic}}", HIVE_CREDENTIAL_KEY=self.key)
        cmd, marker = self.marker()
        r = self.check(self.run_hr("--dry-run", "--render-env", "R", "--", *cmd, env=parent), 0)
        self.assertFalse(os.path.exists(marker))
        out = r.stdout.decode()
        self.assertIn("PR_TITLE: holds a template, passed as is (inherited; --render-env PR_TITLE renders it)", out)
        self.assertIn("R=******** (inherited from the environment, --render-env)", out)
        self.assertEqual(r.stderr, b"")
        self.assert_secret_free(r.stdout)
        r = self.check(self.run_hr("--dry-run", "--json", "--render-env", "R", "--", *cmd, env=parent), 0)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["not_rendered"], ["PR_TITLE"])
        self.assertEqual(doc["environment"], "inherited")
        self.assertEqual(doc["kept"], [])
        self.assertEqual([(v["name"], v["source"]) for v in doc["variables"]], [("R", "inherited")])
        r = self.check(self.run_hr("--dry-run", "--json", "-i", "--keep", "HOME", "--keep", "NOPE_X",
                                   "--keep", "PR_TITLE", "--", *cmd, env=parent), 0)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["environment"], "empty")
        self.assertEqual(doc["kept"], ["HOME", "PR_TITLE"])
        self.assertEqual(doc["not_rendered"], ["PR_TITLE"])
        r = self.check(self.run_hr("--dry-run", "-i", "--keep", "HOME", "--", *cmd, env=parent), 0)
        self.assertIn("environment: empty (-i); kept: HOME", r.stdout.decode())


# --- variable names ------------------------------------------------------------

class TestNames(HiveRunTest):
    """Issue 16 item 7: names follow the shell's rule, from every source."""

    def test_invalid_names_from_e(self):
        for name, better in [("BAD NAME", "BAD_NAME"), ("1X", "_1X"), ("A-B", "A_B"), ("A.B", "A_B"),
                             (" LD_PRELOAD", None), ("LD_PRELOAD ", None), ("LD_PRELOAD\t", None),
                             ("LD_PRELOAD\uff1dx", None), ("caf\u00e9", None), ("X\x1b[31m", None)]:
            with self.subTest(name=name):
                cmd, marker = self.marker()
                if os.path.exists(marker):
                    os.remove(marker)   # left by a name that failed this test
                r = self.run_hr("-e", name + "={{brave_search}}", "--", *cmd)
                lines = self.assert_error(r, 125, "invalid variable name")
                self.assertIn("letters, digits and '_', not starting with a digit", lines[0])
                self.assertNotIn("\x1b", r.stderr.decode("utf-8", "replace"))
                hints = self.hints(r)
                self.assertEqual(len(hints), 1, r.stderr)
                if better:
                    self.assertEqual(hints[0], "hint: a valid name would be " + better)
                self.assertFalse(os.path.exists(marker))

    def test_valid_names_pass(self):
        env = self.child_env("-e", "_=1", "-e", "_1=2", "-e", "a=3", "-e", "Z9_z=4", "-e", "X=a=b")
        for k, v in [(b"_1", b"2"), (b"a", b"3"), (b"Z9_z", b"4"), (b"X", b"a=b")]:
            self.assertEqual(env[k], v)

    def test_invalid_names_from_env_file_and_usage(self):
        path = self.write("dots.env", "OK=1\nspring.password={{brave_search}}\n")
        r = self.run_hr("--env-file", path, "--", "true")
        self.assert_error(r, 125, "invalid variable name 'spring.password' (%s)" % path)
        usage = os.path.join(self.store, "usage.json")
        self.run_cred("usage", "add", "brave_search", "--env", "GOOD={{brave_search}}")
        with open(usage, encoding="utf-8") as f:
            doc = json.load(f)
        doc["specs"]["brave_search"]["env"]["BASH_FUNC_true%%"] = "() { echo PWNED; }"
        with open(usage, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        r = self.run_hr("--usage", "brave_search", "--", "bash", "-c", "true")
        self.assert_error(r, 125, "invalid variable name 'BASH_FUNC_true%%' (usage brave_search)")
        self.assertNotIn(b"PWNED", r.stdout)


# --- the child's environment, argv, PID and exit status --------------------

class TestTemplateTypos(HiveRunTest):
    """A value holding '{{' that is not a template is an error naming the
    variable, its source and the column, never text given to the program."""

    def test_typos_fail_naming_variable_source_and_column(self):
        cases = [("{{ brave_search }}", "column 1", "space"), ("{{brave_search", "column 1", "no closing"),
                 ("{{brave_search.}}", "column 1", "key must follow"),
                 ("Bearer {{brave_search/}}", "column 8", "alias must follow"),
                 ("x{{brave_search}", "column 2", "single '}'")]
        for value, column, why in cases:
            with self.subTest(value=value):
                cmd, marker = self.marker()
                r = self.run_hr("-e", "X=" + value, "--", *cmd)
                lines = self.assert_error(r, 125, "X (-e)")
                self.assertIn(column, lines[0])
                self.assertIn(why, lines[0])
                self.assertTrue(self.hints(r), lines)
                self.assertFalse(os.path.exists(marker))

    def test_typo_in_an_env_file_names_the_file(self):
        path = self.write("typo.env", "GOOD={{brave_search}}\nBAD='{{ anthropic}}'\n")
        r = self.run_hr("--env-file", path, "--", "true")
        lines = self.assert_error(r, 125, "BAD (%s)" % path)
        self.assertIn("column 1", lines[0])

    def test_typo_in_a_usage_spec_names_the_spec(self):
        self.run_cred("usage", "add", "brave_search", "--env", "B={{brave_search.}}")
        r = self.run_hr("--usage", "brave_search", "--", "true")
        self.assert_error(r, 125, "B (usage brave_search)")

    def test_braces_that_hold_a_template_still_work(self):
        env = self.child_env("-e", "J={\"k\": \"{{brave_search}}\"}", "-e", "T={{{brave_search}}}")
        self.assertEqual(env[b"J"], ('{"k": "%s"}' % BRAVE).encode())
        self.assertEqual(env[b"T"], ("{%s}" % BRAVE).encode())

    def test_literal_braces_come_from_the_environment(self):
        env = self.child_env(extra_env={"FMT": "{{.Names}}"})
        self.assertEqual(env[b"FMT"], b"{{.Names}}")

    def test_provider_slash_alias_names_a_local_account(self):
        env = self.child_env("-e", "W={{brave_search/work}}", "-e", "A={{brave_search/work._alias}}")
        self.assertEqual(env[b"W"], b"BSA-work-account-key")
        self.assertEqual(env[b"A"], b"work")


class TestOpenModes(HiveRunTest):

    def test_an_open_store_is_said_once_with_the_fix(self):
        # a store copied with cp -r under umask 022: every path open to others
        for top, dirs, files in os.walk(os.path.join(self.home, "credentials")):
            os.chmod(top, 0o755)
            for f in files:
                os.chmod(os.path.join(top, f), 0o644)
        r = self.shell("-e", "A={{brave_search}}", "-e", "B={{anthropic}}", "-e", "C={{smtp_login.username}}",
                       script='printf %s "$A"')
        self.assertEqual(r.stdout, BRAVE.encode())
        lines = self.lines(r.stderr)
        warnings = [ln for ln in lines if ln.startswith("hive-run: warning: ")]
        self.assertEqual(len(warnings), 1, lines)
        self.assertIn("group or others", warnings[0])
        self.assertEqual([ln for ln in lines if ln.startswith("hint: ")],
                         ["hint: hive-cred doctor --fix makes its directories 0700 and its files 0600"])


class TestChild(HiveRunTest):

    def test_key_never_reaches_child(self):
        parent = dict(self.env, HIVE_CREDENTIAL_KEY=self.key, SOMETHING_ELSE="kept", EMPTYVAR="")
        env = self.child_env("-e", "A={{brave_search}}", env=parent)
        self.assertNotIn(b"HIVE_CREDENTIAL_KEY", env)
        self.assertEqual(env, self.expect_env(parent, A=BRAVE))
        self.assertEqual(env[b"SOMETHING_ELSE"], b"kept")
        self.assertEqual(env[b"EMPTYVAR"], b"")
        # also when nothing is set
        env = self.child_env(env=parent)
        self.assertEqual(env, self.expect_env(parent))
        self.assertNotIn(self.key.encode(), b"".join(env.values()))

    def test_exact_values_with_sh(self):
        r = self.shell("-e", "X={{smtp_login.password}}", script='printf %s "$X"')
        self.assertEqual(r.stdout, SMTP_PASS.encode("utf-8"))
        self.assertEqual(r.stderr, b"")

    def test_exit_status(self):
        for script, code in [("exit 0", 0), ("exit 3", 3), ("exit 1", 1), ("exit 125", 125),
                             ("exit 255", 255)]:
            with self.subTest(script=script):
                r = self.shell("-e", "A={{brave_search}}", script=script, code=code)
                self.assertEqual(r.stderr, b"")

    def test_killed_by_signal(self):
        r = self.shell("-e", "A={{brave_search}}", script="kill -TERM $$", code=-signal.SIGTERM)
        self.assertEqual(r.stderr, b"")
        self.shell(script="kill -KILL $$", code=-signal.SIGKILL)

    def test_pid_is_the_programs(self):
        p = subprocess.Popen([HIVE_RUN, "-e", "A={{brave_search}}", "--", *ENV_CHILD],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env, cwd=self.work)
        out, err = p.communicate(timeout=TIMEOUT)
        self.assertEqual(p.returncode, 0, err)
        got = json.loads(out)
        self.assertEqual(got["pid"], p.pid, "hive-run did not exec the program in its own process")
        self.assertEqual(got["ppid"], os.getpid())

    def test_options_after_command_are_the_programs(self):
        script = 'printf "%s|%s|%s\\n" "$0" "$1" "$X"'
        r = self.check(self.run_hr("--", "sh", "-c", script, "-e", "x"), 0)
        self.assertEqual(r.stdout, b"-e|x|\n")
        # '--' is optional: parsing stops at the first non-option
        r = self.check(self.run_hr("-e", "X={{brave_search}}", "sh", "-c", script, "-e", "Y=2"), 0)
        self.assertEqual(r.stdout, ("-e|Y=2|%s\n" % BRAVE).encode())
        r = self.check(self.run_hr("sh", "-c", script, "--dry-run", "--help"), 0)
        self.assertEqual(r.stdout, b"--dry-run|--help|\n")
        r = self.check(self.run_hr("--", *ENV_CHILD, "-e", "Z=1", "--", "--usage"), 0)
        got = json.loads(r.stdout)
        self.assertEqual(got["argv"], ["-e", "Z=1", "--", "--usage"])

    def test_template_in_arguments_not_rendered(self):
        for arg in ["{{brave_search}}", "--token={{brave_search.api_key}}"]:
            with self.subTest(arg=arg):
                r = self.check(self.run_hr("-e", "A=1", "--", "sh", "-c", 'printf %s "$1"', "sh", arg), 0)
                self.assertEqual(r.stdout, arg.encode())
                hints = self.hints(r)
                self.assertEqual(len(hints), 1, r.stderr)
                self.assertIn("process list", hints[0])
                self.assertEqual(len(self.lines(r.stderr)), 1, r.stderr)
                self.assert_secret_free(r.stdout + r.stderr)
        # no hint without a template
        r = self.check(self.run_hr("--", "sh", "-c", 'printf %s "$1"', "sh", "{{ not one }}"), 0)
        self.assertEqual(r.stderr, b"")

    def test_program_found_through_path_of_child(self):
        bindir = os.path.join(self.work, "bin")
        os.mkdir(bindir)
        tool = os.path.join(bindir, "my-tool")
        with open(tool, "w") as f:
            f.write('#!/bin/sh\nprintf "%s" "$TOK"\nexit 4\n')
        os.chmod(tool, 0o700)
        r = self.check(self.run_hr("-e", "TOK={{anthropic}}", "my-tool",
                                   extra_env={"PATH": bindir + ":" + self.env.get("PATH", "/usr/bin:/bin")}), 4)
        self.assertEqual(r.stdout, ANTHROPIC.encode())


# --- not found, not executable --------------------------------------------

class TestExecFailures(HiveRunTest):

    def assert_exec_error(self, r, code, name):
        lines = self.assert_error(r, code, name)
        self.assertEqual(len([ln for ln in lines if ln.startswith("hive-run: ")]), 1, lines)
        self.assertTrue(self.hints(r), "no hint: %r" % r.stderr)
        self.assertEqual(r.stdout, b"")

    def test_not_found(self):
        for cmd in ["no-such-cmd-xyz", "./missing", os.path.join(self.work, "nope", "x")]:
            with self.subTest(cmd=cmd):
                r = self.run_hr("-e", "A={{brave_search}}", "--", cmd, "arg")
                self.assert_exec_error(r, 127, cmd)

    def test_not_executable_file(self):
        self.write("script.sh", "#!/bin/sh\necho ran\n", mode=0o600)
        for cmd in ["./script.sh", os.path.join(self.work, "script.sh")]:
            with self.subTest(cmd=cmd):
                r = self.run_hr("-e", "A={{brave_search}}", "--", cmd)
                self.assert_exec_error(r, 126, cmd)

    def test_not_executable_in_path(self):
        bindir = os.path.join(self.work, "bin")
        os.mkdir(bindir)
        tool = os.path.join(bindir, "noexec-tool")
        with open(tool, "w") as f:
            f.write("#!/bin/sh\necho ran\n")
        os.chmod(tool, 0o600)
        r = self.run_hr("noexec-tool", extra_env={"PATH": bindir + ":/usr/bin:/bin"})
        self.assert_exec_error(r, 126, "noexec-tool")

    def test_directory(self):
        os.mkdir(os.path.join(self.work, "adir"))
        for cmd in ["./adir", self.work]:
            with self.subTest(cmd=cmd):
                r = self.run_hr("--", cmd)
                self.assert_exec_error(r, 126, cmd)


# --- hive-run's own failures -----------------------------------------------

class TestFailures(HiveRunTest):

    def assert_fails(self, args, message, exact=False, env=None, extra_env=None):
        cmd, marker = self.marker()
        r = self.run_hr(*args, "--", *cmd, env=env, extra_env=extra_env)
        lines = self.assert_error(r, 125, message, exact=exact)
        self.assertFalse(os.path.exists(marker), "the program ran")
        self.assertEqual(r.stdout, b"")
        return r, lines

    def test_missing_credential(self):
        self.assert_fails(["-e", "A={{brave_search}}", "-e", "B=x{{nope}}y"], "Credential 'nope' not found")

    def test_missing_key(self):
        self.assert_fails(["-e", "A={{brave_search.nokey}}"],
                          "Key 'nokey' not found in credential 'brave_search'")

    def test_missing_in_env_file_usage_and_inherited(self):
        path = self.write("m.env", "A={{nope_file}}\n")
        self.assert_fails(["--env-file", path], "Credential 'nope_file' not found")
        self.run_cred("usage", "add", "nope_usage", "--env", "B={{nope_usage.k}}")
        self.assert_fails(["--usage", "nope_usage"], "Credential 'nope_usage' not found")
        self.assert_fails(["--render-env", "C"], "C (from the environment, --render-env): Credential 'nope_inh' "
                          "not found", extra_env={"C": "{{nope_inh}}"})

    def test_no_key(self):
        os.remove(self.key_path)
        r, lines = self.assert_fails(["-e", "A={{brave_search}}"], "key")
        self.assertTrue(self.hints(r), r.stderr)

    def test_wrong_key(self):
        other = Fernet.generate_key().decode()
        self.assert_fails(["-e", "A={{brave_search}}"], "brave_search",
                          extra_env={"HIVE_CREDENTIAL_KEY": other})

    def test_env_key_used(self):
        os.remove(self.key_path)
        env = self.child_env("-e", "A={{brave_search}}", extra_env={"HIVE_CREDENTIAL_KEY": self.key})
        self.assertEqual(env[b"A"], BRAVE.encode())
        self.assertNotIn(b"HIVE_CREDENTIAL_KEY", env)

    def test_e_without_equals(self):
        self.assert_fails(["-e", "NOEQUALS"], "NOEQUALS")

    def test_e_empty_name(self):
        self.assert_fails(["-e", "={{brave_search}}"], "")

    def test_option_needs_value(self):
        r = self.run_hr("-e")
        self.assert_error(r, 125, "-e")

    def test_no_command(self):
        for args in [[], ["--"], ["-e", "A={{brave_search}}"], ["-e", "A=1", "--"]]:
            with self.subTest(args=args):
                r = self.run_hr(*args)
                self.assert_error(r, 125, "no command")
                self.assertEqual(r.stdout, b"")

    def test_unknown_option(self):
        for opt in ["--bogus", "-x", "--bogus=1"]:
            with self.subTest(opt=opt):
                cmd, marker = self.marker()
                r = self.run_hr(opt, "--", *cmd)
                self.assert_error(r, 125, "unknown option")
                self.assertIn(opt.split("=")[0].encode(), r.stderr)
                self.assertFalse(os.path.exists(marker))

    def test_json_without_dry_run(self):
        self.assert_fails(["--json", "-e", "A={{brave_search}}"], "--json")


# --- refused names ----------------------------------------------------------

class TestUnsafeNames(HiveRunTest):

    def test_each_refused(self):
        for name in UNSAFE_NAMES + ["DYLD_LIBRARY_PATH", "LD_PRELOAD_EXTRA", "GIT_CONFIG_KEY_12"]:
            with self.subTest(name=name):
                cmd, marker = self.marker()
                if os.path.exists(marker):
                    os.remove(marker)   # left by a name that failed this test
                r = self.run_hr("-e", name + "={{brave_search}}", "--", *cmd)
                self.assert_error(r, 125, name)
                self.assertTrue(any("--allow-unsafe-env " + name in h for h in self.hints(r)), r.stderr)
                self.assertFalse(os.path.exists(marker))

    def test_refused_from_env_file_and_usage(self):
        path = self.write("u.env", "A=1\nLD_PRELOAD={{brave_search}}\n")
        r = self.run_hr("--env-file", path, "--", "true")
        self.assert_error(r, 125, "LD_PRELOAD")
        self.assertTrue(any("--allow-unsafe-env LD_PRELOAD" in h for h in self.hints(r)), r.stderr)
        self.run_cred("usage", "add", "brave_search", "--env", "NODE_OPTIONS={{brave_search}}")
        r = self.run_hr("--usage", "brave_search", "--", "true")
        self.assert_error(r, 125, "NODE_OPTIONS")
        self.assertTrue(any("--allow-unsafe-env NODE_OPTIONS" in h for h in self.hints(r)), r.stderr)

    def test_allowed(self):
        r = self.shell("--allow-unsafe-env", "NODE_OPTIONS", "-e", "NODE_OPTIONS=--title={{brave_search}}",
                       script='printf %s "$NODE_OPTIONS"')
        self.assertEqual(r.stdout, ("--title=" + BRAVE).encode())
        self.assertEqual(r.stderr, b"")
        r = self.shell("-e", "PYTHONSTARTUP=/nonexistent/{{anthropic}}", "--allow-unsafe-env", "PYTHONSTARTUP",
                       "--allow-unsafe-env", "GIT_SSH_COMMAND", "-e", "GIT_SSH_COMMAND=ssh",
                       script='printf "%s|%s" "$PYTHONSTARTUP" "$GIT_SSH_COMMAND"')
        self.assertEqual(r.stdout, ("/nonexistent/%s|ssh" % ANTHROPIC).encode())

    def test_allowing_one_does_not_allow_another(self):
        r = self.run_hr("--allow-unsafe-env", "NODE_OPTIONS", "-e", "NODE_OPTIONS=x", "-e", "PERL5OPT=y",
                        "--", "true")
        self.assert_error(r, 125, "PERL5OPT")
        r = self.run_hr("--allow-unsafe-env", "LD_", "-e", "LD_PRELOAD=/nonexistent.so", "--", "true")
        self.assert_error(r, 125, "LD_PRELOAD")
        # a pattern is not a name: said at once, not silently matching nothing
        r = self.run_hr("--allow-unsafe-env", "LD_*", "-e", "LD_PRELOAD=/nonexistent.so", "--", "true")
        self.assert_error(r, 125, "invalid variable name 'LD_*' (--allow-unsafe-env)")
        self.assertIn("patterns are not accepted", self.hints(r)[0])

    def test_safe_lookalikes_pass(self):
        r = self.shell("-e", "MY_LD_PRELOAD=1", "-e", "ENVIRONMENT=2", "-e", "NODE_OPTIONS_X=3",
                       script='printf "%s%s%s" "$MY_LD_PRELOAD" "$ENVIRONMENT" "$NODE_OPTIONS_X"')
        self.assertEqual(r.stdout, b"123")

    def test_bash_function_cannot_be_set(self):
        """BASH_FUNC_true%%='() { echo PWNED; }' makes bash run it for 'true'."""
        bash = shutil.which("bash")
        self.assertIsNotNone(bash, "cannot run: bash not installed")
        payload = "() { echo PWNED; }"
        # the attack is real: bash imports the function
        r = subprocess.run([bash, "-c", "true"], env=dict(self.env, **{"BASH_FUNC_true%%": payload}),
                           stdout=subprocess.PIPE, timeout=TIMEOUT)
        self.assertEqual(r.stdout, b"PWNED\n")
        path = self.write("f.env", "BASH_FUNC_true%%=" + payload + "\n")
        for args in [["-e", "BASH_FUNC_true%%=" + payload], ["-e", "BASH_FUNC_true()=" + payload],
                     ["-e", "BASH_FUNC_true=" + payload], ["--env-file", path],
                     ["--allow-unsafe-env", "BASH_FUNC_true%%", "-e", "BASH_FUNC_true%%=" + payload]]:
            with self.subTest(args=args):
                r = self.run_hr(*args, "--", bash, "-c", "true")
                self.assertEqual(r.returncode, 125, r.stderr)
                self.assertNotIn(b"PWNED", r.stdout)
        # a function body under an ordinary name is inert in a patched bash
        r = self.check(self.run_hr("-e", "true=" + payload, "--", bash, "-c", "true"), 0)
        self.assertEqual(r.stdout, b"")

    def test_shellopts_and_ps4(self):
        """SHELLOPTS=xtrace with PS4='$(cmd)' runs cmd in any bash script
        (as any user but root): each half is refused on its own."""
        bash = shutil.which("bash")
        self.assertIsNotNone(bash, "cannot run: bash not installed")
        cmd, marker = self.marker()
        ps4 = 'PS4=$(touch %s)' % marker
        for args in [["-e", "SHELLOPTS=xtrace", "-e", ps4],
                     ["--allow-unsafe-env", "SHELLOPTS", "-e", "SHELLOPTS=xtrace", "-e", ps4],
                     ["--allow-unsafe-env", "PS4", "-e", "SHELLOPTS=xtrace", "-e", ps4],
                     ["-e", "BASHOPTS=extdebug", "-e", ps4]]:
            with self.subTest(args=args):
                r = self.run_hr(*args, "--", bash, "-c", ":")
                self.assert_error(r, 125, "refusing to set")
                self.assertFalse(os.path.exists(marker))

    def test_case_variants_are_inert(self):
        """Names are matched exactly, as the loader and the shells take them:
        a case variant is accepted, and runs nothing."""
        bash = shutil.which("bash")
        self.assertIsNotNone(bash, "cannot run: bash not installed")
        cmd, marker = self.marker()
        script = self.write("startup.sh", 'touch "%s"\n' % marker)
        # BASH_ENV itself would run the script (allowed explicitly here) ...
        self.check(self.run_hr("--allow-unsafe-env", "BASH_ENV", "-e", "BASH_ENV=" + script, "--",
                               bash, "-c", "true"), 0)
        self.assertTrue(os.path.exists(marker), "BASH_ENV did not run: the test proves nothing")
        os.remove(marker)
        # ... its case variants do not
        for name in ["bash_env", "Bash_Env", "BASH_env"]:
            with self.subTest(name=name):
                r = self.check(self.run_hr("-e", name + "=" + script, "--", bash, "-c", "true"), 0)
                self.assertEqual(r.stderr, b"")
                self.assertFalse(os.path.exists(marker), name + " ran the script")
        r = self.check(self.run_hr("-e", "ld_preload=/nonexistent/lib.so", "-e", "Ld_Preload=/nonexistent/lib.so",
                                   "--", "sh", "-c", "true"), 0)
        self.assertEqual(r.stderr, b"", "the loader read a case variant")

    def test_ifs_not_refused_shells_reset_it(self):
        """IFS is not refused (README): the shells do not import it."""
        for sh in ["bash", "dash"]:
            with self.subTest(sh=sh):
                path = shutil.which(sh)
                self.assertIsNotNone(path, "cannot run: %s not installed" % sh)
                r = self.check(self.run_hr("-e", "IFS=x", "--", path, "-c", 'printf %s "$IFS"'), 0)
                self.assertEqual(r.stdout, b" \t\n")

    def test_refused_from_the_environment_when_rendered(self):
        r = self.run_hr("--render-env", "PS4", "--", "true", extra_env={"PS4": "$(touch x){{brave_search}}"})
        self.assert_error(r, 125, "refusing to set PS4")


# --- sizes --------------------------------------------------------------------

class TestSizes(HiveRunTest):

    def test_value_over_kernel_string_limit(self):
        big = "".join(chr(0x41 + i % 26) for i in range(200000))
        self.write_cred("big", {"api_key": big})
        cmd, marker = self.marker()
        r = self.run_hr("-e", "BIG={{big}}", "--", *cmd)
        lines = self.assert_error(r, 125, "BIG")
        self.assertIn("limit", lines[0])
        self.assertNotIn("E2BIG", lines[0])
        self.assert_secret_free(r.stderr, big[:64])
        self.assertFalse(os.path.exists(marker))

    def test_large_value_under_limit_passes(self):
        value = "".join(chr(0x61 + i % 26) for i in range(100000))
        self.write_cred("large", {"api_key": value})
        r = self.shell("-e", "LARGE={{large}}", script='printf %s "$LARGE"')
        self.assertEqual(r.stdout, value.encode())

    def test_total_over_arg_max(self):
        arg_max = os.sysconf("SC_ARG_MAX")
        if arg_max <= 0 or arg_max > 64 * 1024 * 1024:
            self.skipTest("ARG_MAX is %d" % arg_max)
        value = "".join(chr(0x30 + i % 10) for i in range(100000))
        self.write_cred("hundredk", {"api_key": value})
        n = arg_max // 100000 + 2
        args = []
        for i in range(n):
            args += ["-e", "V%d={{hundredk}}" % i]
        cmd, marker = self.marker()
        r = self.run_hr(*args, "--", *cmd)
        self.assert_error(r, 125, "ARG_MAX")
        self.assert_secret_free(r.stderr, value[:64])
        self.assertFalse(os.path.exists(marker))


# --- expiry -------------------------------------------------------------------

class TestExpiry(HiveRunTest):

    def test_expired_auto_refresh_without_provider(self):
        for tmpl in ["{{github_oauth.access_token}}", "{{github_oauth}}"]:
            with self.subTest(tmpl=tmpl):
                cmd, marker = self.marker()
                r = self.run_hr("-e", "GH=" + tmpl, "--", *cmd)
                lines = self.assert_error(r, 125, "access_token")
                err = [ln for ln in lines if ln.startswith("hive-run: error: ")][0]
                self.assertIn("github_oauth", err)
                self.assertIn("2026-03-01T13:00:00", err)
                self.assertTrue(any(ln.startswith("hive-run: warning: ") for ln in lines), lines)
                self.assertFalse(os.path.exists(marker))

    def test_expired_bearer(self):
        r = self.run_hr("-e", "JWT={{internal_jwt}}", "--", "true")
        lines = self.assert_error(r, 125, "internal_jwt")
        err = [ln for ln in lines if ln.startswith("hive-run: error: ")][0]
        self.assertIn("access_token", err)
        self.assertIn("2026-03-01T11:00:00", err)

    def test_allow_expired(self):
        r, out = self.child("--allow-expired", "-e", "GH={{github_oauth}}", "-e", "JWT={{internal_jwt}}")
        self.assertEqual(out["env"][b"GH"], GITHUB_ACCESS.encode())
        self.assertEqual(out["env"][b"JWT"], JWT.encode())
        lines = self.lines(r.stderr)
        warnings = [ln for ln in lines if ln.startswith("hive-run: warning: ")]
        self.assertTrue(any("github_oauth" in w and "expired" in w for w in warnings), lines)
        self.assertTrue(any("internal_jwt" in w and "expired" in w for w in warnings), lines)
        for ln in lines:
            self.assertTrue(ln.startswith("hive-run: warning: ") or ln.startswith("hint: "), ln)
        self.assert_secret_free(r.stderr)

    def test_hint_points_at_a_warning_only_when_there_is_one(self):
        """Issue 12 item 15: 'see the warning above' only under a warning."""
        # a refresh was tried and failed: the store's warning is above the hint
        r = self.run_hr("-e", "GH={{github_oauth}}", "--", "true")
        lines = self.assert_error(r, 125, "github_oauth")
        warn = [i for i, ln in enumerate(lines) if ln.startswith("hive-run: warning: ")]
        hint = [i for i, ln in enumerate(lines) if "see the warning above" in ln]
        self.assertEqual(len(warn), 1, lines)
        self.assertEqual(len(hint), 1, lines)
        self.assertLess(warn[0], hint[0])
        self.assertIn("github_oauth", lines[warn[0]])
        # auto_refresh on, but its provider never refreshes: nothing was tried, no warning
        self.run_cred("add", "static_exp", "--auto-refresh", "--expires", "api_key=2020-01-01T00:00:00Z",
                      stdin="api_key=static-value-0123\n")
        r = self.run_hr("-e", "S={{static_exp}}", "--", "true")
        lines = self.assert_error(r, 125, "static_exp")
        self.assertFalse([ln for ln in lines if "warning" in ln], lines)
        self.assertIn("never refreshes", "\n".join(self.hints(r)))

    def test_hint_when_the_refresh_did_not_renew_the_key(self):
        """A refresh that worked but left the referenced key expired: no
        warning to point at, and no second token request to find out."""
        requests = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                requests.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                body = json.dumps({"access_token": "new-access-0123456789", "token_type": "Bearer",
                                   "expires_in": 3600}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        for name in ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"]:
            self.env.pop(name, None)
        self.run_cred("add", "tiny_idp", "--type", "custom",
                      stdin="token_url=http://127.0.0.1:%d/token\nclient_id=c1\nclient_secret=s1-secret\n"
                      % server.server_address[1])
        self.run_cred("add", "tok", "--type", "oauth2", "--provider-id", "tiny_idp", "--auto-refresh",
                      "--expires", "access_token=2020-01-01T00:00:00Z", "--expires", "id_token=2020-01-01T00:00:00Z",
                      stdin="access_token=old-access-0123\nrefresh_token=rt-0123456789\nid_token=idt-0123456789\n")
        r = self.run_hr("-e", "T={{tok.id_token}}", "--", "true")
        lines = self.assert_error(r, 125, "key 'id_token' of credential 'tok' expired")
        self.assertFalse([ln for ln in lines if "warning" in ln], lines)
        self.assertEqual(self.hints(r), ["hint: the credential was refreshed, but its key 'id_token' was not "
                                         "renewed; save a new value with 'hive-cred add tok', or pass "
                                         "--allow-expired"])
        self.assertEqual(len(requests), 1, requests)
        # the refresh itself happened and was saved
        got = self.check(self.run_hr("-e", "A={{tok.access_token}}", "--", "sh", "-c", 'printf %s "$A"'), 0)
        self.assertEqual(got.stdout, b"new-access-0123456789")

    def test_hint_without_refresh(self):
        for args, want in [(["--no-refresh", "-e", "GH={{github_oauth}}"], "--no-refresh is set"),
                           (["-e", "J={{internal_jwt}}"], "auto_refresh off")]:
            with self.subTest(args=args):
                r = self.run_hr(*args, "--", "true")
                lines = self.assert_error(r, 125, "expired")
                self.assertFalse([ln for ln in lines if "warning" in ln], lines)
                self.assertEqual(len(self.hints(r)), 1, lines)
                self.assertIn(want, self.hints(r)[0])

    def test_no_refresh_expired(self):
        cmd, marker = self.marker()
        r = self.run_hr("--no-refresh", "-e", "GH={{github_oauth.access_token}}", "--", *cmd)
        lines = self.assert_error(r, 125, "github_oauth")
        self.assertIn("2026-03-01T13:00:00", "\n".join(lines))
        self.assertFalse(os.path.exists(marker))


# --- dry run ------------------------------------------------------------------

class TestDryRun(HiveRunTest):

    def setUp(self):
        super().setUp()
        self.run_cred("usage", "add", "anthropic", "--env", "U={{anthropic}}")
        self.envfile = self.write("d.env", "F=pre-{{smtp_login.password}}\n")
        self.parent = dict(self.env, I="{{aden_api_key}}", HIVE_CREDENTIAL_KEY=self.key)

    def opts(self):
        return ["--render-env", "I", "-e", "A={{brave_search}}", "--env-file", self.envfile, "--usage", "anthropic",
                "--allow-expired", "-e", "J=x {{internal_jwt.access_token}}"]

    def test_text(self):
        cmd, marker = self.marker()
        r = self.check(self.run_hr("--dry-run", *self.opts(), "--", *cmd, env=self.parent), 0)
        self.assertFalse(os.path.exists(marker), "the program ran")
        self.assert_secret_free(r.stdout + r.stderr)
        out = r.stdout.decode("utf-8")
        for name, tmpl in [("A", "{{brave_search}}"), ("F", "pre-{{smtp_login.password}}"),
                           ("U", "{{anthropic}}"), ("I", "{{aden_api_key}}"),
                           ("J", "x {{internal_jwt.access_token}}")]:
            self.assertIn(name + "=", out)
            self.assertIn(tmpl, out)
        self.assertIn("2026-03-01T11:00:00", out)

    def test_json(self):
        cmd, marker = self.marker()
        r = self.check(self.run_hr("--dry-run", "--json", *self.opts(), "--", *cmd, env=self.parent), 0)
        self.assertFalse(os.path.exists(marker), "the program ran")
        self.assert_secret_free(r.stdout + r.stderr)
        doc = json.loads(r.stdout)
        byname = {v["name"]: v for v in doc["variables"]}
        self.assertEqual(set(byname), {"A", "F", "U", "I", "J"})
        want = {
            "A": ("flag", "{{brave_search}}", [("brave_search", "api_key", None)]),
            "F": ("env-file", "pre-{{smtp_login.password}}", [("smtp_login", "password", None)]),
            "U": ("usage", "{{anthropic}}", [("anthropic", "api_key", None)]),
            "I": ("inherited", "{{aden_api_key}}", [("aden_api_key", "api_key", None)]),
            "J": ("flag", "x {{internal_jwt.access_token}}",
                  [("internal_jwt", "access_token", "2026-03-01T11:00:00Z")]),
        }
        for name, (source, tmpl, refs) in want.items():
            v = byname[name]
            self.assertEqual(v["source"], source, name)
            self.assertEqual(v["template"], tmpl, name)
            self.assertEqual([(x["credential"], x["key"], x["expires_at"]) for x in v["references"]], refs)
        self.assertEqual(doc["command"], cmd)

    def test_dry_run_missing_credential(self):
        cmd, marker = self.marker()
        r = self.run_hr("--dry-run", "-e", "A={{nope}}", "--", *cmd)
        self.assert_error(r, 125, "Credential 'nope' not found")
        self.assertFalse(os.path.exists(marker))
        self.assertIn("problem: Credential 'nope' not found", r.stdout.decode())
        r = self.run_hr("--dry-run", "--json", "-e", "A={{nope}}", "--", *cmd)
        self.assert_error(r, 125, "Credential 'nope' not found")
        doc = json.loads(r.stdout)
        self.assertEqual(doc["problems"], ["A (-e): Credential 'nope' not found"])
        self.assertEqual(doc["variables"][0]["problems"], ["Credential 'nope' not found"])
        self.assertIsNone(doc["variables"][0]["length"])

    def test_dry_run_expired_without_allow(self):
        r = self.run_hr("--dry-run", "-e", "J={{internal_jwt}}", "--", "true")
        self.assert_error(r, 125, "internal_jwt")
        self.assertIn("auto_refresh is off", r.stdout.decode())
        r = self.check(self.run_hr("--dry-run", "--allow-expired", "-e", "J={{internal_jwt}}", "--", "true"), 0)
        self.assertIn("expired at 2026-03-01T11:00:00Z", r.stderr.decode())

    def test_every_problem_is_reported(self):
        """Issue 16 item 3: a dry run reports every problem, not the first,
        and exits 125; the program does not run."""
        cmd, marker = self.marker()
        parent = dict(self.env, HIVE_CREDENTIAL_KEY=self.key)
        bad_env = self.write("bad.env", "GOOD={{anthropic}}\nE1={{nope_in_file}}\n")
        args = ["--dry-run", "--usage", "no_such_spec", "--env-file", bad_env, "--render-env", "ABSENT_VAR",
                "-e", "A={{nope}}", "-e", "B={{brave_search.no_key}}", "-e", "LD_PRELOAD={{brave_search}}",
                "-e", "C={{ brave_search }}", "-e", "J={{internal_jwt}}", "-e", "G={{github_oauth}}",
                "-e", "OK={{anthropic}}", "-e", "NOEQUALS", "-e", "1X=v"]
        # sources first, in precedence order, then each variable's own problems
        want = [("--render-env ABSENT_VAR: there is no ABSENT_VAR", None),
                ("No usage spec registered for 'no_such_spec'", None),
                ("-e wants NAME=TEMPLATE", None),
                ("invalid variable name '1X' (-e)", None),
                ("E1 (%s): Credential 'nope_in_file' not found" % bad_env, "E1"),
                ("A (-e): Credential 'nope' not found", "A"),
                ("B (-e): Key 'no_key' not found in credential 'brave_search'", "B"),
                ("refusing to set LD_PRELOAD (-e)", "LD_PRELOAD"),
                ("C (-e): ", "C"),
                ("J (-e): key 'access_token' of credential 'internal_jwt' expired at 2026-03-01T11:00:00Z", "J"),
                ("G (-e): key 'access_token' of credential 'github_oauth' expired at 2026-03-01T13:00:00Z", "G")]
        r = self.check(self.run_hr(*args, "--", *cmd, env=parent), 125)
        self.assertFalse(os.path.exists(marker), "the program ran")
        self.assert_secret_free(r.stdout + r.stderr)
        errors = [ln for ln in self.lines(r.stderr) if ln.startswith("hive-run: error: ")]
        self.assertEqual(len(errors), len(want), errors)
        for (text, _), line in zip(want, errors):
            self.assertIn(text, line)
        out = r.stdout.decode()
        self.assertIn("%d problems" % len(want), out)
        self.assertIn("OK=******** (flag -e) template {{anthropic}}", out)
        self.assertIn("GOOD=******** (env-file %s)" % bad_env, out)

        r = self.check(self.run_hr(*args[:1], "--json", *args[1:], "--", *cmd, env=parent), 125)
        self.assertFalse(os.path.exists(marker), "the program ran")
        doc = json.loads(r.stdout)
        self.assertFalse(doc["ok"])
        self.assertEqual(len(doc["problems"]), len(want), doc["problems"])
        for (text, _), got in zip(want, doc["problems"]):
            self.assertIn(text, got)
        byname = {v["name"]: v for v in doc["variables"]}
        for text, name in want:
            if name in byname:
                self.assertEqual(len(byname[name]["problems"]), 1, byname[name])
        self.assertEqual(byname["OK"]["problems"], [])
        self.assertEqual(byname["OK"]["length"], len(ANTHROPIC))
        g = byname["G"]["references"][0]
        self.assertFalse(g["would_refresh"])
        self.assertIn("would not be refreshed: its provider 'oauth2' is not in the store", g["problem"])
        self.assertEqual(byname["C"]["problems"], ["the '{{' at column 1 is not a template: a space inside '{{ }}'"])
        self.assertEqual(byname["LD_PRELOAD"]["problems"],
                         ["refused: its value would be run as code (--allow-unsafe-env allows it)"])
        self.assertEqual(byname["J"]["problems"],
                         ["key 'access_token' of credential 'internal_jwt' expired at 2026-03-01T11:00:00Z and would "
                          "not be refreshed: auto_refresh is off"])

    def test_missing_store_key_said_once(self):
        os.remove(self.key_path)
        r = self.run_hr("--dry-run", "--json", "-e", "A={{anthropic}}", "-e", "B={{brave_search}}", "--", "true")
        self.assert_error(r, 125, "key")
        doc = json.loads(r.stdout)
        self.assertEqual(len(doc["problems"]), 1, doc["problems"])
        self.assertEqual([len(v["problems"]) for v in doc["variables"]], [1, 1])

    def test_sizes(self):
        """The size checks a launch makes, on the values as stored."""
        big = "".join(chr(0x41 + i % 26) for i in range(200000))
        self.write_cred("big", {"api_key": big})
        value = "".join(chr(0x30 + i % 10) for i in range(100000))
        self.write_cred("hundredk", {"api_key": value})
        cmd, marker = self.marker()
        r = self.run_hr("--dry-run", "--json", "-e", "BIG={{big}}", "-e", "X={{nope}}", "--", *cmd)
        self.check(r, 125)
        doc = json.loads(r.stdout)
        self.assertEqual(len(doc["problems"]), 2, doc["problems"])
        self.assertIn("BIG: NAME=VALUE is 200005 bytes, over the kernel's limit", doc["problems"][0])
        self.assertIsNone(doc["variables"][0]["length"])
        self.assert_secret_free(r.stdout + r.stderr, big[:64])
        arg_max = os.sysconf("SC_ARG_MAX")
        self.assertTrue(0 < arg_max <= 64 * 1024 * 1024, arg_max)
        args = []
        for i in range(arg_max // 100000 + 2):
            args += ["-e", "V%d={{hundredk}}" % i]
        r = self.run_hr("--dry-run", *args, "--", *cmd)
        self.assert_error(r, 125, "ARG_MAX")
        self.assert_secret_free(r.stdout + r.stderr, value[:64])
        self.assertIn("1 problem: hive-run would exit 125", r.stdout.decode())
        self.assertFalse(os.path.exists(marker))

    def test_unsafe_name_allowed(self):
        r = self.check(self.run_hr("--dry-run", "--allow-unsafe-env", "PAGER", "-e", "PAGER={{anthropic}}",
                                   "--", "true"), 0)
        self.assertIn("PAGER=********", r.stdout.decode())
        self.assertIn("would run: true", r.stdout.decode())


# --- dry run against a real expiring OAuth2 token: no side effect -----------


class TestDryRunSideEffectFree(HiveRunTest):
    """Issue 16 item 3: a dry run on a token that is due for refresh makes
    no token request, writes nothing, connects nowhere and loads no
    libcurl; it says it would refresh, when and through which provider."""

    server = None

    @classmethod
    def setUpClass(cls):
        why = hivetest.missing_oauth_server()
        if why:
            raise RuntimeError("cannot run: " + why)
        cls.server_tmp = tempfile.mkdtemp(prefix="hive-run-oauth-")
        try:
            cls.server = hivetest.start_oauth_server(cls.server_tmp, hivetest.scaled_int(60))
        except BaseException:
            shutil.rmtree(cls.server_tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.server is not None:
            cls.server.close()
        shutil.rmtree(cls.server_tmp, ignore_errors=True)

    def setUp(self):
        super().setUp()
        for name in hivetest.PROXY_VARS:
            self.env.pop(name, None)
        self.server.admin("POST", "/test/reset")
        rt = self.server.mint()
        self.run_cred("add", "idp", "--type", "custom",
                      stdin="token_url=%s\nclient_id=%s\nclient_secret=%s\n"
                      % (self.server.token_url, self.server.POST_ID, self.server.POST_SECRET))
        self.run_cred("add", "tok", "--type", "oauth2", "--provider-id", "idp", "--auto-refresh",
                      "--expires", "access_token=+100s",
                      stdin="access_token=old-access-token-0123\nrefresh_token=%s\n" % rt)
        self.secrets.update(["old-access-token-0123", rt])

    def store_files(self):
        out = {}
        for root, dirs, files in os.walk(self.home):
            for f in files:
                p = os.path.join(root, f)
                st = os.lstat(p)
                with open(p, "rb") as fh:
                    out[p] = (fh.read(), st.st_mtime_ns, st.st_mode)
        return out

    def strace(self, *args):
        strace = shutil.which("strace")
        if strace is None:
            self.fail("cannot run: strace not installed (scripts/setup installs it)")
        trace = os.path.join(self.tmp, "trace.txt")
        # LeakSanitizer cannot run under ptrace; the runs without strace check for leaks
        env = dict(self.env, ASAN_OPTIONS=self.env.get("ASAN_OPTIONS", "") + ":detect_leaks=0")
        r = subprocess.run([strace, "-f", "-qq", "-s", "256", "-o", trace, "-e",
                            "trace=%network,open,openat,openat2,creat,rename,renameat,renameat2,link,linkat,"
                            "unlink,unlinkat,mkdir,mkdirat,truncate,ftruncate,write,pwrite64,writev",
                            HIVE_RUN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                           timeout=TIMEOUT, cwd=self.work)
        with open(trace, encoding="utf-8", errors="replace") as f:
            return r, f.read().splitlines()

    def test_dry_run_touches_neither_network_nor_disk(self):
        before = self.store_files()
        cmd, marker = self.marker()
        for extra in ([], ["--json"]):
            with self.subTest(extra=extra):
                r, trace = self.strace("--dry-run", *extra, "-e", "T={{tok.access_token}}", "--", *cmd)
                self.check(r, 0)
                self.assertFalse(os.path.exists(marker), "the program ran")
                self.assert_secret_free(r.stdout + r.stderr)
                self.assertEqual(self.server.stats()["token_requests"], 0, "the dry run asked for a token")
                self.assertEqual(self.store_files(), before, "the dry run changed the store")
                self.assertFalse([ln for ln in trace if re.search(r"\b(connect|socket|sendto|sendmsg)\(", ln)],
                                 "the dry run used the network")
                self.assertFalse([ln for ln in trace if "libcurl" in ln], "the dry run loaded libcurl")
                self.assertFalse([ln for ln in trace
                                  if re.search(r"\b(creat|rename\w*|link\w*|unlink\w*|mkdir\w*|truncate|ftruncate)\(",
                                               ln)], "the dry run changed a file")
                opened = [ln for ln in trace if re.search(r"\bopen(at2?)?\(", ln) and self.home in ln]
                self.assertTrue(opened, "the dry run did not read the store")
                self.assertFalse([ln for ln in opened if re.search(r"O_(WRONLY|RDWR|CREAT|TRUNC)", ln)],
                                 "the dry run opened a store file for writing")
                # each write against the file its fd last opened (a coverage
                # build writes its gcov counts, *.gcda, at exit)
                path_of, wrote = {}, []
                for ln in trace:
                    m = re.match(r'\d+ +openat2?\([^,]*, "([^"]*)".*= (\d+)$', ln)
                    if m:
                        path_of[m.group(2)] = m.group(1)
                        continue
                    m = re.match(r"\d+ +(?:write|pwrite64|writev)\((\d+),", ln)
                    if m and m.group(1) in path_of and m.group(1) not in ("1", "2") \
                            and not path_of[m.group(1)].endswith(".gcda"):
                        wrote.append(ln)
                self.assertFalse(wrote, "the dry run wrote to a file it opened")
                if extra:
                    ref = json.loads(r.stdout)["variables"][0]["references"][0]
                    self.assertTrue(ref["would_refresh"], ref)
                    self.assertEqual(ref["provider"], "idp")
                    self.assertTrue(90 <= ref["expires_in"] <= 100, ref)
                    self.assertIsNone(ref["problem"])
                else:
                    m = re.search(r"would refresh \(expires in (\d+) s, provider idp\)", r.stdout.decode())
                    self.assertTrue(m, r.stdout)
                    self.assertTrue(90 <= int(m.group(1)) <= 100, m.group(0))
        # the credential was due: a real launch refreshes it, once
        r = self.check(self.run_hr("-e", "T={{tok.access_token}}", "--", "sh", "-c", 'test -n "$T"'), 0)
        self.assertEqual(self.server.stats()["token_requests"], 1)
        self.assertNotEqual(self.store_files(), before)

    def test_dry_run_expired_token_would_be_refreshed(self):
        """Expired, but refreshable: not a problem, a refresh to come."""
        self.run_cred("add", "tok", "--type", "oauth2", "--provider-id", "idp", "--auto-refresh",
                      "--expires", "access_token=2020-01-01T00:00:00Z",
                      stdin="access_token=old-access-token-0123\nrefresh_token=%s\n" % self.server.mint())
        r = self.check(self.run_hr("--dry-run", "--json", "-e", "T={{tok.access_token}}", "--", "true"), 0)
        ref = json.loads(r.stdout)["variables"][0]["references"][0]
        self.assertTrue(ref["would_refresh"])
        self.assertLess(ref["expires_in"], -3600)
        self.assertRegex(ref["refresh"], r"^would refresh \(expired \d+ s ago, provider idp\)$")
        # a provider whose credential is gone: why, from the credential alone
        self.run_cred("delete", "idp")
        r = self.check(self.run_hr("--dry-run", "--json", "-e", "T={{tok.access_token}}", "--", "true"), 125)
        ref = json.loads(r.stdout)["variables"][0]["references"][0]
        self.assertFalse(ref["would_refresh"])
        self.assertIn("would not be refreshed: its provider 'idp' is not in the store", ref["problem"])
        self.assertEqual(self.server.stats()["token_requests"], 0)

    def test_dry_run_no_refresh_says_why(self):
        r = self.check(self.run_hr("--dry-run", "--no-refresh", "-e", "T={{tok.access_token}}", "--", "true"), 0)
        self.assertIn("would not be refreshed: --no-refresh", r.stdout.decode())
        self.assertEqual(self.server.stats()["token_requests"], 0)


# --- launch cost: only the referenced credential is read -------------------

class TestLaunchCost(HiveRunTest):

    def test_only_referenced_file_opened(self):
        strace = shutil.which("strace")
        if strace is None:
            self.fail("cannot run: strace not installed (scripts/setup installs it)")
        probe = subprocess.run([strace, "-f", "-o", os.devnull, "/bin/true"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=TIMEOUT)
        if probe.returncode != 0:
            self.fail("cannot run: strace cannot trace here (ptrace not permitted?)")
        for i in range(300):
            self.write_cred("c%d" % i, {"api_key": "value-of-c%d" % i})
        self.run_cred("list")   # bring the index up to date, as a user's store is
        trace = os.path.join(self.tmp, "trace.txt")
        r = subprocess.run([strace, "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", trace,
                            HIVE_RUN, "-e", "X={{c1.api_key}}", "--", "/bin/true"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env, timeout=TIMEOUT,
                           cwd=self.work)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(trace, encoding="utf-8", errors="replace") as f:
            text = f.read()
        opened = [ln for ln in text.splitlines() if "open" in ln]
        paths = [m.group(1) for m in (re.search(r'open(?:at2?)?\((?:[^,]*, )?"([^"]*)"', ln) for ln in opened) if m]
        encs = [os.path.basename(p) for p in paths if p.endswith(".enc")]
        self.assertEqual(encs and set(encs), {"c1.enc"}, "want only c1.enc opened: %r" % encs)
        self.assertFalse([ln for ln in opened if "index.json" in ln], "the index was opened")
        self.assertFalse([ln for ln in opened if "libcurl" in ln], "libcurl was loaded")


def main():
    hivetest.main(binaries=["hive-run", "hive-cred"], fixture=True)


if __name__ == "__main__":
    main()
