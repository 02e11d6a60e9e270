#!/usr/bin/env python
"""Measure how sce-audit meets an unusable response cache, with real faults of the file system.

Each case runs a real ``sce-audit`` on the toy grid (tests/helpers) and is judged against the
run on a healthy cache: it *survived* when it ended as the cache module's docstring decides (exit
0 with the healthy run's report and exactly the warning expected, or exit 2 with one error
line naming the path), it is *lost* on a traceback, another exit status
or no report, and *miscounted* when it exits 0 with a report that differs from the healthy run's.

The faults are made for real, which the test suite cannot do (tests/models/test_cache_faults.py
simulates them): read-only bind mounts and a tiny tmpfs (a full disk) need root on Linux, and the
permission-bit cases run as the user ``nobody`` (``setpriv``). Run as root:

    python scripts/measure_cache_faults.py            # prints one line per case, then the counts
    python scripts/measure_cache_faults.py --issue26  # only the cases of issue 26 (FIFOs, huge rows)
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.helpers.projects import TOY_TOML  # noqa: E402

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
MODELS = "from tests.helpers.rule_models import TOY, RuleModel, toy_rule\nboundary = RuleModel(TOY, toy_rule, 'boundary')\n"


def audit(work: Path, cache: Path | str, report: str, *extra: str, limit: int = 10, user: list[str] = (),
          timeout: float = 300) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "HOME": str(work)}
    command = [*user, sys.executable, "-m", "sce_checks.cli", "--model", "python:toy_models:boundary", "--dataset",
               "toy.toml", "--limit", str(limit), "--seed", "3", "--prediction", "generate", "--check", "sce",
               "--check", "stability", "-q", "--cache-dir", str(cache), "--json", report, *extra]
    try:
        done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:  # a hang (a FIFO at the cache path once did): lost
        return 124, f"no end after {timeout} s: {exc.stdout or ''}{exc.stderr or ''}"
    return done.returncode, done.stdout + done.stderr


def comparable(path: Path) -> dict | None:
    if not path.is_file():
        return None
    report = json.loads(path.read_text())
    # what differs by design: the calls the model got, the wall time, and the interpreter's patch
    # version (as nobody, a venv whose interpreter sits under /root runs the system one); the
    # warnings, which `judge` checks in the output
    report["environment"] = {k: v for k, v in report["environment"].items()
                             if k not in ("model_calls", "wall_seconds", "python", "warnings")}
    return report


@contextlib.contextmanager
def read_only_mount(folder: Path):
    """``folder`` as a read-only bind mount: even root cannot write there."""
    subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@contextlib.contextmanager
def tmpfs(folder: Path, size: str):
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs", str(folder)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def issue26_cases(base: Path, judge, full_cache) -> None:
    """Issue 26: what is at the cache path is not a file or a folder; a row an older version left
    huge (a reply of millions of characters stored whole)."""
    for name, at in (("cache file is a FIFO", "fifo-file/responses.sqlite"), ("--cache-dir is a FIFO", "fifo-dir"),
                     ("the WAL file is a FIFO", "fifo-wal/responses.sqlite-wal")):
        (base / at).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(base / at)
        folder = base / at.split("/")[0]
        judge(name, audit(base, folder, "x.json", timeout=30), "x.json", "is a FIFO", code=2)
    folder = full_cache("rows-huge")
    with sqlite3.connect(folder / "responses.sqlite") as conn:
        conn.execute("UPDATE responses SET value = ? WHERE value LIKE '\"%'", (json.dumps("x" * 3_000_000),))
    judge("every chat row holds a reply of 3 million characters", audit(base, folder, "w-huge.json"), "w-huge.json",
          "unusable")


def main() -> int:
    base = Path(tempfile.mkdtemp(prefix="sce-cache-faults-"))
    os.chmod(base, 0o777)
    (base / "toy.toml").write_text(TOY_TOML)
    (base / "toy_models.py").write_text(MODELS)
    for f in base.iterdir():
        os.chmod(f, 0o666)
    healthy: dict[int, dict] = {}
    for limit in (10, 30):
        code, out = audit(base, base / f"healthy{limit}", f"healthy{limit}.json", limit=limit)
        assert code == 0, out
        healthy[limit] = comparable(base / f"healthy{limit}.json")

    def full_cache(name: str, limit: int = 10, user: list[str] = ()) -> Path:
        """A cache holding every answer of a run of ``limit`` examples (closed cleanly)."""
        folder = base / name
        code, out = audit(base, folder, f"{name}-fill.json", limit=limit, user=user)
        assert code == 0, out
        return folder

    counts = {"tried": 0, "survived": 0, "lost": 0, "miscounted": 0}
    only_issue26 = "--issue26" in sys.argv[1:]

    def judge(name: str, result: tuple[int, str], report: str, expect: str | None, limit: int = 10,
              code: int = 0) -> None:
        got, out = result
        counts["tried"] += 1
        wanted = comparable(base / report) if code == 0 else None
        # a warning is a line of the summary (sce_checks/notices.py), or a Python warning of its class
        warnings_seen = sum(out.count(w) for w in ("CacheUnavailableWarning", "CacheRowWarning", "CacheCorruptionWarning",
                                                   "sce-checks: warning: response cache"))
        if "Traceback" in out or got != code or (code == 0 and wanted is None):
            verdict = "lost"
        elif code == 0 and wanted != healthy[limit]:
            verdict = "miscounted"
        elif code == 2 and not (out.count("sce-audit: error:") + out.count("ERROR: ") == 1 and expect in out):
            verdict = "lost"
        elif code == 0 and (warnings_seen != (expect is not None) or (expect is not None and expect not in out)):
            verdict = "lost"
        else:
            verdict = "survived"
        counts[verdict] += 1
        print(f"{verdict:10s} {name}: exit {got}, {warnings_seen} cache warning(s)")
        if verdict != "survived":
            print("   " + out[-1500:].replace("\n", "\n   "))

    issue26_cases(base, judge, full_cache)
    if only_issue26:
        print(json.dumps(counts))
        return 0 if counts["survived"] == counts["tried"] else 1

    # -- wrong paths: one error line, exit 2 ------------------------------------------------------
    (base / "dir-cache" / "responses.sqlite").mkdir(parents=True)
    judge("cache file is a directory", audit(base, base / "dir-cache", "x.json"), "x.json", "is a directory", code=2)
    judge("--cache-dir is a file", audit(base, base / "toy.toml", "x.json"), "x.json", "is a file, not a directory", code=2)
    judge("--cache-dir under a file", audit(base, base / "toy.toml" / "sub", "x.json"), "x.json",
          "is a file, not a directory", code=2)
    judge("--clear-cache on a cache file that is a directory", audit(base, base / "dir-cache", "x.json", "--clear-cache"),
          "x.json", "is a directory", code=2)

    # -- read-only, for real: bind mounts (root cannot write either) -------------------------------
    folder = full_cache("ro-full")
    with read_only_mount(folder):
        judge("read-only mount, every answer cached", audit(base, folder, "r1.json"), "r1.json", None)
        judge("read-only mount, 20 answers missing", audit(base, folder, "r2.json", limit=30), "r2.json",
              "cannot be written", limit=30)
        judge("read-only mount, --clear-cache", audit(base, folder, "r3.json", "--clear-cache"), "r3.json",
              "cannot be written", code=2)
    empty = base / "ro-empty"
    empty.mkdir()
    with read_only_mount(empty):
        judge("read-only mount, no cache file yet", audit(base, empty, "r4.json"), "r4.json", "cannot be used")
        judge("read-only mount, cache folder to create", audit(base, empty / "sub", "r5.json"), "r5.json",
              "cannot be created")

    # -- permission bits, as the user nobody ------------------------------------------------------
    for what in ("file", "folder"):
        folder = full_cache(f"perm-{what}", user=NOBODY)
        target, bits = (folder / "responses.sqlite", 0o444) if what == "file" else (folder, 0o555)
        os.chmod(target, bits)
        judge(f"read-only {what} (nobody), every answer cached", audit(base, folder, f"p{what}1.json", user=NOBODY),
              f"p{what}1.json", None)
        judge(f"read-only {what} (nobody), 20 answers missing",
              audit(base, folder, f"p{what}2.json", limit=30, user=NOBODY), f"p{what}2.json", "cannot be written", limit=30)
    folder = base / "perm-unwritable"
    folder.mkdir()
    os.chmod(folder, 0o555)
    judge("unwritable folder, no file (nobody)", audit(base, folder, "u1.json", user=NOBODY), "u1.json", "cannot be used")
    judge("unwritable folder, subfolder to create (nobody)", audit(base, folder / "sub", "u2.json", user=NOBODY),
          "u2.json", "cannot be created")
    folder = full_cache("perm-unreadable", user=NOBODY)
    os.chmod(folder / "responses.sqlite", 0o000)
    judge("unreadable cache file (nobody)", audit(base, folder, "u3.json", user=NOBODY), "u3.json", "cannot be used")

    # -- full disk, for real: a tiny tmpfs --------------------------------------------------------
    with tmpfs(base / "full-mid", "48k"):
        judge("disk fills mid-run (48 KiB tmpfs)", audit(base, base / "full-mid", "f1.json", limit=30), "f1.json",
              "database or disk is full", limit=30)
    with tmpfs(base / "full-start", "4k"):
        (base / "full-start" / "filler").write_bytes(b"\0" * 4096)
        judge("disk full before the run", audit(base, base / "full-start", "f2.json"), "f2.json", "cannot be used")

    # -- a lock held past the 60 s busy timeout -----------------------------------------------------
    folder = full_cache("locked")
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sqlite3, sys, time\n"
                               f"c = sqlite3.connect({str(folder / 'responses.sqlite')!r}, isolation_level=None)\n"
                               "c.execute('PRAGMA locking_mode = EXCLUSIVE'); c.execute('BEGIN EXCLUSIVE')\n"
                               "c.execute(\"INSERT OR REPLACE INTO responses VALUES ('held', '1')\")\n"
                               "print('held', flush=True); time.sleep(90)\n"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    started = time.monotonic()
    judge("locked by another process past the timeout", audit(base, folder, "l1.json"), "l1.json", "database is locked")
    print(f"           (waited {time.monotonic() - started:.0f} s)")
    holder.kill()
    holder.wait()

    # -- damaged files ------------------------------------------------------------------------------
    folder = base / "garbage"
    folder.mkdir()
    (folder / "responses.sqlite").write_bytes(b"not a database\n" * 100)
    judge("file that is not a database", audit(base, folder, "g1.json"), "g1.json", "not a valid SQLite database")
    folder = full_cache("wrecked", limit=30)
    data = bytearray((folder / "responses.sqlite").read_bytes())
    data[4096:] = b"\xff" * (len(data) - 4096)
    (folder / "responses.sqlite").write_bytes(bytes(data))
    judge("database with wrecked pages", audit(base, folder, "g2.json", limit=30), "g2.json",
          "not a valid SQLite database", limit=30)

    # -- rows ----------------------------------------------------------------------------------------
    rows = {"integer": "5", "null": "null", "not JSON": "{nope", "huge integer": "9" * 5000,
            "deep nesting": "[" * 100000 + "]" * 100000, "a list": '["Yes"]', "an object": '{"answer": "Yes"}',
            "boolean": "true", "float": "1.5"}
    for name, value in rows.items():
        folder = full_cache(f"rows-{name.replace(' ', '-')}")
        with sqlite3.connect(folder / "responses.sqlite") as conn:
            conn.execute("UPDATE responses SET value = ? WHERE value LIKE '\"%'", (value,))
        judge(f"every chat row holds {name}", audit(base, folder, f"w-{name}.json"), f"w-{name}.json", "unusable")
    folder = full_cache("rows-bytes")
    with sqlite3.connect(folder / "responses.sqlite") as conn:
        conn.execute("UPDATE responses SET value = CAST(X'fffe00' AS BLOB)")
    judge("every row holds bytes that are not UTF-8", audit(base, folder, "w-bytes.json"), "w-bytes.json", "unusable")

    print(json.dumps(counts))
    return 0 if counts["survived"] == counts["tried"] else 1


if __name__ == "__main__":
    sys.exit(main())
