"""pytest collection of ``*.sce.toml`` audit files: one item per (dataset, variant, threshold).
Items read their result from the session's shared computation, so an audit file with twenty
thresholds costs one audit per (dataset) — all variants are computed in one pass."""

from __future__ import annotations

import pytest

from sce_checks.errors import UserInputError


class AuditFileCollector(pytest.File):
    def collect(self):
        from sce_checks.auditfile import load_audit_file

        audit = load_audit_file(self.path)
        session = self.config.stash[_session_key()]
        if audit.baseline:
            session.add_audit_baseline(audit)
        for (dataset, variant), thresholds in audit.thresholds.items():
            for threshold in thresholds:
                yield ThresholdItem.from_parent(self, name=f"{audit.name(dataset)}/{variant}::{threshold}", audit=audit,
                                                dataset=dataset, variant=variant, threshold=threshold)

    def repr_failure(self, excinfo):
        if excinfo.errisinstance(UserInputError):
            return f"sce-checks: {excinfo.value}"
        return super().repr_failure(excinfo)


class ThresholdFailed(AssertionError):
    pass


class ThresholdItem(pytest.Item):
    def __init__(self, *, audit, dataset, variant, threshold, **kwargs):
        super().__init__(**kwargs)
        self.audit, self.dataset, self.variant, self.threshold = audit, dataset, variant, threshold

    def runtest(self) -> None:
        from sce_checks.assertions import _explain

        session = self.config.stash[_session_key()]
        settings = {"model": self.audit.model, "dataset": self.audit.datasets, "variant": self.audit.variants,
                    "limit": self.audit.limit, "seed": self.audit.seed, "prediction": self.audit.prediction}
        result = session.result(settings, dataset=self.dataset, variant=self.variant, node=self)
        actual = self.threshold.actual(result)
        self.user_properties.append((f"sce:{self.audit.name(self.dataset)}/{self.variant}:{self.threshold.metric}", actual))
        if not self.threshold.holds(result):
            shown = "undefined" if actual is None else f"{actual:.4f}"
            raise ThresholdFailed(_explain(result, f"{self.threshold} does not hold: {self.threshold.metric} = {shown}"))

    def repr_failure(self, excinfo, style=None):
        if excinfo.errisinstance((ThresholdFailed, UserInputError)):
            return str(excinfo.value)
        if excinfo.errisinstance(pytest.fail.Exception):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, ""


def _session_key():
    from sce_checks.plugin import SESSION_KEY

    return SESSION_KEY
