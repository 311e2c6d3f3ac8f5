#!/usr/bin/env python3
"""Generate spec/vectors.tsv: IPv6 address -> .v6.alt name test vectors.

This is an INDEPENDENT encoder for SPEC.md section 2, written in Python on top
of base64.b32encode, so that the Lua codec in dist/ can be checked against an
implementation that shares no code with it.

Columns (tab separated, one header line):
    address         the address in RFC 5952 text form (lowercase, no leading
                    zeros, longest run of >= 2 zero groups compressed, first
                    run on ties, IPv4-mapped ::ffff:0:0/96 as ::ffff:a.b.c.d)
    name            canonical name (longest eligible run of 'a', FIRST on ties)
    reference_name  what the reference implementation emits (LAST on ties)

The output is deterministic (fixed seed).  Usage:
    python3 scripts/gen-vectors.py [output]     # default: spec/vectors.tsv
"""

import base64
import ipaddress
import os
import random
import sys

SUFFIX = ".v6.alt"
SEED = 0x76366D65  # "v6me"


# ---------------------------------------------------------------- encoder --

def b32label(packed):
    """26-char lowercase base32 of the 16 bytes, '=' padding stripped."""
    assert len(packed) == 16
    s = base64.b32encode(packed).decode("ascii").rstrip("=").lower()
    assert len(s) == 26
    return s


def eligible_runs(s):
    """Maximal runs of 'a' inside positions 2..25 (1-based), length >= 2.

    Returns a list of (start0, length) with 0-based start, in order.
    Runs touching the first or last character are trimmed to exclude it,
    which is the same as only looking at indexes 1..24 (0-based).
    """
    runs = []
    i = 1
    while i <= 24:
        if s[i] == "a":
            j = i
            while j <= 24 and s[j] == "a":
                j += 1
            if j - i >= 2:
                runs.append((i, j - i))
            i = j
        else:
            i += 1
    return runs


def encode_label(packed, reference=False):
    s = b32label(packed)
    runs = eligible_runs(s)
    if not runs:
        return s
    longest = max(length for _, length in runs)
    ties = [r for r in runs if r[1] == longest]
    start, length = ties[-1] if reference else ties[0]
    return s[:start] + "-" + s[start + length:]


def encode(packed, reference=False):
    return encode_label(packed, reference) + SUFFIX


# -------------------------------------------------------------- formatter --

def format_ip(packed):
    """RFC 5952 text form (own implementation; Python 3.11's ipaddress does
    not print IPv4-mapped addresses as ::ffff:a.b.c.d)."""
    assert len(packed) == 16
    groups = [packed[i] << 8 | packed[i + 1] for i in range(0, 16, 2)]
    if groups[:5] == [0] * 5 and groups[5] == 0xFFFF:
        return "::ffff:%d.%d.%d.%d" % tuple(packed[12:16])
    best_start, best_len = -1, 0
    i = 0
    while i < 8:
        if groups[i] == 0:
            j = i
            while j < 8 and groups[j] == 0:
                j += 1
            if j - i > best_len:  # strictly longer: first run wins ties
                best_start, best_len = i, j - i
            i = j
        else:
            i += 1
    hexes = ["%x" % g for g in groups]
    if best_len < 2:
        return ":".join(hexes)
    return (":".join(hexes[:best_start]) + "::" +
            ":".join(hexes[best_start + best_len:]))


def self_check():
    # SPEC.md section 2 table, plus the tie example.
    table = [
        ("2001:db8::1", "eaaq3o-e.v6.alt", None),
        ("0200::1", "ai-e.v6.alt", None),
        ("200:cab8:deb4:ce60:4362:4492:e539:4b5",
         "aiamvog6wthgaq3cisjokoiewu.v6.alt", None),
        ("::1", "a-e.v6.alt", None),
        ("::", "a-a.v6.alt", None),
        ("fe80::1", "72-e.v6.alt", None),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
         "77777777777777777777777774.v6.alt", None),
        ("1111:0000:0000:1111::1111", "ceiqaaaaaairc-rce.v6.alt", None),
        ("1111:0000:0000:0000:1111::1111", "ceiq-eiraaaaaaarce.v6.alt", None),
        ("2a00:1098:3a0::1", "fiabbgadu-e.v6.alt", None),
        ("2001:db8::1:0:0:1", "eaaq3o-baaaaaaaaae.v6.alt",
         "eaaq3oaaaaaaaaab-e.v6.alt"),
    ]
    for addr, name, ref in table:
        packed = ipaddress.IPv6Address(addr).packed
        assert encode(packed) == name, (addr, encode(packed), name)
        assert encode(packed, True) == (ref or name), (addr, ref)
    # Formatter against ipaddress (which is RFC 5952 except for mapped).
    rnd = random.Random(1)
    for _ in range(20000):
        b = bytes(0 if rnd.random() < 0.6 else rnd.randrange(256)
                  for _ in range(16))
        mine = format_ip(b)
        assert ipaddress.IPv6Address(mine).packed == b, (mine, b)
        if not (b[:10] == bytes(10) and b[10:12] == b"\xff\xff"):
            assert mine == ipaddress.IPv6Address(b).compressed, mine
    assert format_ip(bytes(10) + b"\xff\xff\x01\x02\x03\x04") == "::ffff:1.2.3.4"
    assert format_ip(bytes(12) + b"\x01\x02\x03\x04") == "::102:304"
    assert format_ip(bytes.fromhex("00010000000200030004000500060007")) == \
        "1:0:2:3:4:5:6:7"
    assert format_ip(bytes.fromhex("00010000000000020000000000030004")) == \
        "1::2:0:0:3:4"


# -------------------------------------------------------------- generator --

def groups_to_bytes(groups):
    return b"".join(bytes((g >> 8, g & 0xFF)) for g in groups)


def generate(rnd):
    """Yield (kind, packed) pairs.  Duplicates are removed by the caller."""
    # Fixed edge cases.
    yield "edge", bytes(16)
    yield "edge", b"\xff" * 16
    for text in ["::1", "::2", "1::", "8000::", "::8000:0:0:0", "1::1",
                 "2001:db8::1", "2001:db8::1:0:0:1", "2001:db8:0:0:1::1",
                 "2001:db8::", "fe80::1", "ff02::1", "ff02::2", "64:ff9b::1",
                 "fc00::", "fd00::1", "200::", "200::1", "3ff:ffff::1",
                 "2a00:1098:3a0::1", "1:0:2:3:4:5:6:7", "1:0:0:2:0:0:3:4",
                 "1:0:0:2:0:0:0:3", "1:0:0:0:2:0:0:0", "0:0:1:0:0:1:0:0",
                 "0:1:0:0:1:0:0:1", "0:0:0:1:0:0:0:1", "1:0:0:0:0:0:0:1",
                 "::ffff:0:0", "::ffff:1.2.3.4", "::ffff:127.0.0.1",
                 "::ffff:255.255.255.255", "::1.2.3.4", "::ffff:0:1.2.3.4",
                 "64:ff9b::192.0.2.33", "100::", "2002:c000:204::1",
                 "1111:0000:0000:1111::1111", "1111:0000:0000:0000:1111::1111",
                 "200:cab8:deb4:ce60:4362:4492:e539:4b5"]:
        yield "edge", ipaddress.IPv6Address(text).packed
    # Every single-bit address and every "all ones but one bit" address.
    for bit in range(128):
        v = 1 << (127 - bit)
        yield "single-bit", v.to_bytes(16, "big")
        yield "single-zero-bit", ((1 << 128) - 1 - v).to_bytes(16, "big")
    # Groups: each group zero with a per-vector probability (many zeros).
    for _ in range(1300):
        p = rnd.choice([0.5, 0.6, 0.7, 0.8, 0.9])
        groups = [0 if rnd.random() < p else
                  rnd.choice([rnd.randrange(1, 0x10000), rnd.randrange(1, 16),
                              1 << rnd.randrange(16)])
                  for _ in range(8)]
        yield "zero-groups", groups_to_bytes(groups)
    # Bytes: each byte zero with high probability (runs not on group edges).
    for _ in range(700):
        p = rnd.choice([0.6, 0.75, 0.85, 0.93])
        b = bytes(0 if rnd.random() < p else
                  rnd.choice([rnd.randrange(1, 256), 1 << rnd.randrange(8)])
                  for _ in range(16))
        yield "zero-bytes", b
    # Two equal zero runs separated by one non-zero group (ties by design).
    for _ in range(250):
        n = rnd.randrange(1, 4)
        gap = [rnd.randrange(1, 0x10000) for _ in range(rnd.randrange(1, 3))]
        rest = 8 - 2 * n - len(gap)
        if rest < 0:
            continue
        head = rnd.randrange(rest + 1)
        groups = ([rnd.randrange(1, 0x10000) for _ in range(head)] + [0] * n +
                  gap + [0] * n +
                  [rnd.randrange(1, 0x10000) for _ in range(rest - head)])
        yield "tie-design", groups_to_bytes(groups)
    # Designed at the base32 level: each character 'a' with high probability,
    # so that several equal runs (2-way and 3+-way ties) are common.
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    for _ in range(300):
        p = rnd.choice([0.5, 0.6, 0.7])
        chars = ["a" if rnd.random() < p else rnd.choice(alphabet)
                 for _ in range(25)]
        chars.append("a" if rnd.random() < p else rnd.choice("aeimquy4"))
        text = "".join(chars).upper() + "======"
        yield "b32-design", base64.b32decode(text)
    # Yggdrasil-like 200::/7 addresses and /64 subnets with sparse host part.
    for _ in range(250):
        first = rnd.choice([0x02, 0x03])
        ones = rnd.randrange(0, 24)
        v = (first << 120) | (((1 << ones) - 1) << (119 - ones))
        v |= rnd.getrandbits(119 - ones - 1)
        b = bytearray(v.to_bytes(16, "big"))
        if first == 0x03 or rnd.random() < 0.3:  # subnet: sparse host part
            for i in range(8, 16):
                if rnd.random() < 0.8:
                    b[i] = 0
        yield "yggdrasil", bytes(b)
    # CJDNS fc00::/8 (random) and fd00::/8 ULA with sparse tail.
    for _ in range(120):
        b = bytearray([0xFC] + [rnd.randrange(256) for _ in range(15)])
        if rnd.random() < 0.5:
            b[0] = 0xFD
            for i in range(6, 16):
                if rnd.random() < 0.7:
                    b[i] = 0
        yield "fc00", bytes(b)
    # IPv4-mapped, IPv4-compatible and NAT64 addresses.
    for _ in range(60):
        v4 = bytes(rnd.choice([0, rnd.randrange(256)]) for _ in range(4))
        yield "ipv4", bytes(10) + b"\xff\xff" + v4
        yield "ipv4", bytes(12) + v4
        yield "ipv4", bytes.fromhex("0064ff9b0000000000000000") + v4
    # Fully random addresses.
    for _ in range(150):
        yield "random", bytes(rnd.randrange(256) for _ in range(16))


def main():
    self_check()
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else \
        os.path.join(here, "..", "spec", "vectors.tsv")
    rnd = random.Random(SEED)
    seen = set()
    rows = []
    kinds = {}
    for kind, packed in generate(rnd):
        if packed in seen:
            continue
        seen.add(packed)
        kinds[kind] = kinds.get(kind, 0) + 1
        rows.append((format_ip(packed), encode(packed), encode(packed, True),
                     packed))
    with open(out, "w", newline="\n") as f:
        f.write("address\tname\treference_name\n")
        for addr, name, ref, _ in rows:
            f.write("%s\t%s\t%s\n" % (addr, name, ref))

    # Summary.
    ties = sum(1 for r in rows if r[1] != r[2])
    no_hyphen = sum(1 for r in rows if "-" not in r[1])
    first_touch = last_touch = both_touch = 0
    for _, _, _, packed in rows:
        s = b32label(packed)
        f_ = s[0] == "a" and s[1] == "a"    # a run that includes position 1
        l_ = s[25] == "a" and s[24] == "a"  # a run that includes position 26
        first_touch += f_
        last_touch += l_
        both_touch += f_ and l_
    multi_max = sum(
        1 for _, _, _, p in rows
        if len([r for r in eligible_runs(b32label(p))
                if r[1] == max(x[1] for x in eligible_runs(b32label(p)))]) >= 3)
    print("wrote %d vectors to %s" % (len(rows), os.path.relpath(out)))
    print("  by kind: " + ", ".join("%s=%d" % kv for kv in sorted(kinds.items())))
    print("  ties (canonical != reference): %d" % ties)
    print("  3+ equal longest runs:         %d" % multi_max)
    print("  'a' run touching first char:    %d" % first_touch)
    print("  'a' run touching last char:     %d" % last_touch)
    print("  touching both ends:             %d" % both_touch)
    print("  no hyphen:                      %d" % no_hyphen)


if __name__ == "__main__":
    main()
