"""tests/oauth/server.js, the real OAuth2 server (oidc-provider), started
and stopped for a test module: shared by the oauth, fresh and etcd tests."""
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

OAUTH_DIR = Path(__file__).resolve().parent
PROXY_VARS = ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy",
              "no_proxy", "NO_PROXY"]


def missing():
    """Why the server cannot run, or None."""
    if shutil.which("node") is None:
        return "node is not on PATH (scripts/setup installs nodejs)"
    if not (OAUTH_DIR / "node_modules" / "oidc-provider").is_dir():
        return "%s is missing: run 'npm ci --prefix tests/oauth'" % (OAUTH_DIR / "node_modules")
    return None


class OAuthServer:
    """One server process; its stdin stays a pipe, so it exits with us."""

    POST_ID, POST_SECRET = "hive-post", "post-secret-123"

    def __init__(self, tmp, access_ttl=60):
        port_file = os.path.join(tmp, "oauth-ports.json")
        self.log = os.path.join(tmp, "oauth.log")
        env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(["node", str(OAUTH_DIR / "server.js"), "--port-file", port_file,
                                          "--access-ttl", str(access_ttl)],
                                         stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("the OAuth2 test server did not start:\n%s" % self.log_tail())
            time.sleep(0.05)
        with open(port_file, encoding="utf-8") as f:
            self.ports = json.load(f)
        self.token_url = "http://127.0.0.1:%d%s" % (self.ports["http"], self.ports["token_path"])

    def log_tail(self):
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def request(self, method, path, form=None, port=None):
        """(status, parsed JSON body) of a request to 127.0.0.1 (the http port by default)."""
        data = urllib.parse.urlencode(form).encode() if form is not None else (b"" if method == "POST" else None)
        rq = urllib.request.Request("http://127.0.0.1:%d%s" % (port or self.ports["http"], path), data=data,
                                    method=method)
        if form is not None:
            rq.add_header("Content-Type", "application/x-www-form-urlencoded")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(rq, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def admin(self, method, path):
        status, body = self.request(method, path)
        if status != 200:
            raise AssertionError("%s %s: HTTP %d %r" % (method, path, status, body))
        return body

    def mint(self, client=POST_ID):
        return self.admin("POST", "/test/mint?client=" + client)["refresh_token"]

    def stats(self):
        return self.admin("GET", "/test/stats")

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdin:
            self.proc.stdin.close()
