#!/usr/bin/env python3
"""Write tests/unit/cred_cases.inc: hand-made credential documents and what
the Python Hive makes of them when it loads one from its store and saves it
back (EncryptedFileStorage._deserialize_credential, then
_serialize_credential and json.dumps), or that it rejects it and which
field pydantic names first.

Needs pydantic 2 (the Python Hive's own dependency); it is not needed to run
the tests: the output is committed. Run again after adding a case:

    python3 tests/tools/gen_cred_cases.py

The models below declare the same fields, types and defaults as the Python
Hive's CredentialObject and CredentialKey (framework/credentials/models.py),
which is all pydantic looks at when it validates in its default lax mode.
created_at and updated_at are always given, so no clock enters the output.
"""
import json
import sys
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import pydantic
from pydantic import BaseModel, Field, SecretStr, ValidationError

if not pydantic.VERSION.startswith("2."):
    sys.exit("needs pydantic 2, found %s" % pydantic.VERSION)


class CredentialType(str, Enum):
    API_KEY = "api_key"
    OAUTH2 = "oauth2"
    BASIC_AUTH = "basic_auth"
    BEARER_TOKEN = "bearer_token"
    CUSTOM = "custom"


class CredentialKey(BaseModel):
    model_config = {"extra": "allow"}
    name: str
    value: SecretStr
    expires_at: Optional[datetime] = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class CredentialObject(BaseModel):
    model_config = {"extra": "allow"}
    id: str
    credential_type: CredentialType = CredentialType.API_KEY
    keys: dict[str, CredentialKey] = Field(default_factory=dict)
    provider_id: Optional[str] = None
    last_refreshed: Optional[datetime] = None
    auto_refresh: bool = False
    last_used: Optional[datetime] = None
    use_count: int = 0
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


def hive_load_save(data):
    """What Hive's storage does: wrap str values in SecretStr, validate, dump."""
    for key_data in data.get("keys", {}).values() if isinstance(data.get("keys"), dict) else []:
        if isinstance(key_data, dict) and "value" in key_data and isinstance(key_data["value"], str):
            key_data["value"] = SecretStr(key_data["value"])
    cred = CredentialObject.model_validate(data)
    out = cred.model_dump(mode="json")
    for key_name, key_data in out.get("keys", {}).items():
        if "value" in key_data:
            key_data["value"] = cred.keys[key_name].value.get_secret_value()
    return json.dumps(out, default=str)


T = {"created_at": "2026-03-01T12:00:00Z", "updated_at": "2026-03-01T12:00:00Z"}


def doc(**fields):
    d = {"id": "c"}
    d.update(fields)
    for k, v in T.items():
        d.setdefault(k, v)
    return d


def key(value="v", **fields):
    k = {"name": "api_key", "value": value}
    k.update(fields)
    return k


CASES = [
    # credential_type: the enum's values only, case-sensitive
    doc(credential_type="api_key"), doc(credential_type="oauth2"), doc(credential_type="custom"),
    doc(credential_type="weird"), doc(credential_type="API_KEY"), doc(credential_type=""),
    doc(credential_type=1), doc(credential_type=None),
    # keys: a key without name, with another name, odd values
    doc(keys={"api_key": {"value": "v"}}), doc(keys={"api_key": key(name="other")}),
    doc(keys={"api_key": key(value=7)}), doc(keys={"api_key": key(value=None)}),
    doc(keys={"api_key": {"name": "api_key"}}), doc(keys={"api_key": key(name=5)}),
    doc(keys={"api_key": "plain"}), doc(keys=[]), doc(keys=None),
    doc(keys={"api_key": key(metadata=None)}), doc(keys={"api_key": key(metadata=[])}),
    doc(keys={"api_key": key(metadata={"a": [1, {"b": None}]})}),
    doc(keys={"api_key": key(extra_field=1, another="x")}),
    # datetimes: offsets, naive, numbers, numeric strings
    doc(keys={"api_key": key(expires_at="2026-03-01T12:00:00+05")}),
    doc(keys={"api_key": key(expires_at="2026-03-01T12:00:00+05:00")}),
    doc(keys={"api_key": key(expires_at="2026-03-01T12:00:00+0530")}),
    doc(keys={"api_key": key(expires_at="2026-03-01T12:00:00-00:00")}),
    doc(keys={"api_key": key(expires_at="2026-03-01 12:00")}),
    doc(keys={"api_key": key(expires_at="2026-03-01")}),
    doc(keys={"api_key": key(expires_at="2026-03-01T12:00:00.5Z")}),
    doc(keys={"api_key": key(expires_at="2026-03-01T12:00:00.123456789Z")}),
    doc(keys={"api_key": key(expires_at="2026-03-01t12:00:00z")}),
    doc(keys={"api_key": key(expires_at=" 2026-03-01T12:00:00Z")}),
    doc(keys={"api_key": key(expires_at="2026-3-1T12:00:00Z")}),
    doc(keys={"api_key": key(expires_at="1772366400")}), doc(keys={"api_key": key(expires_at=1772366400)}),
    doc(keys={"api_key": key(expires_at=1772366400.25)}), doc(keys={"api_key": key(expires_at="1772366400123")}),
    doc(keys={"api_key": key(expires_at=-1)}), doc(keys={"api_key": key(expires_at=True)}),
    doc(keys={"api_key": key(expires_at="")}), doc(keys={"api_key": key(expires_at="tomorrow")}),
    doc(last_refreshed="2026-03-01T12:00:00+01:00"), doc(last_used=0), doc(created_at=None),
    doc(created_at="2026-03-01T24:00:00Z"), doc(updated_at="2026-02-30T12:00:00Z"),
    # use_count: pydantic's lax int
    doc(use_count=7), doc(use_count="7"), doc(use_count=" 7 "), doc(use_count="+7"), doc(use_count="-7"),
    doc(use_count="7.0"), doc(use_count="7.5"), doc(use_count=7.0), doc(use_count=7.5), doc(use_count=True),
    doc(use_count=False), doc(use_count=""), doc(use_count="0x10"), doc(use_count="1_000"),
    doc(use_count=None), doc(use_count=[]), doc(use_count=12345678901234567890),
    doc(use_count="12345678901234567890"), doc(use_count=1e20), doc(use_count="1e3"), doc(use_count="07"),
    # auto_refresh: pydantic's lax bool
    doc(auto_refresh=True), doc(auto_refresh="true"), doc(auto_refresh="YES"), doc(auto_refresh="on"),
    doc(auto_refresh="1"), doc(auto_refresh=1), doc(auto_refresh=0), doc(auto_refresh=1.0),
    doc(auto_refresh=2), doc(auto_refresh="maybe"), doc(auto_refresh=None), doc(auto_refresh=" true"),
    # strings: no number becomes a string
    doc(description=5), doc(description=None), doc(description="d"), doc(provider_id=None),
    doc(provider_id=3), doc(provider_id="p"), doc(tags=["a", "b"]), doc(tags=["a", 1]), doc(tags="a"),
    doc(tags=None), doc(tags=[]),
    # id
    {"credential_type": "api_key", **T}, dict(doc(), id=5), dict(doc(), id=None),
    # extra top-level fields are kept, in order
    doc(name="extra", zzz=[1, 2], aaa={"x": 1}),
    # member names are counted strings: a NUL inside one neither cuts it nor merges it with another
    doc(keys={"a\u0000b": key(name="a\u0000b"), "a": key(value="w", name="a")},
        **{"x\u0000y": 1, "x": 2}),
    doc(keys={"k": key(metadata={"m\u0000n": "1", "m": "2"}, **{"e\u0000f": 3})}),
    doc(keys={"id\u0000": key(name="id\u0000")}, **{"id\u0000x": "not the id"}),
]


def c_string(s):
    out = []
    for b in s.encode("utf-8"):
        if b in (0x22, 0x5C):
            out.append("\\" + chr(b))
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append("\\%03o" % b)
    return '"' + "".join(out) + '"'


def main():
    lines = ["/* Generated by tests/tools/gen_cred_cases.py with pydantic %s: do not edit. */"
             % pydantic.VERSION,
             "static const struct cred_case {",
             "    const char *in;       /* the plaintext JSON of a credential */",
             "    const char *out;      /* what Hive writes back after loading it; NULL: rejected */",
             "    const char *field;    /* rejected: the field pydantic names first */",
             "} cred_cases[] = {"]
    for case in CASES:
        text = json.dumps(case)
        try:
            out, field = hive_load_save(json.loads(text)), None
        except ValidationError as e:
            out, field = None, ".".join(str(p) for p in e.errors()[0]["loc"])
        lines.append("    {%s,\n     %s, %s}," % (c_string(text), c_string(out) if out is not None else "NULL",
                                                  c_string(field) if field is not None else "NULL"))
    lines.append("};")
    path = Path(__file__).resolve().parents[1] / "unit" / "cred_cases.inc"
    path.write_text("\n".join(lines) + "\n")
    print("wrote %s: %d cases" % (path, len(CASES)))


if __name__ == "__main__":
    main()
