"""``voxflow connections add|list|test|remove``: named credentials, encrypted at rest.

``add NAME KIND`` takes the values from ``--from-env`` (the variables each field
stands for), ``--set FIELD=VALUE`` and, at a terminal, asks for the rest
(secrets without echo). No command prints a value. See engine.connections.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from engine.connections.kinds import KINDS, ConnectionKind
from engine.core.errors import VoxflowError

HELP = "Named credentials (Telnyx, Twilio, LiveKit, databases, an LLM), stored encrypted."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="connections_command", metavar="ACTION")
    add = sub.add_parser("add", help="store a connection (or replace the one of that name)")
    add.add_argument("name", help="the name flows and commands use, e.g. telnyx-main")
    add.add_argument("kind", choices=sorted(KINDS), help="what it connects to")
    add.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a field's value (repeat it); values typed here stay in your "
        "shell's history, so prefer --from-env or the prompts for secrets",
    )
    add.add_argument(
        "--from-env",
        action="store_true",
        help="take each field from its variable (TELNYX_API_KEY, TWILIO_AUTH_TOKEN, LIVEKIT_URL, ...)",
    )
    sub.add_parser("list", help="the stored connections: names, kinds and which fields are set")
    test = sub.add_parser(
        "test", help="call each service with its connection and say what is wrong, if anything"
    )
    test.add_argument("names", nargs="*", metavar="NAME", help="default: every connection")
    remove = sub.add_parser("remove", help="forget a connection")
    remove.add_argument("name")
    parser.epilog = "kinds: " + "; ".join(
        f"{k.name} ({', '.join(f.name for f in k.fields)})" for k in KINDS.values()
    )


def run(args: argparse.Namespace) -> int:
    from engine.connections.store import default_store

    store = default_store()
    action = args.connections_command
    if action == "add":
        return _add(store, args)
    if action == "list":
        return _list(store)
    if action == "test":
        return _test(store, args.names)
    if action == "remove":
        if store.remove(args.name):
            print(f"Removed the connection '{args.name}'.")
        else:
            print(f"There is no connection named '{args.name}'; nothing to remove.")
        return 0
    raise VoxflowError("say what to do: voxflow connections add|list|test|remove.")


def _add(store, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    kind = KINDS[args.kind]
    values = _values(kind, args.set, args.from_env)
    made = store.add(args.name, kind, values)
    if made:
        print(
            f"Made a new key in {made} (readable by you only). Keep it safe: the stored "
            "connections cannot be read without it. Other machines need it as "
            "VOXFLOW_SECRET_KEY or VOXFLOW_SECRET_KEY_FILE."
        )
    fields = ", ".join(sorted(values)) or "no fields"
    print(
        f"Stored the {kind.name} connection '{args.name}' ({fields}) in {store.path}, "
        f"encrypted with {store.key_source()}."
    )
    print(f"Check it with: voxflow connections test {args.name}")
    return 0


def _values(kind: ConnectionKind, pairs: list[str], from_env: bool) -> dict[str, str]:
    from engine.core.suggest import as_sentence, did_you_mean

    values: dict[str, str] = {}
    if from_env:
        for spec in kind.fields:
            if spec.env and os.environ.get(spec.env, "").strip():
                values[spec.name] = os.environ[spec.env].strip()
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep:
            raise VoxflowError(
                f"--set takes FIELD=VALUE, e.g. --set {kind.fields[0].name}=...; got '{name}'."
            )
        if kind.field(name) is None:
            hint = as_sentence(did_you_mean(name, set(kind.field_names))) or ""
            raise VoxflowError(
                f"a {kind.name} connection has no field '{name}' (its fields: "
                f"{', '.join(kind.field_names)}). {hint}".strip()
            )
        values[name] = value.strip()
    missing = [f for f in kind.fields if f.required and not values.get(f.name)]
    if missing and sys.stdin.isatty():
        for spec in missing:
            ask = f"{spec.name} ({spec.description}): "
            values[spec.name] = (getpass.getpass(ask) if spec.secret else input(ask)).strip()
        missing = [f for f in kind.fields if f.required and not values.get(f.name)]
    if missing:
        raise VoxflowError(
            f"a {kind.name} connection needs "
            + ", ".join(
                f"{f.name} ({f.description}" + (f"; or set {f.env} and use --from-env" if f.env else "") + ")"
                for f in missing
            )
            + "."
        )
    return values


def _list(store) -> int:  # type: ignore[no-untyped-def]
    entries = store.entries()
    if not entries:
        print(f"No connections stored in {store.path}. Add one with `voxflow connections add NAME KIND`.")
        return 0
    width = max(len(e.name) for e in entries)
    print(f"{'NAME':<{width}}  {'KIND':<8}  {'ADDED':<25}  FIELDS SET")
    for entry in entries:
        print(f"{entry.name:<{width}}  {entry.kind:<8}  {entry.added:<25}  {', '.join(entry.fields)}")
    return 0


def _test(store, names: list[str]) -> int:  # type: ignore[no-untyped-def]
    from engine.connections.checks import test_connection

    names = names or store.names()
    if not names:
        raise VoxflowError(
            "there are no connections to test; add one with `voxflow connections add NAME KIND`."
        )
    failed = 0
    for name in names:
        try:
            said = test_connection(store.get(name))
        except VoxflowError as problem:
            failed += 1
            print(f"{name}: FAILED — {problem.message}")
            continue
        print(f"{name}: ok — " + "; ".join(said) + ".")
    return 1 if failed else 0
