"""What the commands print about a finished run."""

from __future__ import annotations

from faces_keras.io import read_json
from faces_keras.rundir import RunDir


def print_run_summary(run: RunDir) -> None:
    """The test scores of each head, and where the run and its report are."""
    metrics = read_json(run / "metrics.json")
    for head, result in metrics["heads"].items():
        if result["kind"] == "binary":
            print(f"{'label':<12}{'threshold':>10}{'precision':>10}{'recall':>8}{'F1':>7}   (test)")
            for row in result["test"]:
                print(f"{row['label']:<12}{row['threshold']:>10.2f}{row['precision']:>10.3f}"
                      f"{row['recall']:>8.3f}{row['f1']:>7.3f}")
        elif result["kind"] == "multiclass":
            print(f"{head}: test accuracy {result['test']['accuracy']:.3f}, macro F1 {result['test']['macro_f1']:.3f}")
        else:
            print(f"{head}: test MAE {result['test']['mae']:.2f}")
    print(f"run directory: {run.path}")
    if (run / "report.html").is_file():
        print(f"report: {run / 'report.html'}")
