"""pytest items for declarative audits: ``*.sce.toml`` files, and ``--sce-run`` (the audit the
``--sce-*`` options describe, which is what ``sce-audit`` runs). One item per (dataset, unit,
threshold), or one per (dataset, unit) when no threshold applies; a unit is an SCE variant or
another check (sce_checks/checks/__init__.py). Items read their result from the session's shared
computation, so twenty thresholds cost one audit per dataset: all SCE variants are computed in
one pass, ct / cct / phi_cct from one set of interventions. A check that cannot run on a task or
backend skips its items with the reason."""

from __future__ import annotations

import pytest

from sce_checks.assertions import judge
from sce_checks.audit import run_audit
from sce_checks.auditfile import AuditFile, load_audit_file
from sce_checks.checks import units
from sce_checks.errors import UserInputError
from sce_checks.session import session_of
from sce_checks.thresholds import Threshold


class _SceFile(pytest.File):
    """A file of sce-checks items: bad input in it is one line, not a traceback."""

    def repr_failure(self, excinfo):
        if excinfo.errisinstance(UserInputError):
            return f"sce-checks: {excinfo.value}"
        return super().repr_failure(excinfo)


class AuditFileCollector(_SceFile):
    def collect(self):
        audit = load_audit_file(self.path)
        session = session_of(self.config)
        if audit.baseline:
            session.add_audit_baseline(audit)
        yield from audit_items(self, audit)


class RunCollector(_SceFile):
    """``--sce-run`` with ``--sce-spec FILE`` given as a path to collect (what ``sce-audit``
    does): the specification's items are collected here, in pytest's collection phase, so its
    header counts them. Without the path they are added after collection (`run_items`)."""

    def collect(self):
        yield from run_items(self.session, parent=self)


class ThresholdFailed(AssertionError):
    pass


def audit_items(parent, audit, prefix: str | None = None):
    """Items of an audit; with ``prefix`` (the session as parent) the node ids start with it."""
    for (dataset, unit), thresholds in audit.thresholds.items():
        for threshold in thresholds or [None]:
            name = f"{audit.name(dataset)}/{unit}::{threshold or 'audit'}"
            nodeid = {"nodeid": f"{prefix}::{name}"} if prefix else {}
            item = ThresholdItem.from_parent(parent, name=name, audit=audit, dataset=dataset, unit=unit,
                                             threshold=threshold, **nodeid)
            reason = audit.xfails.get((dataset, unit, str(threshold)))
            if reason:
                item.add_marker(pytest.mark.xfail(reason=reason, strict=True, raises=ThresholdFailed))
            yield item


def run_items(session: pytest.Session, parent=None) -> list:
    """``--sce-run``: the audit of the run specification (relative dataset paths are relative to
    the working directory), its thresholds from ``--sce-threshold`` (checked against the run's
    checks and their figures with the rest of the specification: sce_checks/preflight.py)."""

    spec = session_of(session.config).spec
    thresholds = [Threshold.parse(t, "--sce-threshold") for t in spec.thresholds]
    run_units = units(spec.checks, spec.variants)
    audit = AuditFile(path=session.path, spec=spec,
                      thresholds={(d, u): [t for t in thresholds if t.applies_to(u)] for d in spec.datasets for u in run_units})
    return list(audit_items(parent or session, audit, prefix="sce-run"))


class ThresholdItem(pytest.Item):
    """Passes when its threshold holds on the shared result (no threshold: when the audit runs)."""

    def __init__(self, *, audit, dataset, unit, threshold, **kwargs):
        super().__init__(**kwargs)
        self.audit, self.dataset, self.unit, self.threshold = audit, dataset, unit, threshold

    def runtest(self) -> None:
        session = session_of(self.config)
        spec = self.audit.over(session.spec)
        if spec.sequential:  # the audit of this dataset stops when the gates of all its items are decided
            spec = self.audit.sequential_spec(spec, self.dataset)
        result = session.result(spec, dataset=self.dataset, unit=self.unit, node=self, run_audit=run_audit)
        if self.threshold is None:
            return
        try:
            actual, failure = judge(result, self.threshold, expected_failure=self.get_closest_marker("xfail") is not None)
        except UserInputError as exc:  # a declared figure this task does not report (a grid figure on text)
            session.fail_input(exc)
        self.user_properties.append((f"sce:{self.audit.name(self.dataset)}/{self.unit}:{self.threshold.metric}", actual))
        if failure:
            raise ThresholdFailed(failure)

    def repr_failure(self, excinfo, style=None):
        if excinfo.errisinstance((ThresholdFailed, UserInputError)):
            return str(excinfo.value)
        if excinfo.errisinstance(pytest.fail.Exception):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, ""
