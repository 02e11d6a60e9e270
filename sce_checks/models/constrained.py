"""Grammar-constrained decoding for the ``hf`` backend: a reply that must satisfy a JSON Schema
(``Decoding.json_schema``) is generated under a token mask computed by llguidance.

* `Constrainer` (one per `HFChatModel`, built on first use): the llguidance tokenizer wrapper
  (built once: about a second for a 49k vocabulary) and the compiled grammars, cached per schema
  text (an audit sends many requests with one schema). Its end-of-sequence tokens are the model's
  stop ids, so once the JSON value is complete the mask allows nothing but a stop id.
* `SchemaLogitsProcessor` (one per ``generate`` call): one matcher per row of the batch. At each
  step it advances every unfinished row's matcher with the token that row chose at the previous
  step, fills the row's allowed-token bitmask and sets the logits of every other token to -inf;
  a row that has emitted a stop id is left alone (``generate`` pads it). It runs before
  ``generate``'s temperature and top-p warpers and before the seeded sampler
  (sce_checks/models/sampling.py), so greedy and sampled decoding are both constrained.

The JSON is compact: no whitespace between tokens (``whitespace_flexible`` off, separators
``,`` and ``:``), forced over whatever ``x-guidance`` options a schema carries, so a weak model
cannot spend its token budget on spaces or newlines.

llguidance (MIT, no Python dependencies) is imported lazily: only a request with a schema needs it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Sequence

import numpy as np

from sce_checks import optional
from sce_checks.errors import BackendError, UserInputError

# this module is imported by the hf backend only when it constrains a reply: torch is loaded by then
torch = optional.torch()
LogitsProcessor = optional.transformers().LogitsProcessor

__all__ = ["COMPACT_JSON", "Constrainer", "SchemaLogitsProcessor", "import_llguidance"]

#: llguidance JSON compile options applied last (over the schema's own ``x-guidance``): no
#: whitespace anywhere outside strings.
COMPACT_JSON: dict[str, Any] = {
    "whitespace_flexible": False,
    "whitespace_pattern": None,
    "item_separator": ",",
    "key_separator": ":",
}

_MAX_GRAMMARS = 64  # compiled schemas kept per model (one per task and request kind in practice)


def import_llguidance() -> Any:
    """The ``llguidance`` package (with its ``hf`` helpers), or a one-line `UserInputError`."""
    return optional.llguidance()


def _one_line(text: object, limit: int = 240) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


class Constrainer:
    """llguidance state shared by every constrained request to one model."""

    def __init__(self, tokenizer: Any, stop_ids: Sequence[int], *, name: str) -> None:
        llguidance = import_llguidance()
        self.name = name
        self.stop_ids = list(stop_ids)
        if not self.stop_ids:
            raise UserInputError(
                f"model {name!r}: structured elicitation needs an end-of-sequence or end-of-turn token, "
                "and the tokenizer, generation config and chat template name none"
            )
        try:
            self.tokenizer = llguidance.hf.from_tokenizer(tokenizer, eos_token=self.stop_ids)
        except (ValueError, TypeError) as exc:  # slow (non-"fast") tokenizers are not supported
            raise UserInputError(
                f"model {name!r}: structured elicitation needs a fast (tokenizers-backed) tokenizer "
                f"for llguidance ({_one_line(exc)})"
            ) from None
        self.vocab_size: int = self.tokenizer.vocab_size
        self._matcher_class = llguidance.LLMatcher
        self._grammars: OrderedDict[str, Any] = OrderedDict()  # schema text -> unused matcher

    def matcher(self, json_schema: str) -> Any:
        """A fresh matcher for ``json_schema`` (a copy of the cached compiled one); a schema
        llguidance cannot compile is a one-line `UserInputError`."""
        template = self._grammars.get(json_schema)
        if template is None:
            template = self._compile(json_schema)
            self._grammars[json_schema] = template
            while len(self._grammars) > _MAX_GRAMMARS:
                self._grammars.popitem(last=False)
        else:
            self._grammars.move_to_end(json_schema)
        return template.deep_copy()

    def _compile(self, json_schema: str) -> Any:
        matcher_class = self._matcher_class

        def refuse(problem: object) -> UserInputError:
            return UserInputError(
                f"model {self.name!r}: the JSON schema cannot be used for constrained decoding: {_one_line(problem)}"
            )

        try:
            grammar = matcher_class.grammar_from_json_schema(json_schema, overrides=COMPACT_JSON)
        except (ValueError, TypeError) as exc:
            raise refuse(exc) from None
        is_error, messages = matcher_class.validate_grammar_with_warnings(grammar, self.tokenizer)
        if is_error:
            raise refuse(messages[0] if messages else "invalid grammar")
        matcher = matcher_class(self.tokenizer, grammar, log_level=0)
        if matcher.is_error():
            raise refuse(matcher.get_error())
        return matcher

    def processor(self, json_schema: str, rows: int, prompt_width: int) -> "SchemaLogitsProcessor":
        """A logits processor for one ``generate`` call over ``rows`` left-padded prompts of
        ``prompt_width`` columns."""
        return SchemaLogitsProcessor(
            [self.matcher(json_schema) for _ in range(rows)],
            self.stop_ids,
            self.vocab_size,
            prompt_width,
            name=self.name,
        )


class SchemaLogitsProcessor(LogitsProcessor):
    """Masks each row's logits to the tokens its matcher allows (see the module docstring)."""

    def __init__(
        self, matchers: list[Any], stop_ids: Sequence[int], vocab_size: int, prompt_width: int, *, name: str
    ) -> None:
        self.matchers = matchers
        self.stops = set(stop_ids)
        self.vocab_size = vocab_size
        self.prompt_width = prompt_width
        self.name = name
        self.done = [False] * len(matchers)  # emitted a stop id, or ended by ``stopped``
        # per row, the generated tokens after which a stopping criterion ended it (None: not
        # ended); set by the caller when another criterion (models/json_stop.py) can end rows
        self.stopped: Sequence[int | None] | None = None
        self.consumed = [0] * len(matchers)  # generated tokens fed to the matcher
        self.bitmask = torch.zeros((len(matchers), (vocab_size + 31) // 32), dtype=torch.int32)

    def _fail(self, row: int, what: str) -> BackendError:
        error = self.matchers[row].get_error() or "no error message"
        return BackendError(f"model {self.name!r}: constrained decoding failed ({what}: {_one_line(error)})")

    def _advance(self, row: int, token: int) -> None:
        if self.done[row]:
            return
        if self.stopped is not None and self.stopped[row] is not None and self.consumed[row] >= self.stopped[row]:
            self.done[row] = True  # ended by the stopping criterion: what follows is padding
            return
        self.consumed[row] += 1
        if token in self.stops:
            self.done[row] = True
            return
        if not self.matchers[row].consume_token(token):
            raise self._fail(row, f"token {token} was refused")

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        step = input_ids.shape[1] - self.prompt_width
        if input_ids.shape[0] != len(self.matchers) or step < 0:
            raise BackendError(f"model {self.name!r}: constrained decoding got an unexpected batch shape {tuple(input_ids.shape)}")
        if step:
            for row, token in enumerate(input_ids[:, -1].tolist()):
                if self.consumed[row] != step - 1 and not self.done[row]:
                    raise BackendError(f"model {self.name!r}: constrained decoding needs one token per step per row")
                self._advance(row, token)
        active = [row for row, done in enumerate(self.done) if not done]
        if not active:
            return scores
        for row in active:
            mask_row = self.bitmask[row]
            self.matchers[row].unsafe_compute_mask_ptr(mask_row.data_ptr(), mask_row.numel() * 4)
            if self.matchers[row].is_error():
                raise self._fail(row, "no token mask")
        words = self.bitmask.numpy()[active]
        if not words.any(axis=1).all():
            raise BackendError(f"model {self.name!r}: constrained decoding left a row with no allowed token")
        # unpack the bits (little-endian within each 32-bit word, as llguidance writes them)
        bits = np.unpackbits(words.view(np.uint8), axis=1, bitorder="little")[:, : self.vocab_size]
        refused = torch.from_numpy(bits == 0)
        width = scores.shape[-1]
        if width > self.vocab_size:  # output layer wider than the tokenizer: the extra ids are never allowed
            refused = torch.cat([refused, refused.new_ones((len(active), width - self.vocab_size))], dim=1)
        refused = refused[:, :width].to(scores.device)
        if len(active) == len(self.matchers):
            scores.masked_fill_(refused, float("-inf"))
        else:
            index = torch.tensor(active, dtype=torch.long, device=scores.device)
            scores[index] = scores[index].masked_fill(refused, float("-inf"))
        return scores

    def finish(self, generated: Sequence[Sequence[int]]) -> list[bool]:
        """After ``generate``: whether each row's reply is a complete value (it ended with a stop
        id, or its last tokens, never seen by the processor, complete it). False: cut by
        ``max_new_tokens`` while the JSON was still open."""
        complete = []
        for row, tokens in enumerate(generated):
            for token in tokens[self.consumed[row] :]:
                if self.done[row]:
                    break
                self._advance(row, token)
            complete.append(self.done[row] or self.matchers[row].is_accepting())
        return complete
