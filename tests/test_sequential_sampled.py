"""``--sequential`` on sampled audits (``--temperature T --samples K``; docs/sequential.md,
"Sampled audits"): the unit of every confidence sequence is the example, not the sample. A gate
on a pooled figure (validity: valid SCEs over generated SCEs, over all samples) is a
`ClusteredGate` on each example's (sum, count), which gates that pooled figure and not the mean
of per-example shares; a baseline comparison pairs each example's mean over its samples as a
bounded difference. Models: the 200-point grid of tests/helpers/sequential_models.py, each
sample's SCE valid with a chosen probability, drawn with the seed it is handed."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest

from sce_checks.cli import main
from sce_checks.metrics.sequential import ClusteredGate, SequentialGate, gate_paths, pooled_values
from tests.helpers.projects import model_project
from tests.helpers.sequential_models import BIG_TOML

LIMIT = 160

MODELS = textwrap.dedent(
    """
    import json

    from tests.helpers.rule_models import POLICIES, read_record
    from tests.helpers.sampling_models import SampledToyModel, _example_coin, _rng
    from tests.helpers.sequential_models import BIG, big_rule


    class RateSampled(SampledToyModel):
        '''Answers by the rule; each sampled SCE valid (the nearest flip) with probability p, else
        one step short; ``agree``: every sample of a record makes the record's fixed choice.'''

        def __init__(self, name, p, agree=False):
            super().__init__(agree=agree, task=BIG, rule=big_rule)
            self.name, self.p = name, p

        def identity(self):
            return {"backend": "python", "model": f"rate-sampled/{self.name}"}

        def chat(self, conversations, decoding):
            self.calls += 1
            out = []
            for conv in conversations:
                rng = _rng(decoding, conv)
                x = read_record(self.task, conv[0]["content"])
                if len(conv) == 1:
                    out.append(json.dumps({"answer": self.rule(x)}))
                    continue
                valid = rng is None or (_example_coin(x) if self.agree else rng.random() < self.p)
                cf = POLICIES["boundary" if valid else "short"](self.task, self.rule, x)
                out.append(json.dumps(self.task.as_dict(cf)))
            return out


    sure = RateSampled("sure", 0.95)
    never = RateSampled("never", 0.05)
    agree = RateSampled("agree", 0.5, agree=True)
    """
)


@pytest.fixture
def sampled_big(tmp_path, monkeypatch):
    with model_project(tmp_path, monkeypatch, {"big.toml": BIG_TOML, "sampled_big.py": MODELS}, "sampled_big") as d:
        yield d


def audit(model: str, *args: str, samples: int = 3, report: str = "r.json") -> tuple[int, dict]:
    code = main(["--model", f"python:sampled_big:{model}", "--dataset", "big.toml", "--limit", str(LIMIT),
                 "--batch-size", "8", "--variant", "minimal", "--prediction", "generate", "--temperature", "1",
                 "--samples", str(samples), "--json", report, "-q", *args])
    return code, json.loads(open(report).read())


def block(report: dict) -> dict:
    (result,) = report["results"]
    return result["sequential"]


def conversations(report: dict) -> int:
    return report["environment"]["model_calls"]["chat_conversations"]


# -- the gate, on numbers ---------------------------------------------------------------------------

def _feed(gate, sums, counts, batch=8):
    for start in range(0, len(sums), batch):
        gate.update(sums[start:start + batch], counts[start:start + batch])
    return gate


def test_the_gate_decides_the_pooled_figure_not_the_mean_of_per_example_shares():
    """Half the examples generate 1 SCE, valid; half generate 4, none valid: the pooled validity
    (what the report shows) is 1/5, the mean of per-example shares 1/2. ``validity>=0.3`` must
    fail, where a sequence on the shares passes it."""
    sums, counts = [1.0, 0.0] * 80, [1, 4] * 80
    gate = _feed(ClusteredGate("binary", ">=", 0.3, samples=4, horizon=LIMIT), sums, counts)
    assert gate.state() == "fail" and gate.n == LIMIT
    lower, upper = gate.interval()
    assert lower <= 0.2 <= upper < 0.3
    shares = SequentialGate("mean", ">=", 0.3, horizon=LIMIT)
    for start in range(0, LIMIT, 8):
        shares.update([s / c for s, c in zip(sums[start:start + 8], counts[start:start + 8])])
    assert shares.state() == "pass"  # the figure it would have gated instead: 0.5


def test_with_every_sample_counted_it_is_the_bounded_mean_sequence_of_the_shares():
    """Each example counts all K samples: the values fed are the shares, the sequence exactly
    the bounded-mean one (and with K = 1, the binary gate on the outcomes)."""
    rng = np.random.default_rng(3)
    sums = rng.binomial(4, rng.uniform(0.3, 1.0, LIMIT)).astype(float)
    clustered = _feed(ClusteredGate("binary", ">=", 0.5, samples=4, horizon=LIMIT), sums, [4] * LIMIT)
    plain = SequentialGate("mean", ">=", 0.5, horizon=LIMIT)
    for start in range(0, LIMIT, 8):
        plain.update(sums[start:start + 8] / 4)
    assert clustered.history == plain.history and clustered.state() == plain.state() == "pass"
    ones = (sums > 2).astype(float)
    single = _feed(ClusteredGate("binary", ">=", 0.5, samples=1, horizon=LIMIT), ones, [1] * LIMIT)
    binary = SequentialGate("binary", ">=", 0.5, horizon=LIMIT)
    for start in range(0, LIMIT, 8):
        binary.update(ones[start:start + 8])
    assert single.history == binary.history and single.state() == binary.state()


def test_samples_that_agree_count_once_not_k_times():
    """K copies of one outcome per example decide when one copy does; the same copies fed as
    K independent values would decide about K times sooner (the error the unit guards against)."""
    outcomes = np.tile([1.0, 1.0, 1.0, 0.0], LIMIT // 4)  # rate 0.75 against a gate at 0.5
    one = _feed(ClusteredGate("binary", ">=", 0.5, samples=1, horizon=LIMIT), outcomes, [1] * LIMIT)
    four = _feed(ClusteredGate("binary", ">=", 0.5, samples=4, horizon=LIMIT), 4 * outcomes, [4] * LIMIT)
    decided = [next(n for n, lo, _ in g.history if lo > 0.5) for g in (one, four)]
    assert decided[0] == decided[1] and one.history == four.history
    flat = SequentialGate("binary", ">=", 0.5, horizon=LIMIT)
    for start in range(0, LIMIT, 8):
        flat.update(np.repeat(outcomes[start:start + 8], 4))
        if flat.state() != "undecided":
            break
    assert flat.state() == "pass" and (start + 8) * 2 <= decided[0]


def test_the_false_pass_rate_at_the_threshold_stays_at_alpha_with_unequal_counts():
    """Examples with 1 or 4 generated SCEs (half each): 90% of the single ones valid, 40% of the
    others' samples, so the pooled validity E[valid] / E[generated] is exactly 0.5 while the mean of
    per-example shares is 0.65. The pooled gate ``>= 0.5`` passes at most alpha of the runs (plus
    simulation noise); the shares would pass most of them."""
    rng = np.random.default_rng(11)
    runs = 1000
    counts = np.where(rng.random((runs, LIMIT)) < 0.5, 1, 4)
    sums = np.where(counts == 1, rng.random((runs, LIMIT)) < 0.9, rng.binomial(4, 0.4, (runs, LIMIT))).astype(float)
    assert abs(sums.sum() / counts.sum() - 0.5) < 0.01
    pooled = gate_paths(pooled_values(sums, counts, 4, 0.5), ">=", 0.5, 0.05, batch=8)
    assert np.mean(pooled.state == "pass") <= 0.05 + 3 * (0.05 * 0.95 / runs) ** 0.5
    shares = gate_paths(sums / counts, ">=", 0.5, 0.05, batch=8)
    assert np.mean(shares.state == "pass") > 0.5


def test_a_count_outside_the_samples_is_refused_in_one_line():
    from sce_checks.errors import UserInputError

    gate = ClusteredGate("binary", ">=", 0.5, samples=3)
    for sums, counts in [([1.0], [4]), ([2.0], [1]), ([1.0], [0]), ([1.0, 1.0], [1])]:
        with pytest.raises(UserInputError, match="clustered gate: each example needs a count in 1..3"):
            gate.update(sums, counts)
    with pytest.raises(UserInputError, match="samples must be a positive number"):
        ClusteredGate("binary", ">=", 0.5, samples=0)


# -- sampled audits end to end -----------------------------------------------------------------------

@pytest.mark.parametrize("model, code, state", [("sure", 0, "pass"), ("never", 1, "fail")])
def test_a_clear_sampled_gate_stops_in_the_first_half_with_fewer_model_calls(sampled_big, model, code, state):
    fixed_code, fixed = audit(model, "--no-cache", "--threshold", "validity>=0.5", report="fixed.json")
    got, report = audit(model, "--sequential", "--no-cache", "--threshold", "validity>=0.5")
    assert (fixed_code, got) == (code, code)
    seq = block(report)
    assert seq["decided"] and seq["stopped_after"] <= LIMIT // 2
    (gate,) = seq["gates"]
    assert gate["state"] == state and gate["samples"] == 3 and gate["decided_at"] == seq["stopped_after"]
    assert [n for n, _, _ in gate["history"]] == list(range(8, seq["stopped_after"] + 1, 8))  # examples, not samples
    (result,) = report["results"]
    assert result["n"] == 3 * seq["stopped_after"] and len(result["per_example"]) == seq["stopped_after"]
    lower, upper = gate["history"][-1][1:]
    assert lower <= result["validity"] <= upper  # the sequence is of the pooled figure the report shows
    assert conversations(report) < conversations(fixed)


def test_samples_that_agree_stop_where_one_sample_does(sampled_big):
    """Every sample of an example makes the same choice (half the examples valid): K = 4 stops at
    the example K = 1 stops at, with the same sequence, not four times sooner."""
    _, one = audit("agree", "--sequential", "--threshold", "validity>=0.3", samples=1, report="one.json")
    _, four = audit("agree", "--sequential", "--threshold", "validity>=0.3", samples=4, report="four.json")
    assert block(one)["decided"] and block(one)["stopped_after"] < LIMIT
    assert block(four)["stopped_after"] == block(one)["stopped_after"]
    assert block(four)["gates"][0]["history"] == block(one)["gates"][0]["history"]
    assert four["results"][0]["n"] == 4 * one["results"][0]["n"]


@pytest.fixture
def sampled_base(sampled_big):
    assert audit("sure", "--save-baseline", "base.json")[0] == 0
    return sampled_big


def against(model: str, tolerance: str, samples: int = 3, report: str = "b.json") -> tuple[int, dict]:
    return audit(model, "--sequential", "--baseline", "base.json", "--baseline-metric", "validity", "--tolerance",
                 tolerance, samples=samples, report=report)


def validity_row(report: dict) -> dict:
    return {row["metric"]: row for row in report["baseline"][0]["rows"]}["validity"]


def test_a_sampled_baseline_comparison_is_decided_sequentially_on_example_means(sampled_base, capsys):
    code, report = against("never", "0.1")
    assert code == 1
    seq, row = block(report), validity_row(report)
    (comparison,) = seq["baseline"]
    assert comparison["kind"] == "continuous" and comparison["state"] == "fail"
    assert seq["decided"] and seq["stopped_after"] <= LIMIT // 2 and comparison["n"] == seq["stopped_after"]
    assert row["regressed"] and row["decided_by"] == "sequential"
    base = json.loads((sampled_base / "base.json").read_text())["entries"]["sce/big/minimal"]["examples"]
    now = {e["id"]: e for e in report["results"][0]["per_example"]}
    changes = [now[i]["share_valid"] - base[i]["outcomes"]["valid"] for i in now]
    assert comparison["mean_change"] == pytest.approx(sum(changes) / len(changes))  # per-example means, paired
    assert "REGRESSED: sce/big/minimal validity" in capsys.readouterr().out
    code, report = against("sure", "0.2", report="same.json")
    assert code == 0 and block(report)["baseline"][0]["state"] == "pass" and block(report)["stopped_after"] <= LIMIT // 2
    assert validity_row(report)["decided_by"] == "sequential" and not validity_row(report)["regressed"]


def test_a_one_sample_run_against_a_sampled_baseline_is_compared_not_refused(sampled_base):
    """The baseline holds shares over 3 samples, the run one sample per example: the pairs are
    bounded differences (it used to stop the run: "binary outcomes must be 0 or 1")."""
    code, report = against("never", "0.1", samples=1)
    assert code == 1
    (comparison,) = block(report)["baseline"]
    assert comparison["kind"] == "continuous" and comparison["state"] == "fail"
    assert block(report)["stopped_after"] <= LIMIT // 2


def test_a_figure_no_sequence_can_gate_is_still_refused_in_one_line(sampled_big, capsys):
    code = main(["--model", "python:sampled_big:sure", "--dataset", "big.toml", "--temperature", "1", "--samples", "3",
                 "--sequential", "--threshold", "median_rcf<=0.1", "--prediction", "generate", "-q"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--sequential cannot gate median_rcf<=0.1 on sce" in err[0]
    assert "sampled_big" not in sys.modules or sys.modules["sampled_big"].sure.calls == 0
