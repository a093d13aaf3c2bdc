"""forgetlab's command line: a thin layer over forgetlab.api and the workflows.

The commands that train (``train``: run, sweep, compare, reproduce) and those that read or list (``read``:
show, plot, summarize, presets, keys) each declare their parser beside their handler; the options several
commands share are declared once (``options``) and mean the same in each. Every error the user can cause
ends as one line on stderr and exit status 2 (130 after Ctrl-C).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from forgetlab.cli import read, train
from forgetlab.cli.options import Parser
from forgetlab.cli.train import RUN_EPILOG
from forgetlab.errors import ForgetlabError

COMMANDS = {**train.COMMANDS, **read.COMMANDS}  # name -> (add its parser, run it), in the order help lists them


def parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="forgetlab",
        description="Study catastrophic forgetting, fast: batched ensembles on resident tensors.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=RUN_EPILOG,
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for add, _ in COMMANDS.values():
        add(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
        return COMMANDS[args.command][1](args)
    except ForgetlabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    sys.exit(main())
