"""``faces-keras quickstart``."""

from __future__ import annotations

import argparse

from faces_keras.cli.flags import ConfigFile, add_settings, option, settings_from
from faces_keras.cli.summary import print_run_summary
from faces_keras.demo import QuickstartConfig


def register(sub) -> None:
    p = sub.add_parser("quickstart", help="the whole pipeline on generated (or given) grid photos",
                       description="Draw synthetic grid photos (or read --photos), prepare, train, tune "
                                   "thresholds and write the report, in one command.")
    p.add_argument("--out", help="run directory (default runs/quickstart)")
    add_settings(p, QuickstartConfig)
    p.add_argument("--config", help="YAML/TOML file of settings")
    p.set_defaults(handler=run_quickstart)


def run_quickstart(args: argparse.Namespace) -> int:
    from faces_keras.demo import quickstart

    config_file = ConfigFile(args.config)
    out = option(args, config_file, "out", "runs/quickstart")
    config = settings_from(QuickstartConfig, args, config_file)
    config_file.check_all_used("quickstart")
    print_run_summary(quickstart(out, config))
    return 0
