#!/usr/bin/env python3
"""hive's .env reader against python-dotenv itself (Debian's python3-dotenv,
which scripts/setup installs; the Python Hive's environment storage calls
its dotenv_values()).

Every case is written to a file and read by both: python-dotenv's
dotenv_values() (its warnings for skipped statements captured from its
logger) and tests/tools/dotenv_tool (hive_dotenv_load_with). The values,
None included, the order of the names and the lines of the skipped
statements must be the same. The cases are hand-written ones for each rule
and a few thousand random ones built from the characters that matter to the
grammar (quotes, escapes, '#', '=', ${...}, Unicode whitespace, line ends).

Environment: DOTENV_TOOL (the tool; ctest sets it), DOTENV_CASES (random
cases, default 3000), DOTENV_SEED.
"""
import json
import logging
import os
import random
import subprocess
import sys
import tempfile

try:
    import dotenv
except ImportError:
    # the Python that has cryptography may not be Debian's; Debian's has python3-dotenv
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and os.access("/usr/bin/python3", os.X_OK):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    sys.exit("dotenv_crosscheck: cannot run: python-dotenv is not installed "
             "(Debian: python3-dotenv; scripts/setup installs it)")

TOOL = os.environ.get("DOTENV_TOOL")
if not TOOL or not os.access(TOOL, os.X_OK):
    sys.exit("dotenv_crosscheck: cannot run: set DOTENV_TOOL to the dotenv_tool binary")

HAND = [
    "A=1\nB=two\n", "# comment\n\n  \nA=1\n  # indented\n", "export A=1\nexport  B=2\nexported=3\n",
    "export=1\n", "export A\n", "export \n", "A = spaced  \nB\t=\ttabbed\t\n", "A=\nB= \n",
    "A='x\\ny $B \"q\" # not'\n", "A='a\\'b'\n", "A='a\\\\b'\n", "A='abc\\'\n", "A='x\\'y\\'\n",
    'A="x\\ny\\tz\\r\\\\ \\" \\\' \\$ \\a\\b\\f\\v \\q"\n', 'A="a # b" # c\n', 'A="unterminated\nB=2\n',
    "A='unterminated\nB=2\nC='x'\n", 'A="multi\nline\nvalue"\nB=1\n', 'A="x"y\nB=1\n', "A='x' trailing\n",
    "A=value # comment\nB=val#ue\nC=value\t# tab\nD=#notcomment\nE=a  b   #c\n",
    "A=first\nB=b\nA=second\n", "", "\n\n\n", "justkey\nA=1\n", "bad line here\nA=1\n",
    "\n\n\nbad line\n", "=novalue\nA=1\n", "'quoted key'=1\n", "''=1\n", "'k\nk'=1\n",
    "A=1\r\nB=2\r\n", "A=1\rB=2\r", 'A="cr\r\nlf"\n', "A=${B}\nB=1\nC=${B}\n",
    "A=1\nB=${A}x${A}\nC='${A}'\nD=\"${A}\"\n", "A=${NOPE:-def}\nB=${NOPE:-}\nC=${:-x}\n",
    "A=${HIVE_DOTENV_TEST_VAR}\nB=${HIVE_DOTENV_TEST_VAR:-no}\nC=${HIVE_DOTENV_TEST_EMPTY:-d}\n",
    "A=${A:x}\nB=${A\nC=$A\nD=${a${b}\nE=${}\n", "K\nA=${K}\nB=${K:-d}\n",
    "A=1\nA=${A}${A}\n", "HIVE_DOTENV_TEST_VAR=file\nA=${HIVE_DOTENV_TEST_VAR}\n",
    "A=\u00a0x\u00a0\nB=\u3000y\u3000# c\n", "A=x\u2028y\n", "\u00a0A=1\n", "A\u3000=1\n",
    "A=x\x0b\x0c\nB\x1c=1\n", "\ufeffA=1\n", "A=é ✓ 🔑\n", "é=1\n", "A=\x00\nB\x00C=1\n",
    "export\tA=1\n", "export\u00a0A=1\n", "  export A=1  # c\n", "A=1 #\nB=2#\n",
    '#"\nA=1\n', "A=1 \\\n", "A=\"\\\"\"\n", "A='\\''\n", "A=\"a\\\\\"\n",
    "A='x'#c\nB=\"y\"   #c\n", "A==1\nB=a=b\n", "A.B=1\nc-d=2\n1X=3\n$Y=4\n",
]

PIECES = ["A", "B", "K", "x", "é", "export", "export ", " ", "  ", "\t", "=", "==", "#", " #", "'", '"',
          "\\", "\\'", '\\"', "\\n", "\n", "\r", "\r\n", "${A}", "${B:-d}", "${K}", "${", "}", ":-", "$",
          "${HIVE_DOTENV_TEST_VAR}", "\u00a0", "\u3000", "\x0b", "\x1c", "\u2028", "\x85", "\x00",
          "A=", "B=", "K\n", "#c\n"]


def python_side(path):
    skipped = []

    class Catch(logging.Handler):
        def emit(self, record):
            if "could not parse statement" in record.getMessage():
                skipped.append(record.args[0])

    log = logging.getLogger("dotenv.main")
    handler = Catch()
    log.addHandler(handler)
    log.propagate = False
    try:
        values = dotenv.dotenv_values(path)
    except UnicodeDecodeError:
        return {"error": True}
    finally:
        log.removeHandler(handler)
    return {"values": list(values.items()), "skipped": skipped}


def main():
    rng = random.Random(int(os.environ.get("DOTENV_SEED", "20261129")))
    count = int(os.environ.get("DOTENV_CASES", "3000"))
    cases = [c.encode() for c in HAND]
    cases += [b"A=\xff\n", b"A=1\nB=\xed\xa0\x80\n", b"\xc3(=1\n"]   # not UTF-8: the whole file fails
    for _ in range(count):
        n = rng.randint(1, 14)
        cases.append("".join(rng.choice(PIECES) for _ in range(n)).encode())
    os.environ["HIVE_DOTENV_TEST_VAR"] = "from-env"
    os.environ["HIVE_DOTENV_TEST_EMPTY"] = ""
    with tempfile.TemporaryDirectory(prefix="hive-dotenv-") as tmp:
        paths = []
        for i, data in enumerate(cases):
            path = os.path.join(tmp, "%d.env" % i)
            with open(path, "wb") as f:
                f.write(data)
            paths.append(path)
        out = []
        for start in range(0, len(paths), 500):
            r = subprocess.run([TOOL] + paths[start:start + 500], stdout=subprocess.PIPE, check=True,
                               timeout=300)
            out += r.stdout.decode().splitlines()
        bad = 0
        for data, path, line in zip(cases, paths, out):
            ours = json.loads(line)
            theirs = python_side(path)
            if "error" in theirs or "error" in ours:
                same = "error" in theirs and "error" in ours
            else:
                # names holding NUL cannot be asked for through a C string: hive leaves them out
                want = [(k, v) for k, v in theirs["values"] if "\x00" not in k]
                same = list(map(tuple, ours["values"].items())) == want and ours["skipped"] == theirs["skipped"]
            if not same:
                bad += 1
                if bad <= 10:
                    print("MISMATCH for %r\n  python-dotenv: %r\n  hive:          %r" % (data, theirs, ours))
        print("dotenv_crosscheck: %d cases (%d hand-written), %d mismatches (python-dotenv %s)"
              % (len(cases), len(HAND) + 3, bad, getattr(dotenv, "__version__", "?")))
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
