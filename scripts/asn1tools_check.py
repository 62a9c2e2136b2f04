#!/usr/bin/env python3
"""Independent BER check of rtse-codec's output with asn1tools.

Usage: python3 scripts/asn1tools_check.py FILE

FILE is a JSON array of {"module", "type", "hex", "expected", "what"}
(written by codec/tests/asn1tools_check.rs). Every module in
corpus/asn1/*.asn is compiled with asn1tools (BER); each hex is decoded as
module.type, the whole input must be consumed, and the decoded value,
normalised to JSON, must equal "expected":

  CHOICE               -> [name, value]
  OCTET STRING, ANY    -> lower-case hex
  BIT STRING           -> [hex, number of bits]
  SET / SEQUENCE       -> object (DEFAULT members as asn1tools fills them)
  SEQUENCE OF / SET OF -> array
  UTCTime              -> "YYMMDDhhmmssZ"
  OBJECT IDENTIFIER, character strings, ENUMERATED -> text; INTEGER -> number

Exit status 0 when every value agrees ("N values agree" on stdout), 1 with
one report per mismatch (type, hex, ours, theirs), 2 on a usage error.
"""

import datetime
import glob
import json
import os
import sys

import asn1tools


def normalise(v):
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    if isinstance(v, tuple) and len(v) == 2:
        if isinstance(v[0], str):
            return [v[0], normalise(v[1])]
        if isinstance(v[0], (bytes, bytearray)) and isinstance(v[1], int):
            return [v[0].hex(), v[1]]
    if isinstance(v, dict):
        return {k: normalise(x) for k, x in v.items()}
    if isinstance(v, list):
        return [normalise(x) for x in v]
    if isinstance(v, datetime.datetime):
        if v.tzinfo is not None and v.utcoffset() != datetime.timedelta(0):
            return v.strftime("%y%m%d%H%M%S%z")
        return v.strftime("%y%m%d%H%M%SZ")
    return v


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    files = sorted(glob.glob(os.path.join(root, "corpus", "asn1", "*.asn")))
    if not files:
        print("no corpus/asn1/*.asn modules", file=sys.stderr)
        return 2
    spec = asn1tools.compile_files(files, "ber")
    with open(argv[1]) as f:
        cases = json.load(f)
    failures = 0
    for c in cases:
        data = bytes.fromhex(c["hex"])
        where = "%s.%s (%s)" % (c["module"], c["type"], c.get("what", ""))
        try:
            t = spec.modules[c["module"]][c["type"]]
            value, length = t.decode_with_length(data)
            theirs = normalise(value)
            problem = None
            if length != len(data):
                problem = "decoded %d of %d octets" % (length, len(data))
            elif theirs != c["expected"]:
                problem = "values differ"
        except Exception as e:  # a decode error is a mismatch too
            theirs = "%s: %s" % (type(e).__name__, e)
            problem = "asn1tools could not decode it"
        if problem:
            failures += 1
            print("MISMATCH %s: %s" % (where, problem))
            print("  hex:    %s" % c["hex"])
            print("  ours:   %s" % json.dumps(c["expected"], sort_keys=True))
            print("  theirs: %s" % json.dumps(theirs, sort_keys=True, default=str))
    if failures:
        print("%d of %d values disagree" % (failures, len(cases)))
        return 1
    print("%d values agree" % len(cases))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
