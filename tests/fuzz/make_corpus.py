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
