"""The `hrc-perception` command.

    hrc-perception synth   --config config/cell.yaml --frames N --seed S --out DIR [--bag]
                           [--dataset coco,bop,keypoints,person_crops]
    hrc-perception preview DIR [--out FILE.png] [--rows N]
    hrc-perception train|eval|bench COMPONENT ...   (hrc-perception train -h lists them)
    hrc-perception record  --out BAG_DIR [--topics T ...] [--duration S] [--namespace NS]
    hrc-perception replay  BAG [--rate R] [--clock] [--loop] [--restamp] [--topics T ...] [--delay S]

Each component owns its commands: ``hrc_perception/<component>/cli.py`` has a
``register(commands)`` that adds its parsers (``cli_args.Commands``); this module finds
every such file, so a new component adds its commands in its own folder.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import hrc_perception
from hrc_perception.cli_args import Commands
from hrc_perception.sim.config import ConfigError


def command_modules() -> list[str]:
    """``hrc_perception.<component>.cli`` of every component that has one, in name order."""
    names = []
    for info in sorted(pkgutil.iter_modules(hrc_perception.__path__), key=lambda m: m.name):
        if info.ispkg and importlib.util.find_spec(f"hrc_perception.{info.name}.cli") is not None:
            names.append(f"hrc_perception.{info.name}.cli")
    return names


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hrc-perception", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    top = p.add_subparsers(dest="command", required=True)
    verbs = {name: top.add_parser(name, help=text).add_subparsers(dest="what", required=True)
             for name, text in (("train", "train a learned component"), ("eval", "evaluate a learned component"),
                                ("bench", "benchmarks"))}
    commands = Commands(top=top, **verbs)
    for module in command_modules():
        importlib.import_module(module).register(commands)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"hrc-perception {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
