#!/usr/bin/env python3
"""Documentation found the usual way (issue 16 item 8): the man pages and
the shell completion.

Run:  python3 tests/doc/test_docs.py [unittest options]

Environment:
  HIVE_RUN, HIVE_CRED   the binaries (default: <repo>/build/launcher/...)
  HIVE_ZSH_COMPLETION   the zsh completion built by CMake
                        (default: <repo>/build/completion/_hive)

The man pages must render with man --warnings and groff -ww without a
single warning, and name every option and command the tools' --help
lists. bash completion is tested by driving its functions (COMP_WORDS,
COMP_CWORD) in a bash subprocess, on a store made by hive-cred whose key
is then removed: ids come from the plaintext index, nothing is decrypted.
zsh completion is loaded in zsh -f with compinit and driven through zpty.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lib"))
import hivetest  # noqa: E402  (tests/lib/hivetest.py)

HIVE_RUN = hivetest.HIVE_RUN
HIVE_CRED = hivetest.HIVE_CRED
ZSH_COMPLETION = hivetest.path_from_env("HIVE_ZSH_COMPLETION", hivetest.BUILD / "completion" / "_hive")
BASH_COMPLETION = REPO / "completion" / "hive.bash"
MAN = REPO / "man"
PAGES = ["hive-run.1", "hive-cred.1", "hive-store.5"]
TIMEOUT = hivetest.scaled(60)


def need(tool):
    path = shutil.which(tool)
    if path is None:
        raise AssertionError("cannot run: %s is not installed (scripts/setup installs it)" % tool)
    return path


def help_text(binary):
    r = subprocess.run([binary, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def cred_commands():
    """hive-cred's commands, as its --help lists them."""
    text = help_text(HIVE_CRED)
    block = text[text.index("Commands:"):text.index("Options:")]
    return sorted({m.group(1) for m in re.finditer(r"^  ([a-z][a-z-]*)", block, re.M)})


def run_options():
    """hive-run's options, as its --help lists them."""
    return sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-z])\b", help_text(HIVE_RUN))))


class ManPages(unittest.TestCase):

    def test_render_without_warnings(self):
        man, groff = need("man"), need("groff")
        for page in PAGES:
            with self.subTest(page=page):
                r = subprocess.run([man, "--warnings", "-l", str(MAN / page)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env=dict(os.environ, MANWIDTH="80", MANPAGER="cat",
                                                                    PAGER="cat", LC_ALL="C.UTF-8"),
                                   timeout=TIMEOUT)
                self.assertEqual((r.returncode, r.stderr.decode()), (0, ""))
                self.assertIn(b"NAME", r.stdout)
                self.assertGreater(len(r.stdout.splitlines()), 40)
                r = subprocess.run([groff, "-man", "-ww", "-z", str(MAN / page)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, timeout=TIMEOUT)
                self.assertEqual((r.returncode, r.stderr.decode()), (0, ""))

    def test_version_is_the_tools(self):
        out = subprocess.run([HIVE_RUN, "--version"], stdout=subprocess.PIPE, timeout=TIMEOUT).stdout.decode()
        version = out.split()[-1]
        for page in PAGES:
            with self.subTest(page=page):
                th = [ln for ln in (MAN / page).read_text().splitlines() if ln.startswith(".TH ")][0]
                self.assertIn('"hive %s"' % version, th)

    def test_hive_run_page_has_every_option(self):
        text = (MAN / "hive-run.1").read_text().replace("\\-", "-")
        options = text.split(".SH OPTIONS")[1].split(".SH ")[0]
        for opt in run_options():
            with self.subTest(opt=opt):
                self.assertTrue(re.search(r"^\.(B|BI|BR) .*(?<![\w-])%s(?![\w-])" % re.escape(opt), options, re.M),
                                "%s is not in OPTIONS" % opt)

    def test_hive_cred_page_has_every_command(self):
        text = (MAN / "hive-cred.1").read_text().replace("\\-", "-")
        section = text.split(".SH COMMANDS")[1].split(".SH ")[0]
        commands = re.findall(r'^\.TP\n\.(?:B|BI|BR) "?([a-z][a-z-]*)', section, re.M)
        self.assertEqual(sorted(set(commands)), cred_commands())


class CommandHelp(unittest.TestCase):
    """hive-cred CMD --help and hive-cred help CMD: that command's help."""

    def run_cred(self, *args):
        return subprocess.run([HIVE_CRED, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, timeout=TIMEOUT, env={"PATH": os.environ.get("PATH", ""),
                                                                             "HIVE_HOME": "/nonexistent"})

    def test_every_command_has_its_help(self):
        full = help_text(HIVE_CRED)
        for cmd in cred_commands():
            with self.subTest(cmd=cmd):
                r = self.run_cred(cmd, "--help")
                self.assertEqual((r.returncode, r.stderr), (0, b""))
                text = r.stdout.decode()
                self.assertTrue(text.startswith("Usage: hive-cred %s" % cmd), text)
                self.assertNotEqual(text, full)
                self.assertEqual(self.run_cred("help", cmd).stdout, r.stdout)
                self.assertEqual(self.run_cred("-h", cmd).stdout, r.stdout)
                # every option completion offers for it is in its help
                row = [c for c in bash_table() if c.split("|")[0] == cmd][0]
                for opt in row.split("|")[1].split():
                    self.assertIn(opt, text)
        for opt in [u.split("|")[1] for u in usage_table()]:
            for o in opt.split():
                self.assertIn(o, self.run_cred("usage", "add", "x", "--help").stdout.decode())

    def test_help_anywhere_and_errors(self):
        get = self.run_cred("help", "get").stdout
        self.assertEqual(self.run_cred("get", "some_id", "--help").stdout, get)
        self.assertEqual(self.run_cred("--store", "/x", "get", "-h").stdout, get)
        self.assertEqual(self.run_cred("help").stdout, self.run_cred("--help").stdout)
        self.assertEqual(self.run_cred("--help").stdout.decode(), help_text(HIVE_CRED))
        for args in (["help", "nosuch"], ["nosuch", "--help"]):
            r = self.run_cred(*args)
            self.assertEqual(r.returncode, 2)
            self.assertEqual(r.stdout, b"")
            self.assertIn(b"hive-cred: error: unknown command 'nosuch'", r.stderr)
        r = self.run_cred("help", "get", "show")
        self.assertEqual(r.returncode, 2)


class BashCompletion(unittest.TestCase):
    """A store made by hive-cred, its key removed afterwards."""

    def setUp(self):
        self.bash = need("bash")
        self.tmp = tempfile.mkdtemp(prefix="hive-doc-test-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.home = os.path.join(self.tmp, "home")
        self.env = hivetest.clean_env(self.home, HOME=self.tmp)
        self.cred("init")
        for cid, keys in [("github_oauth", "access_token=a\nrefresh_token=r\n"), ("gitlab", "api_key=k\n"),
                          ("brave_search/work", "api_key=w\n"), ('odd"id', "api_key=o\n")]:
            self.cred("add", cid, stdin=keys)
        self.cred("usage", "add", "gitlab", "--env", "GL={{gitlab}}")
        self.cred("list")
        os.remove(os.path.join(self.home, "secrets", "credential_key"))

    def cred(self, *args, stdin=""):
        r = subprocess.run([HIVE_CRED, *args], input=stdin.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=self.env, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)

    def complete(self, *words, env=None):
        """COMPREPLY for a command line: words typed, the last one being completed."""
        script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); '
                  'spec=$(complete -p "$1") || exit 3; fn=${spec##*-F }; fn=${fn%% *}; "$fn"; '
                  'printf "%s\\n" "${COMPREPLY[@]}"')
        r = subprocess.run([self.bash, "--norc", "--noprofile", "-c", script, "bash", str(BASH_COMPLETION), *words],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env or self.env, timeout=TIMEOUT)
        self.assertEqual((r.returncode, r.stderr.decode()), (0, ""), words)
        return [ln for ln in r.stdout.decode().split("\n") if ln]

    IDS = ["brave_search/work", "github_oauth", "gitlab", 'odd"id']

    def test_commands_are_hive_creds(self):
        self.assertEqual(sorted(self.complete("hive-cred", "")), cred_commands())
        self.assertEqual(self.complete("hive-cred", "ro"), ["rotate-key"])
        self.assertEqual(self.complete("hive-cred", "--store", "/x", "li"), ["list"])
        self.assertEqual(sorted(self.complete("hive-cred", "usage", "")), ["add", "list", "remove", "show"])

    def test_credential_ids_from_the_index(self):
        for cmd in ["get", "show", "delete", "exists", "refresh", "validate", "add"]:
            with self.subTest(cmd=cmd):
                self.assertEqual(sorted(self.complete("hive-cred", cmd, "")), self.IDS)
        self.assertEqual(self.complete("hive-cred", "get", "gi"), ["github_oauth", "gitlab"])
        self.assertEqual(self.complete("hive-cred", "--json", "show", "--reveal", "br"), ["brave_search/work"])
        self.assertEqual(sorted(self.complete("hive-cred", "get", "github_oauth", "")), ["access_token", "refresh_token"])
        self.assertEqual(sorted(self.complete("hive-cred", "add", "x", "--provider-id", "git")), ["github_oauth", "gitlab"])
        self.assertEqual(self.complete("hive-cred", "usage", "show", ""), ["gitlab"])
        self.assertEqual(self.complete("hive-cred", "usage", "add", "gi"), ["github_oauth", "gitlab"])
        self.assertEqual(self.complete("hive-cred", "get", "gitlab", "api_key", ""), [])
        self.assertEqual(self.complete("hive-cred", "help", "rot"), ["rotate-key"])

    def test_store_option_and_missing_index(self):
        store = os.path.join(self.home, "credentials")
        other = os.path.join(self.tmp, "other")
        shutil.copytree(store, other)
        os.remove(os.path.join(other, "metadata", "index.json"))
        # no index: the file names (an id's '/' is '_' there)
        self.assertEqual(sorted(self.complete("hive-cred", "--store", other, "get", "")),
                         ["brave_search_work", "github_oauth", "gitlab", 'odd"id'])
        self.assertEqual(sorted(self.complete("hive-cred", "--store", "=", other, "get", "")),
                         ["brave_search_work", "github_oauth", "gitlab", 'odd"id'])
        self.assertEqual(self.complete("hive-cred", "--store", os.path.join(self.tmp, "none"), "get", ""), [])
        self.assertEqual(self.complete("hive-cred", "--store", "etcd://127.0.0.1:1/x", "get", ""), [])

    def test_options(self):
        self.assertEqual(sorted(self.complete("hive-cred", "add", "x", "--t")), ["--tag", "--type"])
        self.assertEqual(self.complete("hive-cred", "add", "x", "--type", "o"), ["oauth2"])
        self.assertEqual(sorted(self.complete("hive-cred", "show", "--")), ["--help", "--json", "--reveal", "--store",
                                                                            "--version"])
        self.assertIn("--help-url", self.complete("hive-cred", "usage", "add", "x", "--"))
        self.assertEqual(sorted(self.complete("hive-run", "-")), run_options())
        self.assertEqual(self.complete("hive-run", "--dry"), ["--dry-run"])

    def test_hive_run(self):
        self.assertEqual(self.complete("hive-run", "--usage", ""), ["gitlab"])
        # -e NAME={{...: bash splits the word at '='
        self.assertEqual(self.complete("hive-run", "-e", "T", "=", "{{git"), ["{{github_oauth}}", "{{gitlab}}"])
        self.assertEqual(self.complete("hive-run", "-e", "T", "=", "Bearer {{br"), ["Bearer {{brave_search/work}}"])
        self.assertEqual(self.complete("hive-run", "-e", "T", "=", "x"), [])
        env = dict(self.env, HIVE_DOC_TEST_VAR="1")
        self.assertEqual(self.complete("hive-run", "-e", "HIVE_DOC_TEST_V", env=env), ["HIVE_DOC_TEST_VAR="])
        self.assertEqual(self.complete("hive-run", "--keep", "HIVE_DOC_TEST_V", env=env), ["HIVE_DOC_TEST_VAR"])
        # the command, then its arguments
        self.assertIn("bash", self.complete("hive-run", "-e", "T", "=", "{{gitlab}}", "--", "bas"))
        self.assertIn("bash", self.complete("hive-run", "--dry-run", "bas"))
        os.mkdir(os.path.join(self.tmp, "somedir"))
        self.assertEqual(self.complete("hive-run", "--", "ls", os.path.join(self.tmp, "somed")),
                         [os.path.join(self.tmp, "somedir")])
        self.assertEqual(self.complete("hive-run", "-e", "A", "=", "1", "ls", "-"), [])


class ZshCompletion(unittest.TestCase):
    """_hive as built by CMake: registered by compinit for both tools, and
    driven through zsh's own line editor in a zpty: a line, one Tab, and
    what the line became."""

    def setUp(self):
        self.zsh = need("zsh")
        self.assertTrue(os.path.isfile(ZSH_COMPLETION), "not built: %s" % ZSH_COMPLETION)
        self.tmp = tempfile.mkdtemp(prefix="hive-zsh-test-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.fdir = os.path.join(self.tmp, "functions")
        os.mkdir(self.fdir)
        shutil.copy(ZSH_COMPLETION, self.fdir)
        home = os.path.join(self.tmp, "home")
        self.env = hivetest.clean_env(home, HOME=self.tmp, TERM="dumb")
        for args, stdin in [(["init"], b""), (["add", "github_oauth"], b"api_key=x\n"),
                            (["add", "gitlab"], b"api_key=y\n"), (["usage", "add", "gitlab", "--env", "G={{gitlab}}"], b""),
                            (["list"], b"")]:
            subprocess.run([HIVE_CRED, *args], input=stdin, env=self.env, check=True, timeout=TIMEOUT,
                           stdout=subprocess.DEVNULL)
        os.remove(os.path.join(home, "secrets", "credential_key"))

    def test_table_is_the_bash_one(self):
        text = Path(ZSH_COMPLETION).read_text()
        self.assertNotIn("@HIVE_", text)
        script = ('fpath=("$1" $fpath); autoload -Uz compinit && compinit -u -d "$2/zcompdump" || exit 2\n'
                  '[[ $_comps[hive-run] == _hive && $_comps[hive-cred] == _hive ]] || { print unregistered; exit 3 }\n'
                  'autoload +X _hive; service=none _hive\n'
                  'print -r -- ${(j: :)${_hive_cred_commands%%|*}}\n')
        r = subprocess.run([self.zsh, "-f", "-c", script, "zsh", self.fdir, self.tmp], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=self.env, timeout=TIMEOUT)
        self.assertEqual((r.returncode, r.stderr), (0, b""), r.stdout)
        self.assertEqual(r.stdout.decode().split(), [c.split("|")[0] for c in bash_table()])
        self.assertEqual(sorted(r.stdout.decode().split()), cred_commands())

    def test_tab(self):
        cases = [("hive-cred rot", "hive-cred rotate-key"),
                 ("hive-cred get github", "hive-cred get github_oauth"),
                 ("hive-cred --json show gitl", "hive-cred --json show gitlab"),
                 ("hive-cred usage sh", "hive-cred usage show"),
                 ("hive-cred usage remove g", "hive-cred usage remove gitlab"),
                 ("hive-cred add x --type oa", "hive-cred add x --type oauth2"),
                 ("hive-cred help rot", "hive-cred help rotate-key"),
                 ("hive-run --dry", "hive-run --dry-run"),
                 ("hive-run --usage gi", "hive-run --usage gitlab"),
                 ("hive-run -e T={{github", "hive-run -e T={{github_oauth}}")]
        lines = "".join("zpty -w -n z $'%s\\t'; sleep 0.5; zpty -w -n z $'\\x01print -r -- RESULT: \\n'\n" % line
                        for line, _ in cases)
        script = ('zmodload zsh/zpty\n'
                  'zpty z zsh -f -i\n'
                  'zpty -w z "bindkey -e; fpath=($1 \\$fpath); autoload -Uz compinit; compinit -u -d $2/zcd; '
                  'PS1=\\"> \\"; setopt nobeep"\n' + lines +
                  'zpty -w z "print -r -- EN\\"\\"D"\n'
                  'zpty -r z out "*END*"\n'
                  'zpty -d z\n'
                  'print -r -- "$out"\n')
        r = subprocess.run([self.zsh, "-f", "-c", script, "zsh", self.fdir, self.tmp], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=self.env, timeout=TIMEOUT)
        self.assertEqual((r.returncode, r.stderr), (0, b""))
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", r.stdout.decode("utf-8", "replace")).replace("\r", "\n")
        got = [ln[len("RESULT: "):].rstrip() for ln in text.split("\n") if ln.startswith("RESULT: ")]
        self.assertEqual(got, [want for _, want in cases], text[-3000:])


def bash_table(name="_hive_cred_commands"):
    text = BASH_COMPLETION.read_text()
    block = text[text.index(name + "=("):]
    return re.findall(r'^  "([^"]*)"$', block[:block.index("\n)")], re.M)


def usage_table():
    return bash_table("_hive_cred_usage")


def main():
    hivetest.main(binaries=["hive-run", "hive-cred"])


if __name__ == "__main__":
    main()
