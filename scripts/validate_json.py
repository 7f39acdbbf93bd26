#!/usr/bin/python3
"""Validates JSON documents against a JSON Schema (Debian's python3-jsonschema).

    validate_json.py SCHEMA.json DOC.json [DOC.json ...]     (a DOC of '-' reads the command's stdout)
    validate_json.py SCHEMA.json --run CMD ARG ...            (validates what CMD prints)
"""
import json
import os
import subprocess
import sys

import jsonschema


def main():
    schema = json.load(open(sys.argv[1]))
    docs = []
    if len(sys.argv) > 2 and sys.argv[2] == "--run":
        out = subprocess.run(sys.argv[3:], check=True, capture_output=True, text=True).stdout
        docs.append(("command output", json.loads(out)))
    else:
        docs = [(p, json.load(open(p))) for p in sys.argv[2:]]
    # The other schemas beside this one, by their $id: a schema may $ref them (the multi-token target's
    # steps are explain documents) and nothing is fetched from the network.
    folder = os.path.dirname(os.path.abspath(sys.argv[1]))
    store = {}
    for name in os.listdir(folder):
        if name.endswith("-schema.json"):
            other = json.load(open(os.path.join(folder, name)))
            if "$id" in other:
                store[other["$id"]] = other
    resolver = jsonschema.RefResolver.from_schema(schema, store=store)
    validator = jsonschema.Draft202012Validator(schema, resolver=resolver)
    bad = 0
    for name, doc in docs:
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        for e in errors[:10]:
            print(f"{name}: {'/'.join(map(str, e.path))}: {e.message}")
        bad += bool(errors)
        print(f"{name}: {'INVALID' if errors else 'valid'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
