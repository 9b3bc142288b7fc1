"""``homecall bench all``: every benchmark, one after another, each with its defaults (what
``make bench`` runs). ``--write-docs`` passes on to the benches that can update
docs/benchmarks.md. Exits non-zero if any bench did, after running the rest.
"""

from __future__ import annotations

import argparse
import importlib
import logging

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--write-docs", action="store_true",
                        help="let each bench that can update docs/benchmarks.md do so")
    parser.add_argument("--skip", action="append", default=[], metavar="NAME",
                        help="leave this bench out (repeatable)")


def run(args: argparse.Namespace) -> int:
    from homecall.cli import BENCHES

    failed: list[str] = []
    for name, (module_name, help_text) in BENCHES.items():
        if name == "all" or name in args.skip:
            continue
        log.info("bench %s: %s", name, help_text)
        module = importlib.import_module(module_name)
        parser = argparse.ArgumentParser(prog=f"homecall bench {name}")
        module.add_arguments(parser)
        argv = ["--write-docs"] if args.write_docs and _takes(parser, "--write-docs") else []
        try:
            status = int(module.run(parser.parse_args(argv)) or 0)
        except Exception:
            log.exception("bench %s failed", name)
            status = 1
        if status:
            failed.append(name)
    if failed:
        log.error("benches that failed: %s", ", ".join(failed))
    return 1 if failed else 0


def _takes(parser: argparse.ArgumentParser, option: str) -> bool:
    return any(option in action.option_strings for action in parser._actions)
