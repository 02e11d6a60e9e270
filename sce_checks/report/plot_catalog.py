"""The plots of the HTML report, declared: each is an entry of the ``sce_checks.plots`` entry point
group (sce_checks/registry.py), registered in pyproject.toml as a plot of another package is
(docs/writing-backends.md), and its function is imported when a report draws it. A check names
the plots drawn over its results (`CheckEntry.plots`). Light: no matplotlib here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sce_checks.registry import Entry


@dataclass(frozen=True)
class Plot:
    """One plot: ``figure`` (a matplotlib Figure), or None and ``omitted`` (why)."""

    name: str
    title: str
    figure: Any = None
    omitted: str | None = None


@dataclass(frozen=True, kw_only=True)
class PlotEntry(Entry):
    """The declaration of a plot. ``implementation``: ``"module:function"``, a function taking
    the results of one check and returning a list of `Plot` objects. ``references``: a
    compared baseline's results are drawn beside the run's (`sce-audit --baseline ... --html`).
    ``every_check``: drawn over the results of every check without being named by one; it
    returns nothing (not even a line saying why) where they carry nothing for it."""

    references: bool = False
    every_check: bool = False  # drawn over every check's results, named by no check (it draws what they all carry)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"plot {self.name!r}: its name must be an identifier")
        if not isinstance(self.implementation, str) or self.implementation.count(":") != 1:
            raise ValueError(f"plot {self.name!r}: implementation must be 'module:function', not {self.implementation!r}")


VALIDITY_MINIMALITY = PlotEntry(
    name="validity_minimality",
    description="validity (Wilson 95% interval) against minimality, one point per result and baseline result",
    implementation="sce_checks.report.plots:validity_minimality",
    references=True,
)
MINIMALITY_DISTRIBUTION = PlotEntry(
    name="minimality_distribution",
    description="ECDF of each valid SCE's gap to the minimum (RCF_A on grids, the searched minimal edit on text)",
    implementation="sce_checks.report.plots:minimality_distribution",
)
FEATURE_CHANGES = PlotEntry(
    name="feature_changes",
    description="how often each feature is changed by the SCEs and by the exact nearest flips x* (grid tasks)",
    implementation="sce_checks.report.plots:feature_changes",
)
TVD_MENTION = PlotEntry(
    name="tvd_mention",
    description="CCT: each intervention's TVD, split by whether the explanation mentions the inserted word",
    implementation="sce_checks.report.plots:tvd_mention",
)
PHI_TABLE = PlotEntry(
    name="phi_table",
    description="phi-CCT's 2x2 table: prediction changed x explanation mentions the inserted word",
    implementation="sce_checks.report.plots:phi_table",
)
SEQUENTIAL_GATES = PlotEntry(
    name="sequential_gates",
    description="--sequential: each gated figure's confidence sequence against its threshold over the examples audited",
    implementation="sce_checks.report.plots:sequential_gates",
    every_check=True,
)
