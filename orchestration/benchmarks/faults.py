"""``homecall bench faults``: run the fault suite (tests/faults) against real processes and
print what each case proved and how long it took.

The default run is what ``make test`` runs (6 gateway kills); ``--long`` adds the slow
variants (50 kills at random points), which is what ``make test-long`` runs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--long", action="store_true", help="include the slow variants")
    parser.add_argument("-k", dest="keyword", help="only cases matching this pytest -k")


def run(args: argparse.Namespace) -> int:
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider",
               str(root / "tests" / "faults"), "--durations=0"]
    if args.long:
        command.append("--run-slow")
    if args.keyword:
        command += ["-k", args.keyword]
    started = time.monotonic()
    result = subprocess.run(command, cwd=root)
    print(f"fault suite: exit {result.returncode} in {time.monotonic() - started:.0f} s")
    return result.returncode
