#!/usr/bin/env python3
"""The public headers keep the API's promises (docs/libhive.md, Conventions):

- each says at its top what may be shared between threads;
- each exported function has a comment above it (alone or heading a group
  of declarations with no blank line between them);
- each function returning hive_rc is HIVE_NODISCARD (but hive_fail, which
  returns its own argument);
- no function hands over a secret as a bare char ** with a length: that
  is what hive_secret is for (a Fernet token, not secret, is the exception).

Usage: check_headers.py INCLUDE_DIR [OTHER_HEADER...]
"""

import re
import sys
from pathlib import Path

NOT_NODISCARD = {"hive_fail"}
BARE_BUFFER_OK = {"hive_fernet_encrypt", "hive_fernet_encrypt_at"}


def check(path):
    problems = []
    text = path.read_text()
    first = re.match(r"\s*/\*(.*?)\*/", text, re.S)
    if not first or not re.search(r"\bThreads?\b|Thread safety", first.group(1)):
        problems.append(f"{path.name}: the first comment does not say what may be shared between threads")
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not line.startswith("HIVE_EXPORT"):
            continue
        decl = line
        k = i + 1
        while ";" not in decl and k < len(lines):
            decl += " " + lines[k].strip()
            k += 1
        name = re.search(r"\b(hive_\w+)\s*\(", decl)
        name = name.group(1) if name else decl
        j = i - 1
        while j >= 0 and lines[j].strip() and not lines[j].rstrip().endswith("*/"):
            j -= 1
        if j < 0 or not lines[j].rstrip().endswith("*/"):
            problems.append(f"{path.name}:{i + 1}: {name} has no comment")
        if re.match(r"HIVE_EXPORT\s+(HIVE_NODISCARD\s+)?hive_rc\b", decl):
            if "HIVE_NODISCARD" not in decl and name not in NOT_NODISCARD:
                problems.append(f"{path.name}:{i + 1}: {name} returns hive_rc without HIVE_NODISCARD")
        if re.search(r"(?<!const )\bchar \*\*\w+,\s*size_t \*\w+", decl) and name not in BARE_BUFFER_OK:
            problems.append(f"{path.name}:{i + 1}: {name} hands over a buffer and a length, not a hive_secret")
    return problems


def main():
    include = Path(sys.argv[1])
    headers = sorted(include.glob("*.h")) + [Path(p) for p in sys.argv[2:]]
    if len(headers) < 10:
        print(f"only {len(headers)} headers under {include}")
        return 1
    problems = [p for h in headers for p in check(h)]
    for p in problems:
        print(p)
    print(f"{len(headers)} headers, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
