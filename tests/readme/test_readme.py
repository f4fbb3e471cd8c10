#!/usr/bin/env python3
"""Every ```sh block of README.md, run literally, in order, in a sandbox.

Run:  python3 tests/readme/test_readme.py [-v]

Environment:
  HIVE_CRED, HIVE_RUN   the built tools (default: <repo>/build/launcher/...)
  README                the README to check (default: <repo>/README.md)

The README is executable documentation: a block that stops working fails
this test. Each ```sh block runs as `sh -e -c BLOCK`, one after the other,
all in one sandbox, so that a block may use what an earlier one stored:

- HOME is a new temporary directory (so ~/.hive is the sandbox's store),
  with no HIVE_HOME, HIVE_CREDENTIAL_KEY, HIVE_NEW_CREDENTIAL_KEY, the key
  command's variables or CREDENTIALS_DIRECTORY inherited; the working directory is a new directory beside it;
- the directories of the built hive-cred and hive-run come first on PATH,
  then stand-ins for programs the README names that are not hive's and
  not installed here (`gh`: it prints whether GH_TOKEN reached it
  rendered), then the inherited PATH;
- the working directory has a Makefile whose `deploy` target checks that
  GITHUB_TOKEN arrived rendered, as the README's `make deploy` expects;
- the placeholders the README uses for values the reader supplies are set
  to dummy values: TOKEN, SECRET, AT, RT, BRAVE_KEY; TOKEN_URL is the token
  endpoint of a small OAuth2 server this test runs on 127.0.0.1 (it answers
  the refresh_token and client_credentials grants of the client `my-app`
  whose secret is $SECRET).

A block that cannot run here is fenced ```sh-norun, with the reason on the
fence line after it (```sh-norun needs a live etcd cluster); the test lists
those, and fails if one gives no reason. Blocks in other languages (json)
are not run. The test fails when a block exits non-zero, and prints the
block with its output.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HIVE_CRED = os.path.abspath(os.environ.get("HIVE_CRED") or REPO / "build" / "launcher" / "hive-cred")
HIVE_RUN = os.path.abspath(os.environ.get("HIVE_RUN") or REPO / "build" / "launcher" / "hive-run")
README = os.path.abspath(os.environ.get("README") or REPO / "README.md")

TIMEOUT = 60
PLACEHOLDERS = {
    "TOKEN": "gho_readme-dummy-token-0001",
    "SECRET": "readme-client-secret-0002",
    "AT": "readme-access-token-0003",
    "RT": "readme-refresh-token-0004",
    "BRAVE_KEY": "BSA-readme-dummy-0005",
}
SCRUB = ("HIVE_HOME", "HIVE_CREDENTIAL_KEY", "HIVE_NEW_CREDENTIAL_KEY", "HIVE_ETCD_PASSWORD",
         "HIVE_CREDENTIAL_KEY_COMMAND", "HIVE_CREDENTIAL_KEY_COMMAND_TIMEOUT", "CREDENTIALS_DIRECTORY",
         "ADEN_API_KEY", "ADEN_API_URL", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY",
         "ALL_PROXY", "all_proxy")

FENCE = re.compile(r"^```(\S*)[ \t]*(.*)$")


def blocks(path):
    """[(line, language, note, text)] for every fenced block of path."""
    out = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        start, lang, note = i + 1, m.group(1), m.group(2).strip()
        body = []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError("README.md line %d: a fenced block that never ends" % start)
        out.append((start, lang, note, "\n".join(body) + "\n"))
        i += 1
    return out


class TokenServer(BaseHTTPRequestHandler):
    """A token endpoint: refresh_token and client_credentials for my-app."""

    issued = 0

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        get = lambda k: (form.get(k) or [""])[0]   # noqa: E731
        if self.path != "/token" or get("client_id") != "my-app" or get("client_secret") != PLACEHOLDERS["SECRET"]:
            return self.answer(401, {"error": "invalid_client"})
        grant = get("grant_type")
        if grant == "refresh_token" and get("refresh_token") != PLACEHOLDERS["RT"]:
            return self.answer(400, {"error": "invalid_grant"})
        if grant not in ("refresh_token", "client_credentials"):
            return self.answer(400, {"error": "unsupported_grant_type"})
        TokenServer.issued += 1
        self.answer(200, {"access_token": "readme-refreshed-%d" % TokenServer.issued,
                          "token_type": "Bearer", "expires_in": 3600})

    def answer(self, code, doc):
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


GH_STUB = """#!/bin/sh
# stand-in for the GitHub CLI: the README's hive-run must hand it a rendered token
case "$GH_TOKEN" in
  ''|*'{{'*) echo "gh: GH_TOKEN is not a rendered token" >&2; exit 1 ;;
esac
echo "gh (stand-in): $*"
"""

MAKEFILE = """deploy:
\t@case "$$GITHUB_TOKEN" in ''|*'{{'*) echo "deploy: no rendered GITHUB_TOKEN" >&2; exit 1;; esac
\t@echo "deploy (stand-in): token received"
"""


class ReadmeBlocks(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.blocks = blocks(README)
        cls.server = HTTPServer(("127.0.0.1", 0), TokenServer)
        cls.thread = threading.Thread(target=cls.server.serve_forever, daemon=True)
        cls.thread.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()

    def sandbox(self):
        tmp = tempfile.mkdtemp(prefix="hive-readme-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        home, work, stubs = (os.path.join(tmp, d) for d in ("home", "work", "stubs"))
        for d in (home, work, stubs):
            os.mkdir(d, 0o700)
        with open(os.path.join(stubs, "gh"), "w") as f:
            f.write(GH_STUB)
        os.chmod(os.path.join(stubs, "gh"), 0o755)
        with open(os.path.join(work, "Makefile"), "w") as f:
            f.write(MAKEFILE)
        env = {k: v for k, v in os.environ.items() if k not in SCRUB}
        tools = []
        for tool in (HIVE_CRED, HIVE_RUN):
            if os.path.dirname(tool) not in tools:
                tools.append(os.path.dirname(tool))
        env["PATH"] = os.pathsep.join(tools + [stubs, env.get("PATH", "/usr/bin:/bin")])
        env["HOME"] = home
        env["LC_ALL"] = "C"
        env.update(PLACEHOLDERS)
        env["TOKEN_URL"] = "http://127.0.0.1:%d/token" % self.server.server_address[1]
        return env, work

    def test_tools_are_the_built_ones(self):
        for tool in (HIVE_CRED, HIVE_RUN):
            self.assertTrue(os.access(tool, os.X_OK), "%s is not built (set HIVE_CRED, HIVE_RUN)" % tool)
        env, work = self.sandbox()
        r = subprocess.run(["sh", "-c", "command -v hive-cred; command -v hive-run"], env=env, cwd=work,
                           stdout=subprocess.PIPE, timeout=TIMEOUT)
        self.assertEqual(r.stdout.decode().split(), [HIVE_CRED, HIVE_RUN])

    def test_every_sh_block_runs(self):
        runnable = [b for b in self.blocks if b[1] == "sh"]
        norun = [b for b in self.blocks if b[1] == "sh-norun"]
        self.assertGreaterEqual(len(runnable), 5, "README.md has lost its ```sh blocks?")
        for line, _, note, _ in norun:
            self.assertTrue(note, "README.md line %d: a ```sh-norun block must say why on its fence line" % line)
            print("not run: README.md line %d (%s)" % (line, note), file=sys.stderr)
        env, work = self.sandbox()
        for line, _, _, text in runnable:
            with self.subTest(line=line):
                r = subprocess.run(["sh", "-e", "-c", text], env=env, cwd=work, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=TIMEOUT)
                self.assertEqual(r.returncode, 0, "README.md line %d: the block exits %d\n--- block\n%s"
                                 "--- output\n%s" % (line, r.returncode, text,
                                                     r.stdout.decode("utf-8", "replace")))
                for value in PLACEHOLDERS.values():
                    # the README never shows a command that prints a secret by accident
                    # (get prints on purpose: that is what a block with 'get' is for)
                    if " get " not in text and "--reveal" not in text:
                        self.assertNotIn(value.encode(), r.stdout, "README.md line %d printed a secret" % line)


if __name__ == "__main__":
    unittest.main()
