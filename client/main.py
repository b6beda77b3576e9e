"""The `topicstance` command's entry point: the one module that joins the client
commands (gRPC, `client.commands`) and the analyst commands (`training.analyst`).

Each command group lives in its own room and reports its own failures; this module
only builds the parser and ends quietly when the reader of the output goes away.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from client import commands
from training import analyst

# What a process killed by SIGPIPE reports: 128 + 13, as `yes | head -1` does.
BROKEN_PIPE_STATUS = 141


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="topicstance",
        description="Client for the topicstance service, and tools to evaluate and improve models.",
    )
    groups = parser.add_subparsers(dest="command", required=True)
    commands.add_commands(groups)
    analyst.add_commands(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = int(args.run(args))
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader closed the pipe (`| head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE_STATUS
    except OSError as error:
        print(f"topicstance: cannot write the output: {error.strerror or error}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
