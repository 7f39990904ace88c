"""``voxflow models``: the model files voxflow can use but does not ship (the Smart Turn
end-of-turn model), fetched once per machine into the cache folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.agent import turn_model_file as files
from engine.core.errors import VoxflowError

HELP = "Fetch the optional models (the Smart Turn end-of-turn model) into this machine's cache."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION")
    fetch = sub.add_parser(
        "fetch",
        help="download a model and check it (smart-turn: from the pipecat-ai wheel on PyPI)",
    )
    fetch.add_argument("name", choices=sorted(files.MODELS), help="the model")
    fetch.add_argument(
        "--wheel",
        type=Path,
        metavar="FILE.whl",
        help=f"take it from this wheel (for smart-turn: {files.SMART_TURN.requirement}) "
        "instead of downloading it",
    )
    sub.add_parser("list", help="the models, and whether and where each is on this machine")


def run(args: argparse.Namespace) -> int:
    if args.models_command == "fetch":
        model = files.MODELS[args.name]
        if args.wheel is not None and not args.wheel.is_file():
            raise VoxflowError(f"{args.wheel}: no such file; give the path of the downloaded wheel.")
        already = files.find(model)
        path = files.fetch(model, wheel=args.wheel)
        verb = "already there" if already == path else "fetched"
        print(f"{model.title}: {verb}, {path} (SHA-256 checked)")
        print(f"Licence: {model.licence}; the text is in {path.parent / 'LICENSE'}.")
        print(f"Calls use it with {files.SETTING}=smart-turn; 'voxflow dev' uses it when it is here.")
        return 0
    if args.models_command == "list":
        for model in files.MODELS.values():
            found = files.find(model)
            where = str(found) if found else f"not fetched: run 'voxflow models fetch {model.name}'"
            print(f"{model.name:12} {model.title}, {model.licence}: {where}")
        return 0
    raise VoxflowError("say what to do: 'voxflow models fetch smart-turn' or 'voxflow models list'.")
