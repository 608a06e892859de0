"""Threshold tuning and per-label metrics, on hand-made predictions (no Keras)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    f1_score,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
)

from faces_keras.errors import LabelsError, RunError
from faces_keras.reports.metrics import (
    before_after_table,
    binary_metrics,
    multiclass_metrics,
    regression_metrics,
)
from faces_keras.tables import to_markdown
from faces_keras.thresholds import (
    ThresholdConfig,
    ThresholdResult,
    apply_thresholds,
    describe_multiclass,
    plot_threshold_curves,
    tune_thresholds,
)

NAMES = ["smile", "glasses", "beard"]


def random_predictions(seed: int, n: int | None = None, labels: int = 3,
                       masked: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Labels with random prevalence and probabilities loosely tied to them."""
    rng = np.random.default_rng(seed)
    n = n or int(rng.integers(8, 60))
    prevalence = rng.uniform(0.05, 0.7, size=labels)
    y_true = (rng.random((n, labels)) < prevalence).astype(int)
    signal = rng.uniform(0.0, 0.6, size=labels)
    y_prob = np.clip(rng.random((n, labels)) * (1 - signal) + y_true * signal, 0, 1)
    y_true[rng.random((n, labels)) < masked] = -1
    return y_true, y_prob


def f1_at(truth: np.ndarray, prob: np.ndarray, threshold: float) -> float:
    """scikit-learn's F1 of ``prob >= threshold`` (slow: a few ms a call)."""
    return f1_score(truth, (prob >= threshold).astype(int), zero_division=0)


def counted_f1(truth: np.ndarray, prob: np.ndarray, threshold: float) -> float:
    """F1 from confusion counts, by hand: the fast oracle for the property tests."""
    predicted = prob >= threshold
    tp = np.sum(predicted & (truth == 1))
    wrong = np.sum(predicted & (truth == 0)) + np.sum(~predicted & (truth == 1))
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + wrong)


def unmasked(y_true: np.ndarray, y_prob: np.ndarray, j: int) -> tuple[np.ndarray, np.ndarray]:
    keep = y_true[:, j] != -1
    return y_true[keep, j], y_prob[keep, j]


# -- tuning ---------------------------------------------------------------------

def test_grid_curve_matches_sklearn_at_every_grid_value():
    config = ThresholdConfig(step=0.1)
    for seed in range(4):
        y_true, y_prob = random_predictions(seed, n=40)
        result = tune_thresholds(y_true, y_prob, NAMES, config)
        for j, name in enumerate(NAMES):
            if name not in result.curves:
                continue
            truth, prob = unmasked(y_true, y_prob, j)
            curve = result.curves[name]
            np.testing.assert_array_equal(curve.threshold, config.grid())
            for t, precision, recall, f1 in zip(curve.threshold, curve.precision,
                                                curve.recall, curve.f1):
                predicted = (prob >= t).astype(int)
                expected = precision_recall_fscore_support(
                    truth, predicted, average="binary", zero_division=0)[:3]
                assert (precision, recall, f1) == pytest.approx(expected, abs=1e-12)


def test_grid_threshold_beats_default_and_every_grid_value():
    config = ThresholdConfig()
    tuned_labels = 0
    for seed in range(200):
        y_true, y_prob = random_predictions(seed, labels=2)
        result = tune_thresholds(y_true, y_prob, NAMES[:2], config)
        for j, name in enumerate(NAMES[:2]):
            truth, prob = unmasked(y_true, y_prob, j)
            if name not in result.best_f1:
                continue
            tuned_labels += 1
            chosen = result.thresholds[name]
            best = counted_f1(truth, prob, chosen)
            assert chosen in config.grid()
            assert best == pytest.approx(result.best_f1[name], abs=1e-12)
            assert best >= counted_f1(truth, prob, 0.5) - 1e-12, (seed, name)
            for t in config.grid():
                assert best >= counted_f1(truth, prob, t) - 1e-12, (seed, name, t)
            if seed % 20 == 0:  # scikit-learn agrees with the hand count
                assert f1_at(truth, prob, chosen) == pytest.approx(best, abs=1e-12)
    assert tuned_labels > 300  # the generator rarely makes untunable labels


def test_exact_method_is_at_least_as_good_as_the_grid_and_reproducible():
    for seed in range(100):
        y_true, y_prob = random_predictions(1000 + seed, labels=2)
        grid = tune_thresholds(y_true, y_prob, NAMES[:2], ThresholdConfig(method="grid"))
        exact = tune_thresholds(y_true, y_prob, NAMES[:2], ThresholdConfig(method="exact"))
        assert set(exact.best_f1) == set(grid.best_f1)
        for j, name in enumerate(NAMES[:2]):
            if name not in exact.best_f1:
                continue
            truth, prob = unmasked(y_true, y_prob, j)
            reproduced = counted_f1(truth, prob, exact.thresholds[name])
            assert reproduced == pytest.approx(exact.best_f1[name], abs=1e-12), (seed, name)
            assert reproduced >= counted_f1(truth, prob, grid.thresholds[name]) - 1e-12
            assert reproduced >= counted_f1(truth, prob, 0.5) - 1e-12
            if seed % 10 == 0:
                assert f1_at(truth, prob, exact.thresholds[name]) == pytest.approx(
                    reproduced, abs=1e-12)


# Two positives (0.9, 0.35) and two negatives (0.6, 0.5): predicting only the
# top row and predicting every row both give F1 2/3; everything between is worse.
TIE_TRUTH = np.array([[1], [0], [0], [1]])
TIE_PROB = np.array([[0.9], [0.6], [0.5], [0.35]])


def test_tie_equally_near_half_goes_to_the_lower_threshold():
    result = tune_thresholds(TIE_TRUTH, TIE_PROB, ["smile"])
    truth, prob = TIE_TRUTH[:, 0], TIE_PROB[:, 0]
    # The two tied regions start at 0.65 and end at 0.35: both 0.15 from 0.5.
    assert f1_at(truth, prob, 0.65) == pytest.approx(f1_at(truth, prob, 0.35))
    assert f1_at(truth, prob, 0.5) < f1_at(truth, prob, 0.35)
    assert result.thresholds["smile"] == pytest.approx(0.35)
    assert result.best_f1["smile"] == pytest.approx(2 / 3)


def test_tie_goes_to_the_threshold_nearest_half():
    # Lower the second negative to 0.45: the upper tied region now reaches down to 0.55.
    prob = np.array([[0.9], [0.5], [0.45], [0.2]])
    truth = TIE_TRUTH
    assert f1_at(truth[:, 0], prob[:, 0], 0.55) == pytest.approx(
        f1_at(truth[:, 0], prob[:, 0], 0.2))
    assert tune_thresholds(truth, prob, ["smile"]).thresholds["smile"] == pytest.approx(0.55)
    # The exact method's candidates are the probabilities: 0.9 and 0.2 tie, 0.2 is nearer.
    exact = tune_thresholds(truth, prob, ["smile"], ThresholdConfig(method="exact"))
    assert exact.thresholds["smile"] == pytest.approx(0.2)


def test_a_perfect_separation_keeps_half_among_equal_thresholds():
    truth = np.array([[0], [0], [1], [1]])
    prob = np.array([[0.02], [0.1], [0.9], [0.97]])
    result = tune_thresholds(truth, prob, ["smile"])
    assert result.best_f1["smile"] == 1.0
    assert result.thresholds["smile"] == 0.5


@pytest.mark.parametrize("method", ["grid", "exact"])
def test_labels_without_positives_or_negatives_keep_half_with_a_note(method):
    y_true, y_prob = random_predictions(7, n=40, masked=0.0)
    y_true[:, 1] = 0
    y_true[:, 2] = 1
    y_true[:3, 2] = -1
    result = tune_thresholds(y_true, y_prob, NAMES, ThresholdConfig(method=method))
    assert result.thresholds["glasses"] == 0.5
    assert result.thresholds["beard"] == 0.5
    assert result.notes["glasses"] == "no positives in validation: kept 0.5"
    assert result.notes["beard"] == "no negatives in validation: kept 0.5"
    assert "smile" not in result.notes and "smile" in result.curves
    assert set(result.curves) == {"smile"}


def test_a_fully_masked_label_keeps_half():
    y_true, y_prob = random_predictions(8, n=30, masked=0.0)
    y_true[:, 0] = -1
    result = tune_thresholds(y_true, y_prob, NAMES)
    assert result.thresholds["smile"] == 0.5
    assert "no labelled rows" in result.notes["smile"]


@pytest.mark.parametrize("config", [ThresholdConfig(), ThresholdConfig(method="exact"),
                                    ThresholdConfig(mode="shared"),
                                    ThresholdConfig(method="exact", mode="shared")])
def test_masked_rows_change_nothing(config):
    rng = np.random.default_rng(11)
    for seed in range(20):
        y_true, y_prob = random_predictions(200 + seed)
        extra = int(rng.integers(1, 30))
        noise_prob = rng.random((extra, 3))
        noise_prob[0, 0] = np.nan  # anything at all, even NaN, where the label is missing
        padded_true = np.vstack([y_true, np.full((extra, 3), -1)])
        padded_prob = np.vstack([y_prob, noise_prob])
        order = rng.permutation(len(padded_true))
        before = tune_thresholds(y_true, y_prob, NAMES, config)
        after = tune_thresholds(padded_true[order], padded_prob[order], NAMES, config)
        assert after.thresholds == before.thresholds
        assert after.best_f1 == before.best_f1
        assert after.notes == before.notes
        for name, curve in before.curves.items():
            np.testing.assert_array_equal(after.curves[name].threshold, curve.threshold)
            np.testing.assert_array_equal(after.curves[name].f1, curve.f1)


def test_shared_mode_uses_one_threshold_maximising_the_mean_f1():
    config = ThresholdConfig(mode="shared")
    for seed in range(30):
        y_true, y_prob = random_predictions(300 + seed, n=60)
        result = tune_thresholds(y_true, y_prob, NAMES, config)
        assert len(set(result.thresholds.values())) == 1
        shared = result.thresholds["smile"]
        tunable = [j for j, name in enumerate(NAMES) if name in result.best_f1]

        def mean_f1(t: float) -> float:
            return float(np.mean([counted_f1(*unmasked(y_true, y_prob, j), t) for j in tunable]))

        for t in config.grid():
            assert mean_f1(shared) >= mean_f1(t) - 1e-12, (seed, t)


def test_shared_exact_mode_beats_shared_grid_on_the_mean_f1():
    for seed in range(20):
        y_true, y_prob = random_predictions(400 + seed, n=50)
        grid = tune_thresholds(y_true, y_prob, NAMES, ThresholdConfig(mode="shared"))
        exact = tune_thresholds(y_true, y_prob, NAMES,
                                ThresholdConfig(method="exact", mode="shared"))
        tunable = [j for j, name in enumerate(NAMES) if name in grid.best_f1]

        def mean_f1(t: float) -> float:
            return float(np.mean([counted_f1(*unmasked(y_true, y_prob, j), t) for j in tunable]))

        shared = exact.thresholds["smile"]
        assert mean_f1(shared) >= mean_f1(grid.thresholds["smile"]) - 1e-12
        # The counted F1 agrees with scikit-learn's at the chosen threshold.
        for j in tunable:
            assert exact.best_f1[NAMES[j]] == pytest.approx(
                f1_at(*unmasked(y_true, y_prob, j), shared), abs=1e-12)


def test_shared_mode_notes_untunable_labels_but_still_shares():
    y_true, y_prob = random_predictions(9, n=40, masked=0.0)
    y_true[:, 2] = 0
    result = tune_thresholds(y_true, y_prob, NAMES, ThresholdConfig(mode="shared"))
    assert len(set(result.thresholds.values())) == 1
    assert "no positives" in result.notes["beard"] and "shared" in result.notes["beard"]
    assert "beard" not in result.best_f1


def test_multiclass_columns_are_refused():
    y_true = np.array([[0], [2], [1]])
    with pytest.raises(LabelsError, match=r"'age'.*\[0, 1, 2\]"):
        tune_thresholds(y_true, np.full((3, 1), 0.5), ["age"])
    assert "arg-max" in describe_multiclass("age") and "age" in describe_multiclass("age")


def test_bad_shapes_and_probabilities_are_refused():
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        tune_thresholds(np.zeros((3, 3), int), np.zeros((3, 3)), ["a", "b"])
    with pytest.raises(ValueError, match="'a'.*1.5"):
        tune_thresholds(np.array([[0], [1]]), np.array([[0.2], [1.5]]), ["a"])


def test_apply_thresholds_predicts_at_or_above_each_label_threshold():
    y_prob = np.array([[0.3, 0.3], [0.5, 0.7], [0.29, 0.71]])
    predicted = apply_thresholds(y_prob, {"a": 0.3, "b": 0.7}, ["a", "b"])
    np.testing.assert_array_equal(predicted, [[1, 0], [1, 1], [0, 1]])
    assert predicted.dtype.kind == "i"
    with pytest.raises(ValueError, match="'b'"):
        apply_thresholds(y_prob, {"a": 0.3}, ["a", "b"])


# -- configuration --------------------------------------------------------------

def test_default_grid_is_clean_and_includes_stop():
    grid = ThresholdConfig().grid()
    assert len(grid) == 19
    assert grid[0] == 0.05 and grid[-1] == 0.95
    assert 0.15 in grid.tolist() and 0.5 in grid.tolist() and 0.7 in grid.tolist()
    odd = ThresholdConfig(start=0.1, stop=0.85, step=0.1).grid()
    assert odd.tolist() == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85]
    assert ThresholdConfig(start=0.3, stop=0.3).grid().tolist() == [0.3]


@pytest.mark.parametrize("kwargs, named", [
    ({"start": 0.0}, "0.0"),
    ({"start": -0.2}, "-0.2"),
    ({"start": 0.6, "stop": 0.4}, "0.4"),
    ({"stop": 1.0}, "1.0"),
    ({"step": 0.0}, "0.0"),
    ({"step": -0.05}, "-0.05"),
    ({"step": 1e-9}, "1e-09"),
    ({"start": "0.1"}, "'0.1'"),
    ({"step": float("nan")}, "nan"),
    ({"method": "bayes"}, "'bayes'"),
    ({"mode": "global"}, "'global'"),
])
def test_config_validation_names_the_bad_value(kwargs, named):
    with pytest.raises(ValueError) as info:
        ThresholdConfig(**kwargs)
    message = str(info.value)
    assert named in message
    assert any(key in message for key in kwargs)


# -- persistence and plots ------------------------------------------------------

@pytest.mark.parametrize("config", [ThresholdConfig(), ThresholdConfig(method="exact"),
                                    ThresholdConfig(mode="shared", step=0.1)])
def test_save_load_round_trip(tmp_path, config):
    y_true, y_prob = random_predictions(21, n=80)
    y_true[:, 2] = 0
    result = tune_thresholds(y_true, y_prob, NAMES, config)
    path = tmp_path / "run" / "thresholds.json"
    result.save(path)
    assert json.loads(path.read_text())["thresholds"] == result.thresholds
    loaded = ThresholdResult.load(path)
    assert loaded.thresholds == result.thresholds
    assert list(loaded.thresholds) == NAMES
    assert loaded.best_f1 == result.best_f1
    assert loaded.notes == result.notes
    assert loaded.config == result.config
    assert (loaded.method, loaded.mode) == (config.method, config.mode)
    assert set(loaded.curves) == set(result.curves)
    for name, curve in result.curves.items():
        for key in ("threshold", "precision", "recall", "f1"):
            np.testing.assert_array_equal(getattr(loaded.curves[name], key), getattr(curve, key))
    np.testing.assert_array_equal(loaded.as_array(NAMES[::-1]),
                                  [result.thresholds[n] for n in NAMES[::-1]])
    # Applying the loaded exact thresholds reproduces the tuned F1 bit for bit.
    predicted = apply_thresholds(y_prob, loaded.thresholds, NAMES)
    truth, _ = unmasked(y_true, y_prob, 0)
    assert f1_score(truth, predicted[y_true[:, 0] != -1, 0]) == pytest.approx(
        result.best_f1["smile"], abs=1e-12)
    assert not [p for p in path.parent.iterdir() if p.name != "thresholds.json"]


def test_load_reports_missing_and_malformed_files(tmp_path):
    with pytest.raises(RunError, match="thresholds.json"):
        ThresholdResult.load(tmp_path / "thresholds.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"method": "grid", "mode": "per-label"}')
    with pytest.raises(RunError, match=r"bad.json.*'thresholds'"):
        ThresholdResult.load(bad)
    bad.write_text('{"method": "grid", "mode": "per-label", "thresholds": {"a": 3}}')
    with pytest.raises(RunError, match="'a': 3"):
        ThresholdResult.load(bad)
    bad.write_text("{not json")
    with pytest.raises(RunError, match="not valid JSON"):
        ThresholdResult.load(bad)


def test_plot_writes_a_png_with_one_panel_per_label(tmp_path):
    y_true, y_prob = random_predictions(31, n=50)
    y_true[:, 1] = 0
    result = tune_thresholds(y_true, y_prob, NAMES, ThresholdConfig(method="exact"))
    path = plot_threshold_curves(result, tmp_path / "plots" / "thresholds.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5000
    assert [p.name for p in path.parent.iterdir()] == ["thresholds.png"]


# -- reports --------------------------------------------------------------------

def test_test_report_uses_thresholds_chosen_on_validation():
    val_true, val_prob = random_predictions(41, n=120)
    test_true, test_prob = random_predictions(42, n=90)
    tuned = tune_thresholds(val_true, val_prob, NAMES)
    # Sanity: tuning on test would pick other thresholds, so the check below can fail.
    on_test = tune_thresholds(test_true, test_prob, NAMES)
    assert on_test.thresholds != tuned.thresholds

    table = before_after_table(test_true, test_prob, NAMES, tuned, "test")
    assert table["split"].tolist() == ["test"] * 3
    assert table["label"].tolist() == NAMES
    for j, name in enumerate(NAMES):
        row = table.iloc[j]
        truth, prob = unmasked(test_true, test_prob, j)
        threshold = tuned.thresholds[name]
        assert row["tuned_threshold"] == threshold
        assert row["n"] == truth.size
        assert row["f1@tuned"] == pytest.approx(f1_at(truth, prob, threshold))
        assert row["f1@0.5"] == pytest.approx(f1_at(truth, prob, 0.5))
        predicted = (prob >= threshold).astype(int)
        assert row["precision@tuned"] == pytest.approx(
            precision_score(truth, predicted, zero_division=0))
        assert row["recall@tuned"] == pytest.approx(recall_score(truth, predicted))
        assert row["accuracy@tuned"] == pytest.approx(np.mean(predicted == truth))


def test_binary_metrics_counts_match_a_hand_count():
    y_true = np.array([[1, 0], [0, -1], [1, 1], [0, 0], [1, 0], [-1, 1]])
    y_prob = np.array([[0.8, 0.1], [0.6, 0.99], [0.3, 0.7], [0.2, 0.55], [0.5, 0.2],
                       [0.9, 0.4]])
    thresholds = {"a": 0.5, "b": 0.6}
    table = binary_metrics(y_true, y_prob, ["a", "b"], thresholds)
    for j, name in enumerate(["a", "b"]):
        keep = y_true[:, j] != -1
        truth = y_true[keep, j]
        predicted = y_prob[keep, j] >= thresholds[name]
        tp = int(np.sum(predicted & (truth == 1)))
        fp = int(np.sum(predicted & (truth == 0)))
        fn = int(np.sum(~predicted & (truth == 1)))
        tn = int(np.sum(~predicted & (truth == 0)))
        row = table.iloc[j]
        assert (row["tp"], row["fp"], row["fn"], row["tn"]) == (tp, fp, fn, tn)
        assert row["n"] == keep.sum() == tp + fp + fn + tn
        assert row["threshold"] == thresholds[name]
        assert row["prevalence"] == pytest.approx((tp + fn) / (tp + fp + fn + tn))
        assert row["precision"] == pytest.approx(tp / (tp + fp))
        assert row["recall"] == pytest.approx(tp / (tp + fn))
        assert row["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
        assert row["accuracy"] == pytest.approx((tp + tn) / (tp + fp + fn + tn))
    # Label a, by hand: positives 0.8, 0.3, 0.5 against negatives 0.6, 0.2 rank
    # 2 + 1 + 1 of the 6 pairs correctly.
    assert table.iloc[0]["roc_auc"] == pytest.approx(4 / 6)
    one_class = binary_metrics(np.array([[0], [0]]), np.array([[0.1], [0.7]]), ["a"])
    assert math.isnan(one_class.iloc[0]["roc_auc"])
    assert one_class.iloc[0]["fp"] == 1 and one_class.iloc[0]["precision"] == 0


def test_multiclass_confusion_matrix_ignores_masked_rows():
    y_true = np.array([0, 1, 2, -1, 1, 0])
    y_prob = np.array([
        [0.7, 0.2, 0.1],   # 0 -> 0
        [0.1, 0.3, 0.6],   # 1 -> 2
        [0.2, 0.2, 0.6],   # 2 -> 2
        [0.9, 0.05, 0.05], # masked: would add a 0 prediction
        [0.2, 0.7, 0.1],   # 1 -> 1
        [0.3, 0.6, 0.1],   # 0 -> 1
    ])
    result = multiclass_metrics(y_true, y_prob, ["young", "adult", "old"])
    np.testing.assert_array_equal(result["confusion"], [[1, 1, 0], [0, 1, 1], [0, 0, 1]])
    assert result["n"] == 5
    assert result["accuracy"] == pytest.approx(3 / 5)
    per_class = result["per_class"].set_index("class")
    assert per_class["support"].tolist() == [2, 2, 1]
    assert per_class.loc["old", "precision"] == pytest.approx(1 / 2)
    assert per_class.loc["young", "recall"] == pytest.approx(1 / 2)
    f1s = [2 * 1 / (2 * 1 + 0 + 1), 2 * 1 / (2 * 1 + 1 + 1), 2 * 1 / (2 * 1 + 1 + 0)]
    assert result["macro_f1"] == pytest.approx(np.mean(f1s))


def test_regression_metrics_skip_missing_truth():
    result = regression_metrics(np.array([20.0, np.nan, 30.0, 41.0]),
                                np.array([22.0, 99.0, 27.0, 41.0]))
    assert result["n"] == 3
    assert result["mae"] == pytest.approx(5 / 3)
    assert result["rmse"] == pytest.approx(math.sqrt(13 / 3))


def test_to_markdown_formats_without_tabulate():
    table = pd.DataFrame({"label": ["smile", "a|b"], "n": [10, 3],
                          "f1": [0.123456, math.nan]})
    lines = to_markdown(table).splitlines()
    assert lines[0] == "| label | n | f1 |"
    assert lines[1] == "| --- | ---: | ---: |"
    assert lines[2] == "| smile | 10 | 0.123 |"
    assert lines[3] == "| a\\|b | 3 | n/a |"
    assert len(lines) == 4


# -- objectives other than F1 ----------------------------------------------------

@pytest.mark.parametrize("objective, scorer", [
    ("balanced_accuracy", lambda t, p: __import__("sklearn.metrics").metrics.balanced_accuracy_score(t, p)),
    ("macro_f1", lambda t, p: __import__("sklearn.metrics").metrics.f1_score(t, p, average="macro")),
])
@pytest.mark.parametrize("method", ["grid", "exact"])
def test_objective_is_maximised_and_matches_sklearn(objective, scorer, method):
    rng = np.random.default_rng(3)
    truth = (rng.random(400) < 0.5).astype(int)
    prob = np.clip(0.35 * truth + rng.random(400) * 0.65, 0, 1)
    config = ThresholdConfig(method=method, objective=objective)
    result = tune_thresholds(truth[:, None], prob[:, None], ["sex"], config)
    chosen = result.thresholds["sex"]
    best = result.best_score["sex"]
    assert best == pytest.approx(scorer(truth, (prob >= chosen).astype(int)), abs=1e-12)
    candidates = config.grid() if method == "grid" else np.unique(prob)
    assert best >= max(scorer(truth, (prob >= c).astype(int)) for c in candidates) - 1e-12
    assert result.objectives == {"sex": objective}
    again = ThresholdResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.objectives == {"sex": objective} and again.best_score == result.best_score


def test_a_balanced_objective_moves_a_positive_leaning_f1_threshold():
    # Scores that separate the classes weakly: F1 of the positive class gains by
    # predicting positive almost always; balanced accuracy does not.
    rng = np.random.default_rng(0)
    truth = (rng.random(2000) < 0.5).astype(int)
    prob = np.clip(0.5 + 0.12 * (truth - 0.5) + rng.normal(0, 0.15, 2000), 0, 1)
    names = ["sex", "hat"]
    both = np.stack([truth, truth], axis=1), np.stack([prob, prob], axis=1)
    result = tune_thresholds(*both, names, ThresholdConfig(label_objectives={"sex": "balanced_accuracy"}))
    assert result.objectives == {"sex": "balanced_accuracy", "hat": "f1"}
    assert result.thresholds["hat"] < result.thresholds["sex"]
    with pytest.raises(ValueError, match="label_objectives\\['sex'\\]"):
        ThresholdConfig(label_objectives={"sex": "accuracy"})


def test_cli_thresholds_objective_per_label_is_recorded(tmp_path):
    """`thresholds RUN --label-objective` on a hand-built run directory: no training needed."""
    from faces_keras.cli import main
    from faces_keras.labels import load_schema
    from faces_keras.rundir import RunDir

    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    schema = load_schema("grids")
    schema.dump(run / "schema.yaml")
    (run / "manifest.json").write_text(json.dumps({"path": str(tmp_path / "no-dataset")}))
    rng = np.random.default_rng(1)
    names = schema.label_names
    arrays = {}
    for split, n in (("val", 120), ("test", 80)):
        truth = (rng.random((n, len(names))) < 0.4).astype(np.int8)
        arrays[f"{split}/labels"] = np.clip(0.3 * truth + 0.7 * rng.random((n, len(names))), 0, 1).astype("float32")
        arrays[f"{split}/labels/true"] = truth
        arrays[f"{split}/index"] = np.arange(n)
    run.save_predictions(arrays)
    assert main(["thresholds", str(run.path), "--label-objective", "sex=balanced_accuracy",
                 "--objective", "macro_f1"]) == 0
    saved = ThresholdResult.load(run / "thresholds.json")
    assert saved.objectives == {name: ("balanced_accuracy" if name == "sex" else "macro_f1") for name in names}
    table = pd.read_csv(run / "metrics.csv")
    assert dict(zip(table["label"], table["objective"]))["sex"] == "balanced_accuracy"
    assert main(["thresholds", str(run.path), "--label-objective", "sex"]) == 2
