"""``voxflow numbers search|buy|assign|list|release``: phone numbers on Telnyx or Twilio.

``assign NUMBER FLOW`` points the number at this server (Telnyx: the ``voxflow``
TeXML application; Twilio: the number's voice URL and status callback, both
at ``--public-url`` or ``VOXFLOW_PUBLIC_URL``) and writes the trigger file for
review in git. ``list`` shows which number goes to which flow, and drift: a
number pointing somewhere else. Every command is safe to run again.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from engine.core.errors import VoxflowError

HELP = "Phone numbers on Telnyx or Twilio: search, buy, assign to a flow, list, release."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="numbers_command", metavar="ACTION")

    def account(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--connection",
            metavar="NAME",
            help="the telnyx or twilio connection to use (default: the only one)",
        )
        p.add_argument(
            "--carrier",
            choices=("telnyx", "twilio"),
            help="which carrier, when several accounts could be meant",
        )

    search = sub.add_parser("search", help="numbers for sale")
    search.add_argument("--country", default="US", help="ISO country code (default US)")
    search.add_argument("--area-code", help="area code (national destination code), e.g. 415")
    search.add_argument("--limit", type=int, default=10, help="at most this many (default 10)")
    account(search)
    buy = sub.add_parser("buy", help="buy a number (nothing happens if it is yours already)")
    buy.add_argument("number")
    account(buy)
    assign = sub.add_parser("assign", help="send a number's calls to a flow on this server")
    assign.add_argument("number")
    assign.add_argument("flow", help="the flow's name (its 'flow:' line)")
    assign.add_argument(
        "--public-url", help="this server as the carrier reaches it (default $VOXFLOW_PUBLIC_URL)"
    )
    assign.add_argument(
        "--flows", metavar="FOLDER", help="the folder of flows and triggers (default $VOXFLOW_FLOWS or flows)"
    )
    account(assign)
    listing = sub.add_parser("list", help="the accounts' numbers, their flows, and drift")
    listing.add_argument(
        "--public-url",
        help="this server as the carrier reaches it (default $VOXFLOW_PUBLIC_URL); needed to tell drift",
    )
    listing.add_argument("--flows", metavar="FOLDER")
    listing.add_argument(
        "--check", action="store_true", help="exit with 1 when a number drifted or lacks a trigger"
    )
    account(listing)
    release = sub.add_parser("release", help="give a number back to the carrier")
    release.add_argument("number")
    release.add_argument("--yes", action="store_true", help="do not ask to confirm")
    release.add_argument("--flows", metavar="FOLDER")
    account(release)


def run(args: argparse.Namespace) -> int:
    action = args.numbers_command
    if action not in ("search", "buy", "assign", "list", "release"):
        raise VoxflowError("say what to do: voxflow numbers search|buy|assign|list|release.")
    from engine.connections.store import default_store
    from engine.numbers import accounts

    store, env = default_store(), os.environ
    if action == "list":
        carriers = accounts.every_carrier(store, env, args.connection, args.carrier)
        return _list(carriers, _public_url(args.public_url, required=False), _flows(args), args.check)
    carrier = accounts.choose_carrier(store, env, args.connection, args.carrier)
    if action == "search":
        return _search(carrier, args)
    number = e164(args.number)
    if action == "buy":
        return _buy(carrier, number)
    if action == "assign":
        return _assign(
            carrier, number, args.flow, str(_public_url(args.public_url, required=True)), _flows(args)
        )
    return _release(carrier, number, args.yes, _flows(args))


def e164(text: str) -> str:
    from engine.server.routing import normalise_number

    number = normalise_number(text)
    if not re.fullmatch(r"\+[1-9][0-9]{6,14}", number):
        raise VoxflowError(
            f"'{text}' is not a phone number: write it with + and the country code, e.g. +15551230000."
        )
    return number


def _public_url(given: str | None, *, required: bool) -> str | None:
    url = (given or os.environ.get("VOXFLOW_PUBLIC_URL", "")).strip().rstrip("/")
    if not url:
        if required:
            raise VoxflowError(
                "say where the carrier reaches this server: --public-url "
                "https://your-server (or set VOXFLOW_PUBLIC_URL)."
            )
        return None
    if not url.startswith(("https://", "http://")):
        raise VoxflowError(f"the public URL '{url}' should start with https://.")
    return url


def _flows(args: argparse.Namespace) -> Path:
    return Path(args.flows or os.environ.get("VOXFLOW_FLOWS") or "flows")


def _search(carrier, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    if args.area_code and not args.area_code.isdigit():
        raise VoxflowError(f"the area code '{args.area_code}' should be digits, e.g. 415.")
    found = carrier.search(args.country, args.area_code, max(1, args.limit))
    where = f"{args.country.upper()}" + (f", area code {args.area_code}" if args.area_code else "")
    if not found:
        print(f"{carrier.name} has no numbers for sale in {where}; try another area code.")
        return 0
    print(f"Numbers for sale on {carrier.name} ({where}):")
    for item in found:
        extra = "  ".join(v for v in (item.region, item.monthly_cost and f"{item.monthly_cost}/month") if v)
        print(f"  {item.number}  {extra}".rstrip())
    print(f"Buy one with: voxflow numbers buy {found[0].number}")
    return 0


def _buy(carrier, number: str) -> int:  # type: ignore[no-untyped-def]
    if carrier.owned(number):
        print(f"{number} is already on the {carrier.name} account; nothing bought.")
    else:
        bought = carrier.buy(number)
        state = f" ({bought.status})" if bought.status else ""
        print(f"Bought {number} on {carrier.name}{state}.")
    print(f"Send its calls to a flow with: voxflow numbers assign {number} FLOW")
    return 0


def _assign(carrier, number: str, flow: str, public_url: str, flows_dir: Path) -> int:  # type: ignore[no-untyped-def]
    from engine.numbers.trigger_files import read_project, write_trigger

    project = read_project(flows_dir)  # the flow is checked before the account is touched
    if flow not in project.flow_files:
        write_trigger(flows_dir, number, flow, carrier.name)  # raises, naming close flows
    owned = carrier.owned(number)
    if not owned:
        raise VoxflowError(
            f"{number} is not on the {carrier.name} account ({carrier.account}): "
            f"buy it first with `voxflow numbers buy {number}`."
        )
    pointing = carrier.point(owned[0], public_url)
    for action in pointing.actions:
        print(action)
    if not pointing.changed:
        print(f"{number} already sends its calls to {carrier.voice_url(public_url)}.")
    written = write_trigger(flows_dir, number, flow, carrier.name)
    if written.created:
        print(f"Wrote {written.path}: calls to {number} run the flow '{flow}'.")
    elif written.changed:
        print(f"Updated {written.path}: calls to {number} now run the flow '{flow}'.")
    else:
        print(f"{written.path} already sends {number} to the flow '{flow}'.")
    if written.changed:
        print(f"Review it and commit it: git add {written.path}")
    return 0


def _list(carriers, public_url: str | None, flows_dir: Path, check: bool) -> int:  # type: ignore[no-untyped-def]
    from engine.numbers.trigger_files import read_project, trigger_for

    project = read_project(flows_dir) if flows_dir.is_dir() else None
    rows: list[tuple[str, str, str, str, str]] = []
    problems = 0
    seen: set[str] = set()
    for carrier in carriers:
        expected = carrier.voice_url(public_url) if public_url else None
        for owned in carrier.owned():
            seen.add(owned.number)
            trigger = trigger_for(project, owned.number) if project else None
            flow = trigger.flow if trigger else "-"
            points = owned.voice_url or "(nowhere)"
            if owned.target:
                points += f" [{owned.target}]"
            if trigger is not None and trigger.carrier not in (None, carrier.name):
                state, flow = f"trigger is for {trigger.carrier}", f"({trigger.flow})"
                problems += 1
            elif owned.voice_url is None:
                state = "not pointed at any server"
                problems += trigger is not None
            elif expected is not None and owned.voice_url != expected:
                state = "DRIFT: points somewhere else"
                problems += 1
            elif expected is None:
                state = "? (give --public-url to check)"
            elif trigger is None:
                state = "no trigger: gets the unknown-number answer"
                problems += 1
            else:
                state = "ok"
            rows.append((owned.number, carrier.name, flow, points, state))
    for trigger in project.triggers if project else []:
        if trigger.number not in seen:
            rows.append(
                (
                    trigger.number,
                    trigger.carrier or "-",
                    trigger.flow,
                    "-",
                    "trigger only: the number is on none of these accounts",
                )
            )
    if not rows:
        print(
            "No numbers on the account"
            + ("s" if len(carriers) > 1 else "")
            + " and no triggers. Find one with: voxflow numbers search"
        )
        return 0
    header = ("NUMBER", "CARRIER", "FLOW", "POINTS AT", "STATE")
    widths = [max(len(r[i]) for r in (*rows, header)) for i in range(4)]
    for row in (header, *rows):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4])
    return 1 if check and problems else 0


def _release(carrier, number: str, yes: bool, flows_dir: Path) -> int:  # type: ignore[no-untyped-def]
    owned = carrier.owned(number)
    if not owned:
        print(f"{number} is not on the {carrier.name} account; nothing to release.")
        return 0
    if not yes:
        if not sys.stdin.isatty():
            raise VoxflowError(
                f"releasing {number} gives it back to {carrier.name} for good: add --yes to do it."
            )
        answer = input(f"Release {number} from {carrier.name} for good? Type the number to confirm: ").strip()
        if answer != number:
            print("Not released.")
            return 1
    carrier.release(owned[0])
    print(f"Released {number} from {carrier.name}.")
    if flows_dir.is_dir():
        from engine.numbers.trigger_files import read_project, trigger_for

        trigger = trigger_for(read_project(flows_dir), number)
        if trigger is not None:
            print(
                f"{trigger.source} still names {number} (flow '{trigger.flow}'): delete it "
                "if the number is gone for good."
            )
    return 0
