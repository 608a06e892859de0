"""Reports: what a model got right and wrong on a labelled set, face by face, and how evenly.

The public entry points (none prints; each returns a result object):

* :func:`write_report` -- the report of a run's ``val`` or ``test`` split;
* :func:`write_set_report` -- the report of any labelled set a model scored;
* :class:`ReportConfig` / :class:`ReportResult` -- their settings and what they wrote;
* :func:`load_report_data` -- the data every renderer reads, for notebooks;
* :func:`group_metrics` -- per-group metrics with bootstrap intervals and flagged gaps;
* :func:`expected_calibration_error` / :func:`calibration_curves` -- calibration.

Inside, the modules keep one direction: :mod:`.metrics` and :mod:`.calibration`
(array functions) <- :mod:`.results` (the data model) <- :mod:`.groups`,
:mod:`.load`, :mod:`.terminal`, :mod:`.gallery`, :mod:`.html` (renderers) <-
:mod:`.report` (orchestration). Nothing here imports Keras.
"""

from faces_keras.reports.calibration import (ECE_BINS, ReliabilityCurve, calibration_curves,
                                             expected_calibration_error)
from faces_keras.reports.groups import GroupReport, group_metrics
from faces_keras.reports.load import load_report_data
from faces_keras.reports.report import ReportConfig, ReportResult, write_report, write_set_report
from faces_keras.reports.results import LabelResult, ReportData, ReportError

__all__ = [
    "ReportConfig", "ReportResult", "write_report", "write_set_report", "load_report_data", "ReportData",
    "LabelResult", "ReportError", "GroupReport", "group_metrics", "ECE_BINS", "ReliabilityCurve",
    "calibration_curves", "expected_calibration_error",
]
