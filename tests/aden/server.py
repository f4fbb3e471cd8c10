#!/usr/bin/env python3
"""A local implementation of the Aden credential API, for tests.

No Aden server is reachable from the test machines, so hive's Aden client
(store/src/aden.c) is tested against this one. It implements what the
Python Hive's AdenCredentialClient uses:

  GET  /v1/credentials                -> {"integrations": [{integration_id, provider,
                                           alias, status, email, expires_at}]}
  GET  /v1/credentials/{id}           -> {access_token, token_type, expires_at, provider,
                                           alias, email, scopes, metadata}
  POST /v1/credentials/{id}/refresh   -> the same, with a new access token
  GET  /v1/credentials/{id}/validate  -> {valid, status, expires_at, error}

with bearer authentication (a wrong or missing key is 401) and 404 for an
unknown integration. Tests drive it through an AdenServer object in the
same process: the integrations and their tokens, an error answer per path
(status, JSON body, extra headers such as Retry-After), paths that hang,
and a log of every request with its headers.

Standard library only. Run alone for manual trials:

    python3 tests/aden/server.py [--port N] [--key KEY]

serves two sample integrations until interrupted.
"""

import argparse
import http.server
import json
import threading
import time
import urllib.parse
from datetime import datetime, timezone

PREFIX = "/v1/credentials"


def iso(t):
    """ISO 8601 UTC with Z, as Aden writes expires_at."""
    return datetime.fromtimestamp(int(t), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class AdenServer:
    """The API on 127.0.0.1 (port 0: a free one), threaded, plus its state."""

    def __init__(self, api_key="aden-test-key", port=0):
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.api_key = api_key
        self.reset()
        state = self

        class Handler(_Handler):
            server_state = state

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- state, set by tests ---------------------------------------------

    def reset(self):
        with self.lock:
            self.release.set()          # let any hanging request go
            self.release = threading.Event()
            self.integrations = {}      # id -> listing entry (insertion order kept)
            self.tokens = {}            # id -> token answer
            self.errors = {}            # (method or "*", path or "*") -> (status, body, headers)
            self.hang = set()           # (method or "*", path or "*") that never answer
            self.log = []               # every request: {"method", "path", "headers", "body", "time"}
            self.refresh_ttl = 3600
            self.refreshes = {}         # id -> refreshes done

    def add(self, iid, provider, alias, email=None, status="active", expires_in=3600, scopes=(),
            access_token=None, metadata=None, expires_at=None):
        """An integration and its current token."""
        exp = expires_at or iso(time.time() + expires_in)
        with self.lock:
            self.integrations[iid] = {"integration_id": iid, "provider": provider, "alias": alias,
                                      "status": status, "email": email, "expires_at": exp}
            self.tokens[iid] = {"access_token": access_token or "aden-%s-0" % iid, "token_type": "Bearer",
                                "expires_at": exp, "provider": provider, "alias": alias, "email": email,
                                "scopes": list(scopes), "metadata": dict(metadata or {})}

    def fail(self, path, status, body=None, headers=None, method="*"):
        """Answer path (exact, after decoding; "*" for every path) with an error."""
        with self.lock:
            self.errors[(method, path)] = (status, body, dict(headers or {}))

    def hang_on(self, path="*", method="*"):
        """Never answer path (until reset or close)."""
        with self.lock:
            self.hang.add((method, path))

    def clear_log(self):
        with self.lock:
            self.log = []

    def requests(self, method=None, path=None):
        with self.lock:
            return [r for r in self.log
                    if (method is None or r["method"] == method) and (path is None or r["path"] == path)]

    # --- the API -----------------------------------------------------------

    def _lookup(self, table, method, path):
        for key in [(method, path), ("*", path), (method, "*"), ("*", "*")]:
            if key in table:
                return key
        return None

    def handle(self, method, path, headers, body):
        """(status, JSON body or None, extra headers, hang event or None)."""
        with self.lock:
            self.log.append({"method": method, "path": path, "headers": headers, "body": body,
                             "time": time.time()})
            if self._lookup(self.hang, method, path) is not None:
                return None, None, {}, self.release
            key = self._lookup(self.errors, method, path)
            if key is not None:
                status, err_body, extra = self.errors[key]
                return status, err_body, extra, None
            if self.api_key is not None and headers.get("authorization") != "Bearer " + self.api_key:
                return 401, {"error": "unauthorized", "message": "Invalid API key"}, {}, None
            if not path.startswith(PREFIX):
                return 404, {"message": "no such endpoint"}, {}, None
            rest = path[len(PREFIX):]
            if rest in ("", "/"):
                if method != "GET":
                    return 405, {"message": "method not allowed"}, {}, None
                return 200, {"integrations": [dict(v) for v in self.integrations.values()]}, {}, None
            parts = rest[1:].split("/")
            iid = parts[0]
            action = parts[1] if len(parts) > 1 else ""
            if len(parts) > 2 or iid not in self.integrations:
                return 404, {"message": "Integration not found"}, {}, None
            if action == "" and method == "GET":
                return 200, dict(self.tokens[iid]), {}, None
            if action == "refresh" and method == "POST":
                n = self.refreshes.get(iid, 0) + 1
                self.refreshes[iid] = n
                tok = dict(self.tokens[iid])
                tok["access_token"] = "aden-%s-%d" % (iid, n)
                tok["expires_at"] = iso(time.time() + self.refresh_ttl)
                self.tokens[iid] = tok
                self.integrations[iid]["expires_at"] = tok["expires_at"]
                return 200, dict(tok), {}, None
            if action == "validate" and method == "GET":
                entry = self.integrations[iid]
                ok = entry["status"] == "active"
                return 200, {"valid": ok, "status": entry["status"], "expires_at": entry["expires_at"],
                             "error": None if ok else "integration is %s" % entry["status"]}, {}, None
            return 405, {"message": "method not allowed"}, {}, None


class _Handler(http.server.BaseHTTPRequestHandler):
    server_state = None
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _serve(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, answer, extra, wait = self.server_state.handle(method, path, headers, body)
        if wait is not None:
            wait.wait(60)
            self.close_connection = True
            return
        data = b"" if answer is None else json.dumps(answer).encode()
        self.send_response(status)
        if answer is not None:
            self.send_header("Content-Type", "application/json")
        for k, v in extra.items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_PUT(self):
        self._serve("PUT")

    def do_DELETE(self):
        self._serve("DELETE")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--key", default="aden-test-key")
    args = ap.parse_args()
    srv = AdenServer(api_key=args.key, port=args.port)
    srv.add("int-gh", "github", "work", email="dev@example.com", scopes=["repo", "read:org"])
    srv.add("int-slack", "slack", "team", email="bot@example.com")
    print("ADEN_API_URL=%s ADEN_API_KEY=%s" % (srv.url, args.key), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.close()


if __name__ == "__main__":
    main()
