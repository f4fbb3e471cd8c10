#!/usr/bin/env python3
"""Write the seed corpora tests/fuzz/corpus/<target>/ from the test data
(tests/data: the Fernet spec vectors, the store written by the Python Hive
and its expected plaintexts) and a few hand-written samples. The output is
committed; run this again after changing it:

    python3 tests/fuzz/make_corpus.py [DATA_DIR]

Every file is small and holds nothing secret beyond the public fixtures.
Names are the SHA-1 of the content, as libFuzzer names what it adds.
"""
import hashlib
import json
import pathlib
import shutil
import sys

HERE = pathlib.Path(__file__).resolve().parent
DATA = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else HERE.parent / "data").resolve()
CORPUS = HERE / "corpus"
FIXTURE = DATA / "fixtures" / "hive-home"
VECTORS = DATA / "vectors" / "fernet"


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def fernet_vectors():
    for name in ("generate", "verify", "invalid"):
        yield from load(VECTORS / f"{name}.json")


def plaintexts():
    return [c["plaintext_json"] for c in load(FIXTURE / "fixture-expected.json")["credentials"]]


INDEX_2 = (FIXTURE / "credentials" / "metadata" / "index.json").read_text(encoding="utf-8")
INDEX_1 = json.dumps({
    "credentials": {"anthropic": {"updated_at": "2026-03-01T12:00:00+00:00", "type": "api_key"},
                    "brave_search": {"updated_at": "2026-03-01T12:00:00+00:00", "type": "api_key"}},
    "version": "1.0", "last_modified": "2026-03-01T12:00:00+00:00"}, indent=2)
# The fuzz_index store holds brave_search, github_oauth and team/slack
# (file team_slack.enc) and a damaged broken.enc.
INDEX_FUZZ_STORE = json.dumps({
    "credentials": {
        "brave_search": {"credential_type": "api_key", "provider": None, "alias": None, "identity": {},
                         "key_names": ["value"], "created_at": "2026-03-01T12:00:00+00:00",
                         "updated_at": "2026-03-01T12:00:00+00:00", "last_refreshed": None,
                         "expires_at": None, "auto_refresh": False, "tags": []},
        "github_oauth": {"credential_type": "oauth2", "key_names": ["value"],
                         "expires_at": "2026-03-01T13:00:00+00:00"},
        "team/slack": {"credential_type": "api_key", "key_names": ["value"]}},
    "version": "2.0", "store_path": "/tmp/x", "generated_at": "2026-03-01T12:00:00+00:00"}, indent=2)

# fuzz_mask reads its input as a program (see fuzz_mask.c): a header,
# the secrets, then ops that build the text, feed it and fall silent.
MASK_SYMS = "ab12ef-\n =/+%"


def mask_syms(text):
    return bytes(MASK_SYMS.index(c) for c in text)


def mask_seed(min_len, secrets, ops):
    """secrets: ("new", text) | ("raw", bytes) | ("start", k, n, more)
    | ("end", k, from, more); ops: (kind, args, feed_cut or None, silence)
    with kind "text" (args: the text), "whole" (pattern index), "head"
    (index, n) or "tail" (index, from)."""
    out = bytearray([len(secrets) - 1, min_len - 4])
    for sec in secrets:
        if sec[0] == "new":
            out += bytes([0, len(sec[1])]) + mask_syms(sec[1])
        elif sec[0] == "raw":
            out += bytes([3, len(sec[1])]) + sec[1]
        else:
            out += bytes([1 if sec[0] == "start" else 2, sec[1], sec[2], len(sec[3])]) + mask_syms(sec[3])
    for kind, args, cut, silence in ops:
        op = ["text", "whole", "head", "tail"].index(kind) | (4 if cut is not None else 0) | (8 if silence else 0)
        if kind == "text":
            out += bytes([op, len(args) - 1]) + mask_syms(args)
        elif kind == "whole":
            out += bytes([op, args])
        else:
            out += bytes([op, *args])
        if cut is not None:
            out.append(cut)
    return bytes(out)


def mask_seeds():
    # patterns of a secret without '\n', in order: the value, base64 and
    # base64url unpadded, then padded, hex, HEX, URL, URL (form)
    prefix = [("new", "ab12ef"), ("start", 0, 6, "-1a")]
    overlap = [("new", "abef12ab"), ("end", 0, 4, "ffee")]
    chain = [("new", "abef12ab"), ("end", 0, 4, "ffee"), ("end", 1, 5, "fe12= ")]
    return [
        # a secret that begins another ends the text, whole or fed in pieces
        mask_seed(6, prefix, [("text", "% ", None, False), ("whole", 0, None, False)]),
        mask_seed(6, prefix, [("text", "% ", 1, False), ("head", (0, 3), 1, True), ("tail", (0, 3), None, False)]),
        mask_seed(6, prefix, [("whole", 9, None, False), ("text", " ", None, False), ("whole", 0, 0, True)]),
        # the text ends inside what could still be one secret, with another
        # whole in it
        mask_seed(6, [("new", "ab12ef-1a"), ("new", "12ef-1")], [("text", "% ", None, False), ("head", (0, 8), None, False)]),
        mask_seed(6, [("new", "ab12ef-1a"), ("new", "12ef-1")], [("text", "% ", 1, True), ("head", (0, 8), 4, True)]),
        # unpadded base64 (and base64url) of a short secret ends the text
        mask_seed(4, [("new", "ab12e")], [("text", "% ", None, False), ("whole", 1, None, False)]),
        mask_seed(4, [("new", "a/+=e")], [("text", "% ", 2, False), ("whole", 2, 3, False)]),
        # overlapping secrets, and a chain of three, in one chunk and cut
        mask_seed(6, overlap, [("text", "% ", None, False), ("whole", 0, None, False), ("text", "ffee %", None, False)]),
        mask_seed(6, overlap, [("text", "% ", 0, False), ("whole", 0, 5, True), ("text", "ffee", 2, True)]),
        mask_seed(4, chain, [("whole", 0, None, False), ("text", "ffeefe12", None, False), ("text", "= %", 0, False)]),
        mask_seed(4, chain, [("whole", 9, None, False), ("tail", (18, 8), 3, False), ("whole", 18, None, False)]),
        # a secret one byte at a time, silent after each: released under 4
        # bytes, masked from its fourth
        mask_seed(6, [("new", "ab12ef-1")], [("text", "=", 0, True)] + [("text", c, 0, True) for c in "ab12ef-1"]
                  + [("text", "=", None, False)]),
        # a value with a newline (its "\r\n" form) and one of any bytes (URL
        # and hex forms), a long chunk after a held tail
        mask_seed(6, [("new", "ab\n12ef"), ("raw", b"\x00\xf1 %+/=\xff")],
                  [("whole", 1, None, False), ("head", (10, 9), 0, False), ("text", "ab" * 4, None, False)]
                  + [("whole", i, None, False) for i in range(10, 19)] + [("head", (1, 7), 4, False)]),
    ]


SEEDS = {
    "fernet": lambda: [v["token"] for v in fernet_vectors()]
    + [p.read_text() for p in sorted((FIXTURE / "credentials" / "credentials").glob("*.enc"))][:3]
    + [v["src"] for v in fernet_vectors() if "src" in v] + plaintexts()[:2],
    "fernet_key": lambda: sorted({v["secret"] for v in fernet_vectors()})
    + [(FIXTURE / "secrets" / "credential_key").read_text(),
       load(FIXTURE / "fixture-expected.json")["key"] + "\n",
       "cw/0x689RpI+jtRR7oE8h/eQsKImvJapLeSbXpwF4e4=",      # the standard alphabet
       "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4",       # padding missing
       "  cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=  trailing"],
    "json": lambda: plaintexts()[:4] + [INDEX_2, INDEX_1]
    + ['[1, -0, 1.5e300, 12345678901234567890123, 1E-7, 0.1, true, false, null]',
       '{"a": "\\u0000\\ud800\\udc00\\ud83d \\"\\\\\\/\\b\\f\\n\\r\\t", "a": 2, "\\u00e9": []}',
       '\ufeff {"nested": [[[{"x": {}}]]]}  ', '"caf\u00e9 \u2713"', '[NaN, Infinity, -Infinity]'],
    "cred": lambda: plaintexts()
    + ['{"id": "x", "credential_type": "custom", "keys": {"k": {"name": "k", "value": "v", '
       '"expires_at": "2026-03-01T13:00:00+02:00", "metadata": {"n": 1}}}, "extra": [1, 2], '
       '"created_at": 1772366400, "updated_at": "2026-03-01 12:00:00.5"}',
       '{"id": "y", "credential_type": "future_type", "keys": {}, "tags": ["a"], "use_count": 3}'],
    "index": lambda: [INDEX_FUZZ_STORE, INDEX_2, INDEX_1, '{"credentials": {}, "version": "1.0"}',
                      '{"credentials": {"team/slack": {}, "team_slack": {}}, "version": "2.0"}',
                      '{"credentials": [], "version": "2.0"}', '{not json'],
    "template": lambda: ["Bearer {{github-oauth.access_token}}",
                         "https://api.example.com?key={{brave_search}}&x={{brave_search.api_key}}",
                         "{{missing}} {{brave_search.nokey}}", "{{ brave_search }} {{a..b}} {{}} {{{x}}}",
                         "plain text, no references", "{{brave_search.api_key}}{{brave_search}}"],
    "dotenv": lambda: ["# comment\nexport BRAVE_API_KEY=abc123\nEMPTY=\nSPACED = value with spaces # note\n",
                       "SINGLE='literal $HOME \\n'\nDOUBLE=\"line1\\nline2 \\\"q\\\" \\$x\"\n",
                       "MULTI=\"first\nsecond\"\nA.B_c=1\n_X=2\r\n",
                       "1BAD=x\n", "NOEQUALS\n", "Q='unterminated\n"],
    "oauth2": lambda: ['{"access_token": "gho_new", "token_type": "bearer", "expires_in": 3600, '
                       '"refresh_token": "ghr_new", "scope": "repo user"}',
                       '  \n{"error": "invalid_grant", "error_description": "Bad refresh token"}',
                       "access_token=gho_new&token_type=bearer&expires_in=3600&scope=repo%2Cuser+x",
                       "error=bad_verification_code&error_description=The+code+passed+is+incorrect.",
                       "a=%zz&=x&b&c=%41%42%43&&d=1=2", "<html><body>502 Bad Gateway</body></html>",
                       '{"access_token": "x", "expires_in": "3600"}'],
    "mask": mask_seeds,
    "etcdurl": lambda: ["etcd://127.0.0.1:2379/hive", "etcds://alice@a.example,b.example:2380,[::1]:2381/team/hive/"
                        "?lock_ttl=30&timeout=2.5&ca_file=/etc/ca.pem&cert_file=c.pem&key_file=k.pem",
                        "etcd://h/p?timeout=5x", "etcd://a,,b/p", "etcd://u:pw@h/p", "etcd://[::1/p",
                        "etcd://h:65536/p?timeout=1&timeout=2&", "etcd://h/p?timeout=0000000000000000000000005"],
    "datetime": lambda: ["2026-03-01T12:00:00Z", "2026-03-01T12:00:00+00:00", "2026-03-01T13:00:00.123456+02:00",
                         "2026-03-01 12:00", "2026-03-01", "1772366400", "1772366400123", "-1.5",
                         "2024-02-29T23:59:59-0530", "0001-01-01T00:00:00", "9999-12-31T23:59:59.999999Z",
                         "2026-03-01T12:00:00,5+05"],
}


def main():
    for target, seeds in SEEDS.items():
        out = CORPUS / target
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        for seed in seeds():
            data = seed.encode("utf-8", "surrogatepass") if isinstance(seed, str) else seed
            (out / hashlib.sha1(data).hexdigest()).write_bytes(data)
        print(f"corpus/{target}: {len(list(out.iterdir()))} files")


if __name__ == "__main__":
    main()
