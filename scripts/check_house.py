#!/usr/bin/env python3
"""The house rules, checked on src/ (run by scripts/test before the suite).

- Layers: each top-level module of src/ belongs to one layer of LAYERS and names
  (`crate::x`) only modules of lower layers. A new module must be given a layer.
- No file over MAX_LINES lines before its `#[cfg(test)]`.
- web/ and cli/ never name `db::`: they reach the database through services.

Usage: check_house.py [SRC]   (default: src). Exits 1 naming each breach.
"""

from __future__ import annotations

import os
import re
import sys

# Bottom to top (README "Layout").
LAYERS: list[list[str]] = [
    ["clock", "domain", "telemetry"],
    ["db"],
    ["fields", "metrics"],
    ["password"],
    ["config"],
    ["stripe"],
    ["context"],
    ["runs"],
    ["customers"],
    ["billing"],
    ["events"],
    ["accounts", "mail", "throttle", "http"],
    ["web"],
    ["monitoring"],
    ["startup"],
    ["cli"],
]
# The crate's roots: they declare the modules and may name any.
ROOTS = {"lib", "main"}
MAX_LINES = 450
NO_DB = {"web", "cli"}


def without_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", text)


def breaches(src: str) -> list[str]:
    layer_of = {name: depth for depth, layer in enumerate(LAYERS) for name in layer}
    found: list[str] = []
    for folder, _, files in sorted(os.walk(src)):
        for name in sorted(files):
            if not name.endswith(".rs") or name == "tests.rs":
                continue
            path = os.path.join(folder, name)
            top = os.path.relpath(path, src).split(os.sep)[0].removesuffix(".rs")
            with open(path, encoding="utf-8", errors="replace") as file:
                text = file.read().split("#[cfg(test)]")[0]
            lines = text.count("\n")
            if lines > MAX_LINES:
                found.append(f"{path}: {lines} lines before its tests (at most {MAX_LINES})")
            code = without_comments(text)
            if top in NO_DB and re.search(r"\bdb::", code):
                found.append(f"{path}: names db:: ({top} reaches the database through services)")
            if top in ROOTS:
                continue
            if top not in layer_of:
                found.append(f"{path}: module {top} has no layer in scripts/check_house.py")
                continue
            for used in sorted(set(re.findall(r"\bcrate::(\w+)", code)) - {top}):
                if used not in layer_of:
                    continue
                if layer_of[used] >= layer_of[top]:
                    found.append(
                        f"{path}: {top} names crate::{used}, which is not below it "
                        f"({top} is layer {layer_of[top]}, {used} layer {layer_of[used]})"
                    )
    return found


def main(argv: list[str]) -> int:
    src = argv[0] if argv else "src"
    found = breaches(src)
    for breach in found:
        print(f"FAIL: {breach}")
    if not found:
        print(f"The house holds: {len(LAYERS)} layers, no file over {MAX_LINES} lines, no db:: in web or cli.")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
