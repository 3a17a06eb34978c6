#!/usr/bin/env python3
"""Checks requests made to Stripe against the request types Stripe publishes.

Stripe generates its SDKs from its OpenAPI spec; the `stripe` package on PyPI
carries the request parameters of every method as TypedDicts (`stripe.params`).
The suite's in-process stand-in writes each request it is sent to a file, one
JSON line each ({"method", "path", "query", "body"}: `STRIPE_FAKE_REQUEST_LOG`).
This reads that file and checks every request against its method's type:

- the method and path must be one Stripe publishes (and one we know the app
  sends: every kind in ROUTES marked expected must appear at least once);
- every key must be one the type declares (at every depth);
- every value must fit its declared type: a string, an integer, a boolean, one
  of a Literal's values, a list (indexed `a[0]`, `a[1]`, ...), a map, a nested
  type; `''` only where the type allows it (a string, or a `Literal['']`);
- every required key must be present and, for strings, not empty (Stripe reads
  an empty string as unset).

Usage: stripe_conformance.py REQUEST_LOG [--require-all-kinds]
Exits 1 naming each misfit (method, path, the key at fault, why).
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union
from urllib.parse import parse_qsl

import typing_extensions

# Method, path pattern, the module and name of Stripe's request type, and
# whether the app is known to send it (so the suite must have recorded one).
ROUTES: list[tuple[str, str, str, str, bool]] = [
    ("POST", r"/v1/customers", "stripe.params", "CustomerCreateParams", True),
    ("POST", r"/v1/customers/[^/]+", "stripe.params", "CustomerUpdateParams", True),
    ("GET", r"/v1/customers", "stripe.params", "CustomerListParams", True),
    ("GET", r"/v1/customers/[^/]+", "stripe.params", "CustomerRetrieveParams", True),
    ("DELETE", r"/v1/customers/[^/]+", "stripe.params", "CustomerDeleteParams", True),
    ("POST", r"/v1/checkout/sessions", "stripe.params.checkout", "SessionCreateParams", True),
    ("GET", r"/v1/checkout/sessions/[^/]+", "stripe.params.checkout", "SessionRetrieveParams", True),
    ("POST", r"/v1/billing_portal/sessions", "stripe.params.billing_portal", "SessionCreateParams", True),
    ("GET", r"/v1/events", "stripe.params", "EventListParams", True),
    ("POST", r"/v1/webhook_endpoints", "stripe.params", "WebhookEndpointCreateParams", True),
    ("GET", r"/v1/webhook_endpoints", "stripe.params", "WebhookEndpointListParams", True),
    ("POST", r"/v1/webhook_endpoints/[^/]+", "stripe.params", "WebhookEndpointUpdateParams", True),
    # Not sent by the app today; checked if it ever is.
    ("POST", r"/v1/refunds", "stripe.params", "RefundCreateParams", False),
]


def request_options_keys() -> set[str]:
    """Keys of the SDK's per-request options, which are not form parameters."""
    from stripe._request_options import RequestOptions

    return set(RequestOptions.__annotations__)


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    kind: str
    params: type
    expected: bool


def routes() -> list[Route]:
    found = []
    for method, path, module, name, expected in ROUTES:
        params = getattr(importlib.import_module(module), name)
        kind = f"{method} {path.replace('[^/]+', '{id}')}"
        found.append(Route(method, re.compile(f"^{path}$"), kind, params, expected))
    return found


def parse_form(text: str) -> tuple[dict[str, Any], list[str]]:
    """Stripe's form encoding (`a[b][0]=v`) into nested dicts of strings. A
    list's items are under their index, as strings, until a type says "list"."""
    root: dict[str, Any] = {}
    problems = []
    for key, value in parse_qsl(text, keep_blank_values=True, strict_parsing=False):
        match = re.fullmatch(r"([^\[\]]+)((?:\[[^\[\]]*\])*)", key)
        if not match:
            problems.append(f"{key!r}: not a form key Stripe reads")
            continue
        path = [match.group(1)] + re.findall(r"\[([^\[\]]*)\]", match.group(2))
        node = root
        for depth, segment in enumerate(path):
            last = depth == len(path) - 1
            if segment == "" and not last:
                problems.append(f"{key!r}: an empty index inside a key")
                break
            if segment == "":
                segment = str(len(node))
            if last:
                if segment in node:
                    problems.append(f"{key!r}: sent twice")
                node[segment] = value
            else:
                child = node.setdefault(segment, {})
                if not isinstance(child, dict):
                    problems.append(f"{key!r}: sent both as a value and as a group")
                    break
                node = child
    return root, problems


def strip_not_required(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing_extensions.NotRequired, typing_extensions.Required):
        return typing.get_args(tp)[0]
    return tp


def field_types(params: type, skip: set[str]) -> dict[str, Any]:
    """A TypedDict's keys and their types, forward references resolved in the
    module that declares it (one key at a time: some request options name
    types that cannot be resolved, and they are skipped)."""
    hints = {}
    for cls in reversed(params.__mro__):
        annotations = cls.__dict__.get("__annotations__", {})
        namespace = vars(sys.modules[cls.__module__])
        for key, annotation in annotations.items():
            if key in skip:
                continue
            if isinstance(annotation, str):
                annotation = typing.ForwardRef(annotation)
            resolved = typing._eval_type(annotation, namespace, None)  # noqa: SLF001
            hints[key] = strip_not_required(resolved)
    return hints


def enum_alternatives(alternatives: tuple[Any, ...]) -> list[Any]:
    """The SDK types an enum as `Literal[...] | str`, so that a value added to the
    API later still type-checks; the published enum is the Literal. A union of
    `Literal['']` and `str` is an emptyable string, and keeps its `str`."""
    enum = any(
        typing.get_origin(alt) is Literal and any(a != "" for a in typing.get_args(alt))
        for alt in alternatives
    )
    return [alt for alt in alternatives if not (enum and alt is str)]


def is_group(tp: Any) -> bool:
    """Whether a type is sent as a group of keys (`a[b]=...`), not a single value."""
    origin = typing.get_origin(tp)
    return typing_extensions.is_typeddict(tp) or origin in (list, dict, typing.List, typing.Dict)


class Checker:
    def __init__(self) -> None:
        self.skip = request_options_keys()

    def check(self, value: Any, tp: Any, where: str) -> list[str]:
        tp = strip_not_required(tp)
        origin = typing.get_origin(tp)
        if tp is Any:
            return []
        if origin is Union or isinstance(tp, types.UnionType):
            alternatives = enum_alternatives(typing.get_args(tp))
            attempts = [self.check(value, alt, where) for alt in alternatives]
            if any(not errors for errors in attempts):
                return []
            # Say why by the alternative of the value's shape (a group, or not).
            fitting = [
                errors
                for alt, errors in zip(alternatives, attempts)
                if is_group(alt) == isinstance(value, dict)
            ]
            return min(fitting or attempts, key=len)
        if origin is Literal:
            allowed = [str(a).lower() if isinstance(a, bool) else str(a) for a in typing.get_args(tp)]
            if isinstance(value, str) and value in allowed:
                return []
            shown = value if isinstance(value, str) else "a group"
            return [f"{where}: {shown!r} is not one of {allowed}"]
        if typing_extensions.is_typeddict(tp):
            return self.check_object(value, tp, where)
        if origin in (list, typing.List):
            return self.check_list(value, typing.get_args(tp)[0], where)
        if origin in (dict, typing.Dict):
            if not isinstance(value, dict):
                return [f"{where}: a map is published, a single value was sent"]
            item = typing.get_args(tp)[1]
            return [e for k, v in value.items() for e in self.check(v, item, f"{where}[{k}]")]
        if isinstance(value, dict):
            if tp in (str, int, float, bool):
                return [f"{where}: a {tp.__name__} is published, a group was sent"]
            return []  # an untyped object (UntypedStripeObject and the like)
        if tp is str:
            return []
        if tp is bool:
            ok = value in ("true", "false")
            return [] if ok else [f"{where}: {value!r} is not a boolean"]
        if tp is int:
            ok = re.fullmatch(r"-?\d+", value) is not None
            return [] if ok else [f"{where}: {value!r} is not an integer"]
        if tp is float:
            ok = re.fullmatch(r"-?\d+(\.\d+)?", value) is not None
            return [] if ok else [f"{where}: {value!r} is not a number"]
        # A class the SDK uses for untyped objects: anything a form can say.
        return []

    def check_list(self, value: Any, item: Any, where: str) -> list[str]:
        if not isinstance(value, dict):
            return [f"{where}: a list is published, a single value ({value!r}) was sent"]
        indexes = sorted(value, key=lambda k: int(k) if k.isdigit() else -1)
        if indexes != [str(i) for i in range(len(value))]:
            return [f"{where}: a list's items must be indexed 0, 1, ...; sent {indexes}"]
        return [e for k in indexes for e in self.check(value[k], item, f"{where}[{k}]")]

    def check_object(self, value: Any, params: type, where: str) -> list[str]:
        if not isinstance(value, dict):
            return [f"{where}: a group ({params.__name__}) is published, {value!r} was sent"]
        hints = field_types(params, self.skip)
        required = set(params.__required_keys__) - self.skip
        errors = []
        for key, item in value.items():
            at = f"{where}[{key}]" if where else key
            if key not in hints:
                errors.append(f"{at}: not a parameter of {params.__name__}")
                continue
            errors += self.check(item, hints[key], at)
            if key in required and item == "":
                errors.append(f"{at}: required, and sent empty (Stripe reads '' as unset)")
        for key in sorted(required - set(value)):
            at = f"{where}[{key}]" if where else key
            errors.append(f"{at}: required by {params.__name__}, not sent")
        return errors


def check_request(request: dict[str, str], table: list[Route], checker: Checker) -> tuple[str | None, list[str]]:
    method, path = request["method"], request["path"]
    route = next((r for r in table if r.method == method and r.pattern.match(path)), None)
    if route is None:
        return None, [f"{method} {path}: not a method and path the checked types cover"]
    text = request["body"] if method == "POST" else request["query"]
    form, problems = parse_form(text)
    return route.kind, problems + checker.check_object(form, route.params, "")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", help="the stand-in's request log (JSON lines)")
    parser.add_argument(
        "--require-all-kinds",
        action="store_true",
        help="fail unless every request kind the app sends was recorded",
    )
    args = parser.parse_args(argv)
    table, checker = routes(), Checker()
    seen: dict[str, int] = {}
    misfits: dict[str, list[str]] = {}
    with open(args.log, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            request = json.loads(line)
            kind, errors = check_request(request, table, checker)
            if kind:
                seen[kind] = seen.get(kind, 0) + 1
            for error in errors:
                where = kind or f"{request['method']} {request['path']}"
                misfits.setdefault(f"{where}: {error}", []).append(str(number))
    import stripe

    total = sum(seen.values())
    print(f"Checked {total} requests against stripe {stripe.VERSION}'s published request types:")
    for route in table:
        if route.kind in seen or route.expected:
            print(f"  {seen.get(route.kind, 0):6}  {route.kind}  ({route.params.__name__})")
    failed = False
    missing = [r.kind for r in table if r.expected and r.kind not in seen]
    if args.require_all_kinds and missing:
        failed = True
        print(f"FAIL: the suite made no request of these kinds: {', '.join(missing)}")
    for misfit, at in misfits.items():
        failed = True
        print(f"FAIL: {misfit} ({len(at)} requests; log lines {', '.join(at[:5])})")
    if not failed:
        print("Every request fits.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
