"""Does the openai backend keep a server busy? Throughput against a local OpenAI-compatible server
with injected latency, against a naive sequential client, in one run.

The server (tests/openai_server.py, run as its own process so it shares no interpreter lock with
the client) answers every chat completion after ``--latency`` seconds (0.1), whatever the
number of requests in flight: a server with unlimited parallel slots, so the ideal throughput at
concurrency c is c / latency and what is measured is the client's overhead. Requests are the
income task's prediction prompts (Mayne et al. 2025 protocol; one grid point each).

Rows:
- naive sequential client: one ``urllib`` POST at a time, the way a loop over examples calls a
  server (ideal: 1 / latency);
- sce-checks ``OpenAIChatModel.chat`` at each ``--concurrency`` (default 1, 8, 32, 64), one
  process, ``--per-slot`` x c requests per batch;
- xdist-like: ``--workers`` processes at once, each a model with concurrency 32, all sharing the
  server's 32 slots through the cache directory (sce_checks/models/slots.py): the total stays at
  32 in flight (the server's count is printed) and the throughput at that of one process.

The last line reads ``concurrency 32: <req/s> = <x>% of 32/latency, <y>x the naive client``.

    python benchmarks/bench_openai_concurrency.py [--latency 0.1] [--per-slot 10] [--workers 4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tabulate import tabulate  # noqa: E402

from sce_checks.models import Decoding  # noqa: E402
from sce_checks.models.openai import OpenAIChatModel  # noqa: E402
from sce_checks.prompts.grid import prediction_conversation  # noqa: E402
from sce_checks.tasks.builtin_grids import INCOME  # noqa: E402

DECODING = Decoding(max_new_tokens=16)


def conversations(n: int, offset: int = 0) -> list:
    points = list(INCOME.points())
    return [prediction_conversation(INCOME, points[(offset + i) % len(points)]) for i in range(n)]


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.openai_server", "--latency", str(latency)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit("the local server did not start")
    return proc, url


def stats(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/stats", timeout=10) as answer:
        return json.loads(answer.read())


def naive(url: str, convs: list) -> float:
    """Seconds for one plain POST after another."""
    started = time.perf_counter()
    for c in convs:
        body = json.dumps({"model": "m", "messages": c, "max_tokens": 16, "temperature": 0}).encode()
        request = urllib.request.Request(f"{url}/chat/completions", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            json.loads(answer.read())["choices"][0]["message"]["content"]
    return time.perf_counter() - started


def model(url: str, concurrency: int, slots: str) -> OpenAIChatModel:
    return OpenAIChatModel("m", url, max_concurrency=concurrency, timeout_s=30, slots_dir=slots)


def one_process(url: str, concurrency: int, n: int, slots: str) -> float:
    convs = conversations(n)
    m = model(url, concurrency, slots)
    started = time.perf_counter()
    replies = m.chat(convs, DECODING)
    elapsed = time.perf_counter() - started
    assert len(replies) == n and all(r.startswith("echo: ") for r in replies)
    return elapsed


WORKER = """
import sys, time
sys.path.insert(0, {root!r})
from benchmarks.bench_openai_concurrency import conversations, model, DECODING
m = model({url!r}, 32, {slots!r})
convs = conversations({n}, offset={offset})
while time.time() < {go}:
    time.sleep(0.001)
replies = m.chat(convs, DECODING)
assert len(replies) == {n}
"""


def workers(url: str, count: int, n_each: int, slots: str) -> float:
    """Seconds for ``count`` processes sending ``n_each`` requests each, all starting together."""
    go = time.time() + 2.0  # after every interpreter has started
    procs = [subprocess.Popen([sys.executable, "-c", WORKER.format(root=str(ROOT), url=url, slots=slots, n=n_each,
                                                                   offset=k * n_each, go=go)])
             for k in range(count)]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit("a worker failed")
    return time.time() - go


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, action="append")
    parser.add_argument("--per-slot", type=int, default=10, help="requests per batch = this x concurrency")
    parser.add_argument("--naive", type=int, default=30, help="requests the naive client sends")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    levels = sorted(set(args.concurrency or [1, 8, 32, 64]))  # increasing: the server's max in flight is cumulative
    proc, url = start_server(args.latency)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as slots:
            naive_s = naive(url, conversations(args.naive))
            naive_rate = args.naive / naive_s
            rows.append(["naive sequential client", 1, args.naive, f"{naive_s:.2f}", f"{naive_rate:.1f}",
                         f"{1 / args.latency:.1f}", f"{naive_rate * args.latency:.0%}", "1.0x", "-"])
            at32 = None
            for c in levels:
                n = args.per_slot * c
                elapsed = one_process(url, c, n, slots)
                rate, ideal = n / elapsed, c / args.latency
                at32 = rate if c == 32 else at32
                rows.append(["sce-checks, 1 process", c, n, f"{elapsed:.2f}", f"{rate:.1f}", f"{ideal:.1f}",
                             f"{rate / ideal:.0%}", f"{rate / naive_rate:.1f}x", stats(url)["max_in_flight"]])
            if args.workers > 1:
                # the server's max in flight so far is the largest level's: measure the shared limit
                # on a fresh server
                proc.stdin.close()
                proc.wait(timeout=10)
                proc, url = start_server(args.latency)
                n_each = args.per_slot * 32
                elapsed = workers(url, args.workers, n_each, slots)
                total = args.workers * n_each
                rate = total / elapsed
                rows.append([f"sce-checks, {args.workers} processes sharing 32 slots", 32, total, f"{elapsed:.2f}",
                             f"{rate:.1f}", f"{32 / args.latency:.1f}", f"{rate / (32 / args.latency):.0%}",
                             f"{rate / naive_rate:.1f}x", stats(url)["max_in_flight"]])
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
    print(f"server latency {args.latency:g} s; {platform.python_version()}, {os.cpu_count()} CPUs; "
          f"{time.strftime('%Y-%m-%d')}")
    print(tabulate(rows, headers=["client", "concurrency", "requests", "seconds", "req/s", "ideal req/s",
                                  "of ideal", "vs naive", "server max in flight"], disable_numparse=True))
    if at32 is not None:
        print(f"concurrency 32: {at32:.1f} req/s = {at32 / (32 / args.latency):.0%} of 32/latency, "
              f"{at32 / naive_rate:.1f}x the naive client")


if __name__ == "__main__":
    main()
