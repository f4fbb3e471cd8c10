#!/usr/bin/env python3
"""Cross-check libhive's Fernet against Python's cryptography package.

1. Random keys and plaintexts of 0 to 5000 bytes (every length around a
   multiple of 16, plus 250 random lengths): encrypted by each side,
   decrypted by the other.
2. Differential: thousands of damaged and decorated tokens (stray
   characters, newlines, the + / alphabet, missing padding, text after the
   padding, flipped characters, truncation, a foreign key); libhive must
   accept exactly the tokens Python accepts, with the same plaintext.
"""
import base64
import os
import random
import subprocess
import sys

from cryptography.fernet import Fernet, InvalidToken

TOOL = os.environ.get("FERNET_TOOL", "build/tests/tools/fernet_tool")
rng = random.Random(int(os.environ.get("SEED", "20261128")))
failures = []


def run_tool(mode, lines):
    out = subprocess.run([TOOL, mode], input="".join(lines).encode(), stdout=subprocess.PIPE,
                         check=True).stdout.decode().split("\n")
    assert out[-1] == ""
    out = out[:-1]
    assert len(out) == len(lines), (len(out), len(lines))
    return out


def new_key():
    return base64.urlsafe_b64encode(rng.randbytes(32)).decode()


def round_trips():
    lengths = sorted({n for k in range(0, 5001 // 16 + 2) for n in (16 * k - 1, 16 * k, 16 * k + 1)
                      if 0 <= n <= 5000} | {rng.randint(0, 5000) for _ in range(250)})
    cases = [(new_key(), rng.randbytes(n)) for n in lengths]
    # Python -> C
    lines = [f"{k}\t{Fernet(k.encode()).encrypt(p).hex()}\n" for k, p in cases]
    for (k, p), got in zip(cases, run_tool("dec", lines)):
        if got != p.hex():
            failures.append(f"C could not decrypt Python's token of {len(p)} bytes")
    # C -> Python
    tokens = run_tool("enc", [f"{k}\t{p.hex()}\n" for k, p in cases])
    for (k, p), tok in zip(cases, tokens):
        try:
            if Fernet(k.encode()).decrypt(tok.encode()) != p:
                failures.append(f"Python decrypted C's token of {len(p)} bytes to something else")
        except InvalidToken:
            failures.append(f"Python rejected C's token of {len(p)} bytes")
        if "\n" in tok or not tok.endswith(("=", "")) or len(tok) % 4:
            failures.append("C token is not padded urlsafe base64")
    print(f"round trips: {len(cases)} keys and plaintexts, lengths 0..5000, both directions")
    return len(cases)


NOISE = [" ", "\n", "\r\n", "\t", "!", "%", "*", ".", "\x00", "\xff", "~", "=", "=="]


def mutate(tok: bytes) -> bytes:
    s = bytearray(tok)
    kind = rng.randrange(10)
    if kind == 0:      # trailing newline or whitespace
        s += rng.choice([b"\n", b"\r\n", b" ", b"\n\n"])
    elif kind == 1:    # stray characters anywhere
        for _ in range(rng.randint(1, 4)):
            s[rng.randrange(len(s) + 1):0] = rng.choice(NOISE).encode("latin-1")
    elif kind == 2:    # the + / alphabet
        s = bytearray(bytes(s).replace(b"-", b"+").replace(b"_", b"/"))
    elif kind == 3:    # padding removed or added
        s = bytearray(bytes(s).rstrip(b"=")) if rng.random() < 0.5 else s + b"=" * rng.randint(1, 3)
    elif kind == 4:    # text after the padding
        s += rng.choice([b"garbage", b"AAAA", b"=x", b"\x01"])
    elif kind == 5:    # a flipped character
        i = rng.randrange(len(s))
        s[i] = rng.choice(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    elif kind == 6:    # truncated
        s = s[: rng.randrange(len(s))]
    elif kind == 7:    # padding in the middle
        s[rng.randrange(len(s) + 1):0] = b"="
    elif kind == 8:    # a different version byte
        raw = bytearray(base64.urlsafe_b64decode(bytes(s)))
        raw[0] = rng.randrange(256)
        s = bytearray(base64.urlsafe_b64encode(bytes(raw)))
    return bytes(s)


def differential(n=4000):
    cases = []
    for _ in range(n):
        k = new_key()
        p = rng.randbytes(rng.randint(0, 80))
        tok = mutate(Fernet(k.encode()).encrypt(p))
        dk = new_key() if rng.random() < 0.05 else k
        cases.append((dk, tok))
    got = run_tool("dec", [f"{k}\t{t.hex()}\n" for k, t in cases])
    accepted = 0
    for (k, t), g in zip(cases, got):
        try:
            want = Fernet(k.encode()).decrypt(t).hex()
            accepted += 1
        except (InvalidToken, ValueError):
            want = "ERR"
        if g != want:
            failures.append(f"differs from Python on token {t!r}: C {g[:20]!r}, Python {want[:20]!r}")
    print(f"differential: {n} damaged or decorated tokens, {accepted} accepted by Python, "
          f"{n - accepted} rejected; libhive agreed on {n - sum(1 for f in failures if 'differs' in f)}")


def main():
    if not os.path.exists(TOOL):
        sys.exit(f"fernet_tool not found at {TOOL} (set FERNET_TOOL)")
    round_trips()
    differential()
    for f in failures[:20]:
        print("FAIL:", f)
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("fernet cross-check: OK")
    return 0


sys.exit(main())
