"""Regression testing after fine-tuning: save one run as a baseline, compare a later run (or saved
reports, ``sce-audit --compare``) against it, fail on real regressions (docs/regression.md).

* files.py: baseline files (schema versions, writing, reading and validating one, refusing a
  comparison on another sample or task definition before any model call);
* tolerances.py: what counts as a change (tolerances, rounding, the figures a gate may name);
* paired.py: the paired tests (exact McNemar, Wilcoxon signed-rank, Holm);
* planning.py: power and sample size of a paired gate (``--plan-sample-size``);
* changes.py: the examples whose outcomes moved;
* gate.py: the comparison itself (`compare_entries`, `compare_run`) and its report;
* saved.py: saved JSON reports read as data and compared with each other or with baselines.

Nothing here renders: report/comparison.py and report/changes.py lay the comparison out, and
this package imports nothing from report/.
"""
