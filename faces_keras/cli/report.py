"""``faces-keras report RUN``: the terminal table, then where the HTML, PNG, CSV and per-group files went."""

from __future__ import annotations

import argparse
import sys

from faces_keras.cli.flags import add_settings, settings_from
from faces_keras.reports.report import ReportConfig


def register(sub) -> None:
    p = sub.add_parser("report", help="green/red prediction report of a run (terminal, HTML, PNG, CSV)",
                       description="Show a run's predictions on a labelled split, face by face (right in "
                                   "green, wrong in red), and write the HTML page, the PNG gallery, the "
                                   "predictions CSV, the per-group metrics and the reliability diagrams.")
    p.add_argument("run", help="run directory")
    add_settings(p, ReportConfig)
    p.set_defaults(handler=run_report)


def run_report(args: argparse.Namespace) -> int:
    from faces_keras.reports.report import write_report
    from faces_keras.reports.terminal import use_color

    config = settings_from(ReportConfig, args)
    result = write_report(args.run, config)
    coloured = use_color(sys.stdout, None if config.color else False)
    sys.stdout.write(result.terminal if coloured else result.terminal_plain)
    print()
    print(result.summary())
    return 0
