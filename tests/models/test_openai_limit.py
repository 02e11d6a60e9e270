"""``--concurrency N`` is a limit per server over every process that shares the cache directory
(sce_checks/models/slots.py): pytest-xdist workers, or audits started side by side, never have
more than N requests in flight to one base URL together. Checked against a server that counts
the requests it is answering at once (tests/openai_server.py), not by timing anything."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sce_checks.models import Decoding
from sce_checks.models.openai import OpenAIChatModel
from sce_checks.models.slots import server_slots
from tests.openai_server import FakeOpenAIServer

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="file locks: fcntl")


def echo(messages, body):
    return "echo: " + messages[-1]["content"]


def conv(text):
    return [{"role": "user", "content": text}]


# A worker process: says it is ready, waits for the go file, then sends its batch.
WORKER = """
import sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from sce_checks.models import Decoding
from sce_checks.models.openai import OpenAIChatModel
model = OpenAIChatModel("m", {url!r}, max_concurrency={limit}, timeout_s=20, slots_dir={slots!r})
Path({ready!r}).write_text("ready")
while not Path({go!r}).exists():
    time.sleep(0.01)
texts = ["worker {k} message %d" % i for i in range({n})]
replies = model.chat([[{{"role": "user", "content": t}}] for t in texts], Decoding())
assert replies == ["echo: " + t for t in texts], replies
"""


def run_workers(tmp_path: Path, url: str, limit: int, workers: int, n: int, shared: bool) -> None:
    """``workers`` processes, each with a model of concurrency ``limit`` sending ``n`` requests,
    released together; with ``shared`` they use one slots directory, else one each."""
    go = tmp_path / "go"
    procs, ready = [], []
    for k in range(workers):
        slots = tmp_path / ("slots" if shared else f"slots-{k}")
        ready.append(tmp_path / f"ready-{k}")
        code = WORKER.format(repo=str(REPO), url=url, limit=limit, slots=str(slots), ready=str(ready[-1]),
                             go=str(go), k=k, n=n)
        procs.append(subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO)}))
    deadline = time.monotonic() + 60
    while not all(r.exists() for r in ready):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a worker did not start"
        time.sleep(0.02)
    go.write_text("go")
    assert [p.wait(timeout=120) for p in procs] == [0] * workers


def test_processes_sharing_the_cache_dir_stay_within_the_limit(tmp_path):
    with FakeOpenAIServer(echo, latency_s=0.1) as server:
        run_workers(tmp_path, server.url, limit=4, workers=3, n=16, shared=True)
        assert len(server.requests) == 48
        assert server.max_in_flight <= 4
        assert server.max_in_flight >= 2  # the processes did overlap: the limit, not luck, held them


def test_without_the_shared_slots_the_same_processes_exceed_it(tmp_path):
    """The control: one slots directory per process (a per-process limit) lets 3 x 4 through,
    so the test above can fail."""
    with FakeOpenAIServer(echo, latency_s=0.1) as server:
        run_workers(tmp_path, server.url, limit=4, workers=3, n=16, shared=False)
        assert server.max_in_flight > 4


def test_two_models_in_one_process_share_the_limit(tmp_path):
    with FakeOpenAIServer(echo, latency_s=0.05) as server:
        models = [OpenAIChatModel("m", server.url, max_concurrency=3, timeout_s=10, slots_dir=tmp_path) for _ in range(2)]
        errors: list[BaseException] = []

        def send(model, k):
            try:
                texts = [f"{k}-{i}" for i in range(12)]
                assert model.chat([conv(t) for t in texts], Decoding()) == [f"echo: {t}" for t in texts]
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=send, args=(m, k)) for k, m in enumerate(models)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert 2 <= server.max_in_flight <= 3
        assert server_slots(server.url, tmp_path).held == 0  # every slot given back


def test_slots_are_keyed_by_url_and_released_on_failure(tmp_path):
    with FakeOpenAIServer(echo) as server:
        server.faults.extend(["401"])
        model = OpenAIChatModel("m", server.url, max_concurrency=2, timeout_s=5, max_retries=0, slots_dir=tmp_path)
        with pytest.raises(Exception, match="401"):
            model.chat([conv("a")], Decoding())
        pool = server_slots(server.url, tmp_path)
        assert pool.shared and pool.held == 0
        other = server_slots(server.url + "/other", tmp_path)
        assert other is not pool and other.shared  # its own folder, made when first needed
        folders = {(f / "url").read_text().strip(): sorted(p.name for p in f.iterdir()) for f in (tmp_path / "slots").iterdir()}
        assert set(folders) == {server.url, server.url + "/other"}
        assert len(folders[server.url]) == 2 and folders[server.url][0] in ("0.lock", "1.lock")  # a slot below 2


def test_a_process_without_a_usable_directory_limits_itself(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with FakeOpenAIServer(echo, latency_s=0.05) as server:
        model = OpenAIChatModel("m", server.url, max_concurrency=2, timeout_s=5, slots_dir=blocker)
        assert not server_slots(server.url, blocker).shared
        texts = [str(i) for i in range(8)]
        assert model.chat([conv(t) for t in texts], Decoding()) == [f"echo: {t}" for t in texts]
        assert server.max_in_flight <= 2


def test_a_ring_step_of_the_grid_search_fills_every_slot_of_a_wide_server():
    from sce_checks.checks.sce import SEARCH_MIN_BATCH, search_batch
    from sce_checks.models.cache import CachedModel

    wide = OpenAIChatModel("m", "http://127.0.0.1:9/v1", max_concurrency=64, slots_dir=None)
    assert search_batch(wide) == search_batch(CachedModel(wide, None)) == 64
    narrow = OpenAIChatModel("m", "http://127.0.0.1:9/v1", max_concurrency=4, slots_dir=None)
    assert search_batch(narrow) == SEARCH_MIN_BATCH == search_batch(object())


def test_sce_audit_with_xdist_workers_stays_within_the_limit(workdir):
    """The user's path: ``sce-audit -n 2 --concurrency 2`` against one server. The two workers
    audit one variant each at the same time; the server never has more than 2 requests."""
    from sce_checks.cli import main
    from tests.helpers.rule_models import TOY, RuleModel, toy_rule

    rule = RuleModel(TOY, toy_rule, "far")
    with FakeOpenAIServer(lambda messages, body: rule.chat([messages], None)[0], latency_s=0.05) as server:
        code = main(["--model", f"openai:toy-rule@{server.url}", "--dataset", "toy.toml", "--limit", "12",
                     "--prediction", "generate", "--no-cache", "--concurrency", "2", "-n", "2", "-q",
                     "--json", "r.json"])
        assert code == 0
        assert len(server.requests) > 50 and server.max_in_flight == 2
    assert (workdir / "cache" / "slots").is_dir()
