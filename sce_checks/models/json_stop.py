"""Stop a generated reply at the end of its JSON object (``Decoding.stop_after_json``).

Every reply sce-checks asks for is one JSON object ("Reply with a JSON object only"). A model
that keeps talking after it closes the object makes a batched ``generate`` run on to
``max_new_tokens`` for the whole batch. `JsonObjectEnd`, a transformers stopping criterion,
ends each row as soon as its reply holds the object the reply reader would take:

* the row's text is scanned by `sce_checks.parsing.SpanScanner`, the reader's own scan: a top-level
  ``{`` opens a span, quotes (double or single, inside a span) are followed with their
  backslash escapes, so braces inside strings are not counted, and the span ends where its
  depth returns to 0;
* a span that closes and reads as an object (`sce_checks.parsing`'s own reader, JSON or a
  Python-literal dict) stops the row, and so does one that names a key twice with different
  values (the reader then leaves the reply unparsed); one that does not read is passed over, as
  the reader passes it over.

So the lenient reading of a stopped reply is the reading of the full reply: the first object
that reads. It can differ only where the full reply held more than one different object (the
strict reading refuses that; the lenient one notes ``first_object``) or a fenced object after
an unfenced one. The raw reply ends at the token that closed the object; that is why the
request says so in its cache key (``Decoding.as_dict``).
"""

from __future__ import annotations

from typing import Any, Sequence

from sce_checks import optional
from sce_checks.parsing import MAX_REPLY_CHARS, SpanScanner, _load

# imported by the hf backend only when it generates: torch is loaded by then
torch = optional.torch()
StoppingCriteria = optional.transformers().StoppingCriteria

__all__ = ["JsonObjectScanner", "JsonObjectEnd"]


class JsonObjectScanner:
    """Text fed piece by piece; `feed` answers True once a top-level object has closed that
    reads as a dict, or names a key twice (then the reply's reading is decided: unparsed), and
    stays done. The scan is `sce_checks.parsing.SpanScanner`, the reply reader's own."""

    def __init__(self) -> None:
        self.scanner = SpanScanner()
        self.pending: list[str] = []  # text fed since the open span's ``{`` (or since the last piece)
        self.base = 0  # offset of pending's first character
        self.done = False

    def feed(self, text: str) -> bool:
        if self.done:
            return True
        if self.scanner.pos > MAX_REPLY_CHARS:  # the reader would not look at such a reply: no use scanning
            return False
        self.pending.append(text)
        spans = self.scanner.feed(text)
        if spans:
            held = "".join(self.pending)
            for start, end in spans:
                value, why = _load(held[start - self.base:end - self.base])
                if isinstance(value, dict) or why == "duplicate_key":
                    self.done, self.pending = True, []
                    return True
            self.pending = [held]
        scanner = self.scanner
        if scanner.depth == 0:
            self.pending, self.base = [], scanner.pos
        elif scanner.start > self.base:
            held = "".join(self.pending)[scanner.start - self.base:]
            self.pending, self.base = [held], scanner.start
        return False


class JsonObjectEnd(StoppingCriteria):
    """Per row of one ``generate`` call over left-padded prompts of ``prompt_width`` columns:
    True from the step whose token closed the row's first readable object. ``stopped_at[row]``
    is the number of generated tokens the reply keeps (None: never closed)."""

    def __init__(self, tokenizer: Any, rows: int, prompt_width: int) -> None:
        self.tokenizer = tokenizer
        self.prompt_width = prompt_width
        self.scanners = [JsonObjectScanner() for _ in range(rows)]
        self.stopped_at: list[int | None] = [None] * rows
        self._pieces: dict[int, str] = {}

    def _piece(self, token: int) -> str:
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = self.tokenizer.decode([token])
        return piece

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        generated = input_ids.shape[1] - self.prompt_width
        done = []
        for row, token in enumerate(input_ids[:, -1].tolist()):
            if self.stopped_at[row] is None and generated > 0 and self.scanners[row].feed(self._piece(token)):
                self.stopped_at[row] = generated
            done.append(self.stopped_at[row] is not None)
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    def cut(self, row: int, tokens: Sequence[int]) -> list[int]:
        """The row's generated tokens up to the one that closed its object."""
        end = self.stopped_at[row]
        return list(tokens if end is None else tokens[:end])
