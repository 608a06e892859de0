"""``faces-keras evaluate RUN DATA`` and ``faces-keras embed RUN [DATA]``."""

from __future__ import annotations

import argparse
import sys

from faces_keras.cli.flags import ConfigFile, add_settings, settings_from
from faces_keras.inference.embed import EmbedConfig
from faces_keras.inference.evaluate import EvaluateConfig

DATA_HELP = ("a prepared dataset folder; or a labels source in --schema (a CelebA attribute file, a UTKFace "
             "folder, ...); or, with --labels FILE, the photos' folder")


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="score a run on any labelled set (its thresholds, never changed)",
                       description="Score a trained run on a labelled set with its own preprocessing, test-time "
                                   "augmentation and thresholds: metrics per label as in training's metrics.md, "
                                   "and the green/red report of the set. Photos are prepared as the run's "
                                   "training faces were. A set without one of the run's labels, or with other "
                                   "values, is refused. Nothing in the run changes but RUN/evaluations/.")
    p.add_argument("run", help="run directory")
    p.add_argument("data", help=DATA_HELP)
    add_settings(p, EvaluateConfig)
    p.add_argument("--config", help="YAML/TOML file of evaluate settings")
    p.set_defaults(handler=run_evaluate)

    p = sub.add_parser("embed", help="latent space of a run: embeddings, PCA/t-SNE, neighbours, hard pairs",
                       description="Embed faces with the layer that feeds a run's heads; write embeddings.npz, "
                                   "PCA and t-SNE projections coloured by each label (PNG and an interactive "
                                   "embed.html), each face's nearest neighbours and the hard pairs (most alike "
                                   "faces across a label boundary). DATA defaults to the run's own test split.")
    p.add_argument("run", help="run directory")
    p.add_argument("data", nargs="?", help=DATA_HELP + " (default: the run's own dataset, its test split)")
    add_settings(p, EmbedConfig)
    p.add_argument("--config", help="YAML/TOML file of embed settings")
    p.set_defaults(handler=run_embed)


def run_evaluate(args: argparse.Namespace) -> int:
    from faces_keras.inference.evaluate import evaluate_run_on
    from faces_keras.reports.terminal import use_color

    config_file = ConfigFile(args.config)
    config = settings_from(EvaluateConfig, args, config_file)
    config_file.check_all_used("evaluate")
    result = evaluate_run_on(args.run, args.data, config)
    if result.report is not None:
        sys.stdout.write(result.report.terminal if use_color(sys.stdout) else result.report.terminal_plain)
        print()
    print(result.summary())
    return 0


def run_embed(args: argparse.Namespace) -> int:
    from faces_keras.inference.embed import embed_run

    config_file = ConfigFile(args.config)
    config = settings_from(EmbedConfig, args, config_file)
    config_file.check_all_used("embed")
    result = embed_run(args.run, args.data, config)
    print(result.summary())
    return 0
