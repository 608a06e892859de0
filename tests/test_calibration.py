"""Expected calibration error against cases worked by hand, and the reliability diagrams in the report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from faces_keras.reports.calibration import (ECE_BINS, binary_calibration, calibration_frame,
                                             expected_calibration_error, multiclass_calibration,
                                             save_reliability)


def test_ece_of_a_hand_computed_case():
    # 10 bins. bin 0: 0.05 (outcome 0): |0.05 - 0| = 0.05, weight 1/7;
    # bin 1: 0.15, 0.15 (1, 0): |0.15 - 0.5| = 0.35, weight 2/7;
    # bin 9: 0.95 x 4 (1, 1, 1, 0): |0.95 - 0.75| = 0.2, weight 4/7.
    # ECE = (0.05 + 2 * 0.35 + 4 * 0.2) / 7 = 1.55 / 7
    confidence = [0.05, 0.15, 0.15, 0.95, 0.95, 0.95, 0.95]
    outcome = [0, 1, 0, 1, 1, 1, 0]
    assert ECE_BINS == 10
    assert expected_calibration_error(confidence, outcome) == pytest.approx(1.55 / 7)
    # Two bins instead: [0, 0.5) holds 0.05, 0.15, 0.15 (mean 0.11667, rate 1/3), [0.5, 1] the rest.
    two = (3 * abs(0.35 / 3 - 1 / 3) + 4 * abs(0.95 - 0.75)) / 7
    assert expected_calibration_error(confidence, outcome, bins=2) == pytest.approx(two)


def test_bin_edges_one_goes_in_the_last_bin_and_a_calibrated_set_scores_zero():
    # 0.1 opens bin 1 (|0.1 - 1| = 0.9, weight 1/2); 1.0 is in the last bin (|1 - 1| = 0).
    assert expected_calibration_error([0.1, 1.0], [1, 1]) == pytest.approx(0.45)
    assert expected_calibration_error([0.25] * 4 + [0.75] * 4, [1, 0, 0, 0, 1, 1, 1, 0]) == pytest.approx(0.0)
    assert np.isnan(expected_calibration_error([], []))


def test_binary_labels_leave_missing_truth_out():
    curve = binary_calibration(np.array([1, 0, -1, 1]), np.array([0.9, 0.9, 0.9, 0.3]), label="glasses")
    # bin 9: 0.9, 0.9 with truth 1, 0 -> |0.9 - 0.5| = 0.4, weight 2/3; bin 3: |0.3 - 1| = 0.7, weight 1/3
    assert curve.n == 3 and curve.ece == pytest.approx((2 * 0.4 + 0.7) / 3)
    assert curve.counts.tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0, 2]
    assert curve.observed[9] == pytest.approx(0.5) and np.isnan(curve.observed[0])


def test_multiclass_heads_use_the_top_label_confidence():
    prob = np.array([[0.7, 0.2, 0.1],   # top 0.7, class 0, truth 0: right
                     [0.6, 0.3, 0.1],   # top 0.6, class 0, truth 1: wrong
                     [0.2, 0.2, 0.6],   # top 0.6, class 2, truth 2: right
                     [0.1, 0.1, 0.8]])  # truth missing: left out
    curve = multiclass_calibration(np.array([0, 1, 2, -1]), prob, label="race")
    # bin 6: 0.6, 0.6 with accuracy 0.5 -> 0.1, weight 2/3; bin 7: 0.7 with accuracy 1 -> 0.3, weight 1/3
    assert curve.kind == "multiclass" and curve.n == 3
    assert curve.ece == pytest.approx((2 * 0.1 + 0.3) / 3)


def test_ece_matches_a_plain_loop_on_random_probabilities():
    rng = np.random.default_rng(0)
    prob = rng.random(1000)
    truth = (rng.random(1000) < prob ** 1.5).astype(int)
    total = 0.0
    for b in range(10):
        low, high = b / 10, (b + 1) / 10
        members = [i for i in range(1000) if low <= prob[i] < high or (b == 9 and prob[i] == 1.0)]
        if members:
            total += len(members) / 1000 * abs(np.mean(prob[members]) - np.mean(truth[members]))
    assert binary_calibration(truth, prob).ece == pytest.approx(total)


def test_reliability_png_and_the_report_show_each_label(tmp_path):
    from faces_keras.labels.schema import schema_from_dict
    from faces_keras.reports import ReportConfig, write_set_report

    schema = schema_from_dict({"name": "cal", "format": "delimited", "labels": {
        "smile": {"kind": "binary", "positive": "Y", "negative": "N"},
        "mood": {"kind": "multiclass", "classes": ["sad", "calm", "glad"], "codes": ["0", "1", "2"]}}})
    rng = np.random.default_rng(1)
    n = 120
    smile, mood = rng.integers(0, 2, n), rng.integers(0, 3, n)
    smile_prob = np.clip(0.3 + 0.4 * smile + rng.normal(0, 0.2, n), 0, 1)
    mood_prob = rng.dirichlet(np.ones(3), n)
    faces = pd.DataFrame({"id": [f"f{i}" for i in range(n)], "smile": smile, "mood": mood})
    result = write_set_report(tmp_path / "set", schema=schema, faces=faces, images=None,
                              probabilities={"labels": smile_prob[:, None], "mood": mood_prob},
                              thresholds={"smile": 0.5}, config=ReportConfig(color=False), title="calibration")
    expected = {"smile": expected_calibration_error(smile_prob, smile),
                "mood": expected_calibration_error(mood_prob.max(axis=1), mood_prob.argmax(axis=1) == mood)}
    assert {name: curve.ece for name, curve in result.calibration.items()} == pytest.approx(expected)
    assert result.reliability.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = result.html.read_text()
    for name, ece in expected.items():
        assert f'<figure class="reliability" data-label="{name}">' in page
        assert f'<tr data-label="{name}"><th>{name}</th><td>' in page and f"{ece:.3f}" in page
    assert f"expected calibration error: smile {expected['smile']:.3f}, mood {expected['mood']:.3f}" in \
        result.terminal
    frame = calibration_frame(result.calibration)
    assert frame["label"].tolist() == ["smile", "mood"] and frame["ece"].tolist() == pytest.approx(
        [expected["smile"], expected["mood"]])
    again = save_reliability(result.calibration, tmp_path / "again.png")
    assert again.stat().st_size > 1000


def test_metrics_tables_carry_the_ece_into_metrics_json():
    """binary_metrics and multiclass_metrics (what metrics.json holds) report the same ECE."""
    from faces_keras.reports.metrics import binary_metrics, multiclass_metrics

    table = binary_metrics(np.array([[1], [0], [-1], [1]]), np.array([[0.9], [0.9], [0.9], [0.3]]), ["glasses"])
    assert table.iloc[0]["ece"] == pytest.approx((2 * 0.4 + 0.7) / 3)
    prob = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.1, 0.1, 0.8]])
    assert multiclass_metrics(np.array([0, 1, 2, -1]), prob, ["a", "b", "c"])["ece"] == \
        pytest.approx((2 * 0.1 + 0.3) / 3)
