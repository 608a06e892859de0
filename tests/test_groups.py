"""Per-group metrics: every number recomputed here with scikit-learn and plain numpy on the same arrays.

The labels are hand-built (a schema written here, truth and model outputs drawn
with a seeded generator), so each group's size, score and interval is known
independently of the report code.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, recall_score

from faces_keras.labels.schema import schema_from_dict
from faces_keras.reports.groups import (BAND_EDGES, CI_LEVEL, MIN_GROUP_FACES, N_BOOTSTRAP, group_metrics,
                                        write_group_tables)
from faces_keras.reports.results import label_results

SCHEMA = schema_from_dict({
    "name": "groups-test", "format": "delimited",
    "labels": {
        "sex": {"kind": "binary", "positive": "M", "negative": "F", "names": ["F", "M"]},
        "glasses": {"kind": "binary", "positive": "Y", "negative": "N"},
        "race": {"kind": "multiclass", "classes": ["a", "b", "c"], "codes": ["0", "1", "2"]},
        "age_band": {"kind": "multiclass", "source": "age", "bands": [0, 30, 200], "classes": ["young", "old"]},
        "age": {"kind": "regression", "source": "age"},
    },
})


def random_set(n: int = 900, seed: int = 0):
    """Truth and model outputs per head for ``n`` faces, a few truths missing."""
    rng = np.random.default_rng(seed)
    sex = (rng.random(n) < 0.45).astype(int)
    glasses = (rng.random(n) < 0.3).astype(int)
    glasses[rng.random(n) < 0.05] = -1
    race = rng.integers(0, 3, n)
    race[rng.random(n) < 0.03] = -1
    age = np.round(rng.uniform(1, 85, n)).astype(float)
    age[rng.random(n) < 0.02] = np.nan
    age_band = np.where(np.isnan(age), -1, (age >= 30).astype(int))
    binary_true = np.stack([sex, glasses], axis=1)
    binary_prob = np.clip(0.5 + (binary_true - 0.5) * 0.5 + rng.normal(0, 0.25, binary_true.shape), 0, 1)
    race_prob = rng.dirichlet(np.ones(3), n)
    race_prob[np.arange(n), np.clip(race, 0, 2)] += 0.6 * (race >= 0)
    race_prob /= race_prob.sum(axis=1, keepdims=True)
    band_prob = rng.dirichlet(np.ones(2), n)
    truths = {"labels": binary_true, "race": race, "age_band": age_band, "age": age[:, None]}
    outputs = {"labels": binary_prob, "race": race_prob, "age_band": band_prob,
               "age": (np.nan_to_num(age) + rng.normal(0, 9, n))[:, None]}
    return label_results(SCHEMA, outputs, truths, {"sex": 0.5, "glasses": 0.45}, "test arrays")


def band_of(age: np.ndarray) -> np.ndarray:
    """The declared bands by hand (``<20``, ``20-<40``, ``40-<60``, ``>=60``), -1 where unknown."""
    assert BAND_EDGES == (20.0, 40.0, 60.0)
    out = np.full(age.shape, -1)
    out[age < 20] = 0
    out[(age >= 20) & (age < 40)] = 1
    out[(age >= 40) & (age < 60)] = 2
    out[age >= 60] = 3
    return out


def sklearn_score(kind: str, metric: str, truth: np.ndarray, predicted: np.ndarray) -> float:
    if metric == "accuracy":
        return accuracy_score(truth, predicted)
    if metric == "recall":
        return recall_score(truth, predicted, zero_division=np.nan)
    if metric == "f1":
        return f1_score(truth, predicted, zero_division=np.nan)
    if metric == "macro_f1":
        return f1_score(truth, predicted, average="macro", zero_division=0)
    return mean_absolute_error(truth, predicted)


def test_every_group_score_matches_sklearn_on_the_same_faces():
    labels = random_set()
    report = group_metrics(labels)
    by_name = {r.name: r for r in labels}
    groups = {}
    for r in labels:
        if r.kind == "regression":
            groups[r.name] = (band_of(r.truth), ["<20", "20-<40", "40-<60", ">=60"])
        else:
            groups[r.name] = (r.truth.astype(int), r.value_names)
    pairs = {(row.label, row.by) for row in report.by_group.itertuples()}
    expected_pairs = {(a, b) for a in by_name for b in by_name if a != b and {a, b} != {"age", "age_band"}}
    assert pairs == expected_pairs  # every other label, except one read from the same source
    checked = 0
    for row in report.by_group.itertuples():
        target = by_name[row.label]
        codes, names = groups[row.by]
        mask = target.labelled & (codes == names.index(row.group))
        assert row.n == int(mask.sum())
        truth, predicted = target.truth[mask], target.predicted[mask]
        support = {"recall": int(np.sum(truth == 1)), "f1": int(np.sum((truth == 1) | (predicted == 1)))}
        assert row.support == (support[row.metric] if target.kind == "binary" and row.metric in support
                               else int(mask.sum()))
        expected = sklearn_score(target.kind, row.metric, target.truth[mask], target.predicted[mask])
        if np.isnan(expected):
            assert np.isnan(row.value)
        else:
            assert row.value == pytest.approx(expected, abs=1e-12), row
            assert row.low <= row.value + 1e-9 and row.value <= row.high + 1e-9
        checked += 1
    assert checked == len(report.by_group) > 60


def test_intervals_agree_with_an_independent_bootstrap():
    """A plain numpy percentile bootstrap of each group, with its own generator, lands near the report's."""
    labels = random_set(seed=3)
    report = group_metrics(labels)
    sex, glasses = labels[0], labels[1]
    rng = np.random.default_rng(12345)
    for value, name in enumerate(glasses.value_names):
        members = np.flatnonzero(sex.labelled & (glasses.truth == value))
        draws = rng.integers(0, members.size, (2000, members.size))
        right = (sex.truth == sex.predicted)[members][draws].mean(axis=1)
        tail = (1 - CI_LEVEL) / 2 * 100
        low, high = np.percentile(right, [tail, 100 - tail])
        row = report.by_group.query("label == 'sex' and by == 'glasses' and metric == 'accuracy' "
                                    "and group == @name").iloc[0]
        width = high - low
        assert abs(row.low - low) < 0.2 * width and abs(row.high - high) < 0.2 * width, (row, low, high)


def planted_set(worse: float, n_per_group: int = 400, seed: int = 0):
    """sex right on 92% of the faces without glasses and on ``worse`` of the faces with them (exact counts)."""
    rng = np.random.default_rng(seed)
    n = 2 * n_per_group
    glasses = np.repeat([0, 1], n_per_group)
    sex = rng.integers(0, 2, n)
    right = np.zeros(n, dtype=bool)
    for group, share in ((0, 0.92), (1, worse)):
        members = np.flatnonzero(glasses == group)
        right[rng.choice(members, int(round(share * n_per_group)), replace=False)] = True
    predicted = np.where(right, sex, 1 - sex)
    prob = np.stack([np.where(predicted == 1, 0.8, 0.2), np.full(n, 0.3)], axis=1)
    schema = SCHEMA.select(["sex", "glasses"])
    return label_results(schema, {"labels": prob}, {"labels": np.stack([sex, glasses], axis=1)},
                         {"sex": 0.5, "glasses": 0.5}, "planted")


def test_a_clearly_worse_group_is_flagged():
    report = group_metrics(planted_set(worse=0.70))
    gap = report.gaps.query("label == 'sex' and by == 'glasses' and metric == 'accuracy'").iloc[0]
    assert gap.flagged and gap.worst == "yes" and gap.best == "no"
    assert gap.gap == pytest.approx(0.22) and gap.low > 0
    flagged = report.flagged
    assert ("sex", "glasses", "accuracy") in set(zip(flagged.label, flagged.by, flagged.metric))
    assert any("sex accuracy by glasses: yes 0.700 vs no 0.920" in line for line in report.summary_lines())


def test_equal_groups_are_not_flagged():
    report = group_metrics(planted_set(worse=0.92))
    gap = report.gaps.query("label == 'sex' and by == 'glasses' and metric == 'accuracy'").iloc[0]
    assert gap.gap == pytest.approx(0.0) and gap.low < 0 < gap.high and not gap.flagged


def test_groups_under_the_minimum_are_listed_but_not_compared():
    """19 faces with glasses, every one wrong, against 400 right: too few to compare, so no flag."""
    small = MIN_GROUP_FACES - 1
    glasses = np.repeat([0, 1], [400, small])
    sex = np.arange(glasses.size) % 2
    predicted = np.where(glasses == 1, 1 - sex, sex)
    prob = np.stack([np.where(predicted == 1, 0.9, 0.1), np.full(glasses.size, 0.3)], axis=1)
    labels = label_results(SCHEMA.select(["sex", "glasses"]), {"labels": prob},
                           {"labels": np.stack([sex, glasses], axis=1)}, {"sex": 0.5, "glasses": 0.5}, "small")
    report = group_metrics(labels)
    rows = report.by_group.query("label == 'sex' and by == 'glasses' and metric == 'accuracy'")
    assert sorted(zip(rows.n, rows.value)) == [(small, 0.0), (400, 1.0)]
    gap = report.gaps.query("label == 'sex' and by == 'glasses' and metric == 'accuracy'").iloc[0]
    assert gap.groups == 1 and not gap.flagged and np.isnan(gap.gap)


def test_recall_on_few_positives_is_not_compared_however_large_the_group():
    """400 faces each; with glasses only 10 are positive (all missed): recall is listed, not compared."""
    glasses = np.repeat([0, 1], 400)
    sex = np.zeros(800, dtype=int)
    sex[:200] = 1  # 200 positives without glasses
    sex[400:410] = 1  # 10 with glasses
    predicted = sex.copy()
    predicted[400:410] = 0  # every positive with glasses missed
    prob = np.stack([np.where(predicted == 1, 0.9, 0.1), np.full(800, 0.3)], axis=1)
    labels = label_results(SCHEMA.select(["sex", "glasses"]), {"labels": prob},
                           {"labels": np.stack([sex, glasses], axis=1)}, {"sex": 0.5, "glasses": 0.5}, "few")
    report = group_metrics(labels)
    recall = report.by_group.query("label == 'sex' and by == 'glasses' and metric == 'recall'")
    assert sorted(zip(recall.group, recall.n, recall.support, recall.value)) == \
        [("no", 400, 200, 1.0), ("yes", 400, 10, 0.0)]
    gaps = report.gaps.query("label == 'sex' and by == 'glasses'").set_index("metric")
    assert gaps.loc["recall", "groups"] == 1 and not gaps.loc["recall", "flagged"]
    assert gaps.loc["accuracy", "groups"] == 2


def test_seeded_and_written_as_csv_and_markdown(tmp_path):
    labels = random_set(n=300, seed=5)
    first, again, other = group_metrics(labels), group_metrics(labels), group_metrics(labels, seed=1)
    pd.testing.assert_frame_equal(first.by_group, again.by_group)
    assert not np.allclose(first.by_group["low"], other.by_group["low"], equal_nan=True)
    assert first.n_boot == N_BOOTSTRAP
    csv, md = write_group_tables(first, tmp_path / "groups.csv", tmp_path / "groups.md")
    table = pd.read_csv(csv, keep_default_na=False, na_values=[""])
    assert len(table) == len(first.by_group)
    assert set(table["role"].fillna("")) <= {"best", "worst", ""}
    text = md.read_text()
    assert text.startswith("# Per-group metrics") and "## Gaps beyond the noise" in text
    flagged = int(((first.flagged.label == "sex") & (first.flagged.by == "glasses")
                   & (first.flagged.metric == "accuracy")).sum())
    # the comparison (twice when flagged) and the two groups
    assert text.count("\n| sex | accuracy | glasses |") == 1 + flagged + 2


@pytest.mark.parametrize("worse, flagged", [(0.70, True), (0.92, False)])
def test_the_report_page_flags_the_worse_group(tmp_path, worse, flagged):
    from faces_keras.reports import ReportConfig, write_set_report

    sex, glasses = planted_set(worse)
    faces = pd.DataFrame({"id": [str(i) for i in range(len(sex.truth))], "sex": sex.truth, "glasses": glasses.truth})
    prob = np.stack([sex.prob, glasses.prob], axis=1)
    result = write_set_report(tmp_path / "set", schema=SCHEMA.select(["sex", "glasses"]), faces=faces,
                              images=None, probabilities={"labels": prob},
                              thresholds={"sex": 0.5, "glasses": 0.5}, config=ReportConfig(per_class=1),
                              title="planted")
    page = result.html.read_text()
    row = re.search(r'<tr class="group-row" data-target="sex" data-by="glasses" data-group="yes">(.*?)</tr>', page)
    cell = re.search(r'<td class="([^"]*)" data-score="accuracy" title="400 faces counted">([0-9.]+) ', row.group(1))
    assert float(cell.group(2)) == pytest.approx(worse, abs=5e-4)
    assert ("flagged" in cell.group(1).split()) is flagged
    assert ('class="gap-flag" data-label="sex" data-by="glasses" data-metric="accuracy"' in page) is flagged
    assert any("sex accuracy by glasses" in line for line in result.terminal_plain.splitlines()) is flagged
    table = pd.read_csv(result.groups_csv)
    worst = table.query("label == 'sex' and by == 'glasses' and metric == 'accuracy' and group == 'yes'").iloc[0]
    assert bool(worst.flagged) is flagged
    if flagged:
        assert worst.role == "worst"
