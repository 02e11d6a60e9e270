"""Build sce_checks/data/sentiment/ from the vaderSentiment 3.3.2 source distribution.

The sdist ships ``additional_resources/hutto_ICWSM_2014.tar.gz`` (MIT licence), whose
``movieReviewSnippets_GroundTruth.txt`` holds 10,605 movie-review snippets, each with the mean of
human ratings on -4..+4 (Hutto and Gilbert 2014). We keep snippets that are clearly polar
(|score| >= 0.5), at most 300 characters and not duplicated, label them positive when the score
is > 0 and negative otherwise, and draw a seeded, class-balanced sample (200 + 200), written in
id order.

Get the sdist with:  pip download --no-deps --no-binary :all: vaderSentiment==3.3.2
Run:  python scripts/make_sentiment_sample.py vaderSentiment-3.3.2.tar.gz   (or the unpacked folder)
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import random
import tarfile
from pathlib import Path

INNER = "additional_resources/hutto_ICWSM_2014.tar.gz"
SNIPPETS = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
MIN_ABS_SCORE = 0.5
MAX_CHARS = 300
PER_CLASS = 200
SEED = 0
OUT = Path(__file__).resolve().parent.parent / "sce_checks" / "data" / "sentiment"


def read_sdist(sdist: Path) -> tuple[bytes, str]:
    """The inner data archive and the licence text, from the sdist archive or its unpacked folder."""
    if sdist.is_dir():
        # bytes, not read_text: keep the licence's CRLF line ends exactly as in the archive
        return (sdist / INNER).read_bytes(), (sdist / "LICENSE.txt").read_bytes().decode("utf-8")
    with tarfile.open(sdist) as outer:
        root = "vaderSentiment-3.3.2/"
        inner = outer.extractfile(root + INNER).read()  # type: ignore[union-attr]
        licence = outer.extractfile(root + "LICENSE.txt").read().decode("utf-8")  # type: ignore[union-attr]
    return inner, licence


def read_snippets(inner: bytes) -> list[tuple[str, float, str]]:
    with tarfile.open(fileobj=io.BytesIO(inner)) as tar:
        raw = tar.extractfile(SNIPPETS).read().decode("utf-8")  # type: ignore[union-attr]
    rows = []
    for line in raw.splitlines():
        if not line.strip():
            continue
        snippet_id, score, text = line.split("\t")
        rows.append((snippet_id.strip(), float(score), text.strip()))
    return rows


def sample(rows: list[tuple[str, float, str]], seed: int) -> list[dict]:
    counts = collections.Counter(text for _, _, text in rows)
    kept = [r for r in rows if abs(r[1]) >= MIN_ABS_SCORE and len(r[2]) <= MAX_CHARS and counts[r[2]] == 1 and r[2]]
    rng = random.Random(seed)
    chosen = []
    for label, members in (("negative", [r for r in kept if r[1] <= 0]), ("positive", [r for r in kept if r[1] > 0])):
        chosen += [(r, label) for r in rng.sample(members, PER_CLASS)]
    chosen.sort(key=lambda c: int(c[0][0]))
    return [{"id": r[0], "text": r[2], "label": label, "score": round(r[1], 4)} for r, label in chosen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sdist", type=Path, help="vaderSentiment-3.3.2.tar.gz or its unpacked folder")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    inner, licence = read_sdist(args.sdist)
    records = sample(read_snippets(inner), args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "movie_reviews_sample.jsonl", "w", encoding="utf-8", newline="\n") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    with open(args.out / "LICENSE", "w", encoding="utf-8", newline="") as f:  # verbatim line ends
        f.write(licence)
    print(f"wrote {len(records)} snippets to {args.out}")


if __name__ == "__main__":
    main()
