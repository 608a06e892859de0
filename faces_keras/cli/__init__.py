"""The ``faces-keras`` command line: the one place that parses flags and prints results.

Each command module adds its subcommand(s) (``register``) and turns the parsed
flags into one library call (flags come from the settings dataclasses, see
:mod:`faces_keras.cli.flags`). User errors (:class:`FacesKerasError`) print as
one line and exit with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from faces_keras import __version__
from faces_keras.cli.flags import read_config_file  # noqa: F401  (public: config files as the CLI reads them)
from faces_keras.errors import FacesKerasError

# faces_keras.cli.<name>: each adds its subcommands, in the order --help lists them
COMMAND_MODULES = ("quickstart", "data", "train", "report", "predict", "evaluate", "tune", "app")
DESCRIPTION = "faces-keras: prepare face datasets, train, tune and evaluate facial-attribute CNNs."


def build_parser() -> argparse.ArgumentParser:
    """The ``faces-keras`` parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="faces-keras", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"faces-keras {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="more log output (also TensorFlow's start-up messages)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"faces_keras.cli.{name}")
        except ModuleNotFoundError as exc:  # a command module not written yet
            if exc.name != f"faces_keras.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def _quiet_backend_logs(verbose: bool) -> None:
    from faces_keras import quiet

    if verbose:
        quiet.stop_quieting_tensorflow()
    else:
        quiet.quiet_tensorflow_import()


def entry() -> int:
    """The ``faces-keras`` program: set up the memory allocator, then :func:`main` on ``sys.argv``.

    The allocator (:mod:`faces_keras.allocator`) may re-execute the process
    with tcmalloc preloaded; :func:`main` itself never does, so it can run
    inside another program (tests, notebooks).
    """
    from faces_keras.allocator import tune_allocator

    argv = sys.argv[1:]
    try:
        tune_allocator(argv)
    except FacesKerasError as exc:
        print(f"faces-keras: error: {exc}", file=sys.stderr)
        return 2
    return main(argv)


def main(argv: list[str] | None = None) -> int:
    """Run one ``faces-keras`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_backend_logs(args.verbose)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s: %(message)s")
    logging.getLogger("faces_keras").setLevel(logging.INFO)
    handler = getattr(args, "handler", None)
    if handler is None:
        (getattr(args, "parser", None) or parser).print_help()
        return 2
    try:
        return handler(args) or 0
    except FacesKerasError as exc:
        print(f"faces-keras {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"faces-keras {args.command}: interrupted", file=sys.stderr)
        return 130
