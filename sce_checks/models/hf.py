"""The ``hf:<hub id or local dir>`` backend: a transformers causal LM driven through its chat
template.

* ``chat``: left-padded batched generation in chunks of ``batch_size`` (conversations sorted by
  prompt length so a chunk holds similar lengths; the order of the replies is restored). Greedy at
  temperature 0. At temperature > 0 it samples, seeding torch's global generator with
  ``Decoding.seed`` once per call when a seed is given: reproducible for the same batch, batch
  size, device and versions, not across them (the sampled tokens depend on the batch layout).
  With ``Decoding.json_schema`` set, every reply is constrained to that schema by
  grammar-constrained decoding (llguidance, imported only then; sce_checks/models/constrained.py):
  a logits processor in the same batched ``generate`` call keeps one matcher per row and masks
  each step's logits to the tokens the schema allows, compact JSON (no whitespace outside
  strings); once the JSON value is complete only a stop id is allowed, so the reply is the JSON
  text itself. Greedy and sampled decoding alike. ``stats.extra`` counts ``constrained_replies``
  and ``constrained_unfinished`` (replies cut by ``max_new_tokens`` before the value closed).
* ``score_replies`` (the scoring primitive of `sce_checks.models.base`): the log-probability
  of given assistant replies to each conversation, each row its own list of replies. A reply is
  scored as the tokens the chat template writes for an assistant turn after the generation
  prompt: with ``complete=True`` up to and including the end-of-turn token, so "Yes" and
  "Yes, but" are told apart (the reply is the WHOLE reply); with ``complete=False`` without it
  (the reply's beginning, e.g. an explanation cut by its token budget; an empty reply then
  scores 0). ``score_options`` is ``score_replies`` with the same options on every row and
  ``complete=True``. One batched implementation (``_score_tokens``, also reachable on token ids
  as `HFChatModel.score_token_continuations`): ``batch_size`` prompts per chunk, sorted by
  length; the token prefix all prompts of a chunk share (system prompt, instructions, the start
  of the text; at least ``MIN_SHARED_PREFIX`` tokens) runs ONCE and its KV cache is copied to
  every row; each prompt, extended by its replies' common token prefix, then runs once,
  left-padded; its cache is copied once per reply and the replies' remaining tokens run
  right-padded in one batched forward. Logits are kept only for the scored columns
  (``logits_to_keep``), log-softmax in fp32, sums in float64.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from sce_checks import progress
from sce_checks.config import default
from sce_checks.errors import BackendError, UserInputError
from sce_checks.models.base import CallStats, Conversation, Decoding
from sce_checks.models.fingerprint import parameters_fingerprint, remembered_folder_fingerprint
from sce_checks.models.identity import hf_folder, keyed_settings, transformers_identity

__all__ = ["MIN_SHARED_PREFIX", "HFChatModel", "quiet_progress", "resolve_device", "resolve_dtype"]


def resolve_device(device: str | None) -> str:
    """``None``/``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``; anything else as given."""
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str | None, device: str) -> Any:
    """``None`` -> float32 on CPU/MPS (exact, and what the SCE papers used), bfloat16 on CUDA
    (`sce_checks.models.identity.default_dtype`)."""
    import torch

    return getattr(torch, keyed_settings(device, dtype)[1])


@contextmanager
def quiet_progress() -> Iterator[None]:
    """Hide transformers' per-load progress bars (they would clutter the audit's output)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _one_line(text: object, limit: int = 240) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


@dataclass
class _ScoreItem:
    prompt: list[int]  # prompt tokens, extended by the continuations' common prefix
    prefix: list[int]  # that common prefix (scored from the prompt pass)
    rests: list[list[int]]  # per scored continuation, the tokens after the prefix (each non-empty)
    columns: list[int]  # the row's column each rest is scored into (empty continuations score 0)
    width: int  # the number of continuations of the row


def _score_item(prompt: list[int], continuations: list[list[int]]) -> _ScoreItem:
    columns = [j for j, c in enumerate(continuations) if c]
    scored = [continuations[j] for j in columns]
    # Share the common token prefix, but leave every continuation at least one token of its own,
    # scored from the logits the prefix pass leaves (also when two continuations are identical).
    shared = 0
    if scored:
        limit = min(len(c) for c in scored) - 1
        while shared < limit and all(c[shared] == scored[0][shared] for c in scored):
            shared += 1
    prefix = scored[0][:shared] if scored else []
    return _ScoreItem(list(prompt) + prefix, prefix, [c[shared:] for c in scored], columns, len(continuations))


class HFChatModel:
    """A transformers causal LM with a chat template, as a batched `ChatModel` with scoring."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        path: str | None = None,
        batch_size: int = default("batch_size"),
        fingerprint: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
    ) -> None:
        """Wrap an already-loaded ``model`` (on its device, in its dtype) and ``tokenizer``.

        ``fingerprint`` defaults to one of ``path``'s files when given (remembered by their
        path, size and mtime), else to a hash of the parameters themselves. ``device`` and
        ``dtype`` are the settings the identity keys (as requested, ``"auto"`` where not given:
        sce_checks/models/identity.py); None keys the model's own device and dtype.
        """
        if batch_size < 1:
            raise UserInputError(f"batch_size must be at least 1, got {batch_size}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.path = path
        self.batch_size = int(batch_size)
        if fingerprint is None:
            fingerprint = remembered_folder_fingerprint(path) if path else parameters_fingerprint(model)
        self.fingerprint = fingerprint
        self.stats = CallStats()
        first = next(model.parameters())
        self.device = first.device  # as resolved: reports show it (`runtime`), the identity keys the request
        self.dtype = first.dtype
        self.keyed_device, self.keyed_dtype = keyed_settings(
            device or str(first.device), dtype or str(first.dtype).removeprefix("torch."))
        pad = tokenizer.pad_token_id
        self.pad_id: int = pad if pad is not None else (tokenizer.eos_token_id or 0)
        self._stop_ids: list[int] | None = None
        self._forward_params: frozenset[str] | None = None
        self._constrainer: Any = None  # llguidance state, built by the first constrained request

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, path_or_id: str, options: Any, name: str | None = None) -> "HFChatModel":
        """Load tokenizer and model from a local folder or a hub id (the same code path: files
        already in the local Hugging Face cache load offline). ``options`` is a `ModelOptions`;
        ``name`` (default ``path_or_id``) names the model in its identity and errors."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = resolve_device(options.device)
        dtype = resolve_dtype(options.dtype, device)
        trust = bool(options.trust_remote_code)
        label = name or f"hf:{path_or_id}"
        try:
            with quiet_progress():
                tokenizer = AutoTokenizer.from_pretrained(path_or_id, trust_remote_code=trust)
                model = AutoModelForCausalLM.from_pretrained(path_or_id, dtype=dtype, trust_remote_code=trust)
        except OSError as exc:  # missing folder, unknown/uncached repo, missing weights files
            raise UserInputError(
                f"model 'hf:{path_or_id}' could not be loaded: it is neither a local folder with "
                f"model weights nor a model in the local Hugging Face cache ({_one_line(exc)}); "
                "pass a folder holding config.json, the tokenizer files and the weights "
                f"(*.safetensors), or download the model once with `hf download {path_or_id}` "
                "(with HF_HUB_OFFLINE=1 set, nothing is fetched)"
            ) from None
        except ValueError as exc:  # unknown architecture, refused remote code, broken tokenizer files
            raise UserInputError(f"model '{label}' could not be loaded by transformers: {_one_line(exc)}") from None
        try:
            model = model.to(torch.device(device))
        except (RuntimeError, AssertionError) as exc:
            raise UserInputError(f"model '{label}': device {device!r} is not usable ({_one_line(exc)})") from None
        return cls(model, tokenizer, name=name or path_or_id, path=hf_folder(path_or_id), batch_size=options.batch_size,
                   device=options.device or "auto", dtype=options.dtype or "auto")

    def identity(self) -> dict[str, Any]:
        """What the answers depend on (sce_checks/models/identity.py: the same identity a lazy
        model computes from the files before loading)."""
        return transformers_identity(name=self.name, path=self.path, fingerprint=self.fingerprint,
                                     device=self.keyed_device, dtype=self.keyed_dtype, batch_size=self.batch_size)

    def runtime(self) -> dict[str, Any]:
        """The device and dtype the weights actually sit on, for the report's environment."""
        return {"model_loaded": True, "device": str(self.device), "dtype": str(self.dtype).removeprefix("torch.")}

    # -- templating ------------------------------------------------------------------------

    def _template(self, conversation: Conversation, generation_prompt: bool) -> str:
        if not getattr(self.tokenizer, "chat_template", None):
            raise UserInputError(
                f"model {self.name!r} has no chat template (tokenizer_config.json / "
                "chat_template.jinja); sce-checks needs an instruction-tuned model with one"
            )
        return self.tokenizer.apply_chat_template(
            list(conversation), tokenize=False, add_generation_prompt=generation_prompt
        )

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt_ids(self, conversation: Conversation) -> list[int]:
        """Tokens of the conversation followed by the assistant generation prompt."""
        return self._encode(self._template(conversation, generation_prompt=True))

    def stop_ids(self) -> list[int]:
        """EOS ids (tokenizer and generation config) and the template's end-of-turn token, i.e.
        the first special token the template writes after an assistant reply."""
        if self._stop_ids is None:
            ids: list[int] = []
            eos = self.tokenizer.eos_token_id
            if eos is not None:
                ids.append(eos)
            config_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
            ids += [config_eos] if isinstance(config_eos, int) else list(config_eos or [])
            probe = [{"role": "user", "content": "Hi"}]
            tail = self._template_continuation(probe, "Hello", self.prompt_ids(probe))
            special = set(self.tokenizer.all_special_ids)
            if tail is not None:
                reply_len = len(self._encode("Hello"))
                ids += [t for t in tail[reply_len:] if t in special][:1]
            self._stop_ids = list(dict.fromkeys(ids))
        return self._stop_ids

    def _template_continuation(self, conversation: Conversation, option: str, prompt: list[int]) -> list[int] | None:
        """What the template adds after the generation prompt for the assistant reply ``option``,
        or None when the templated prompt is not a token prefix of the templated reply."""
        full = self._encode(self._template(list(conversation) + [{"role": "assistant", "content": option}], False))
        if len(full) <= len(prompt) or full[: len(prompt)] != prompt:
            return None
        return full[len(prompt) :]

    def continuation_ids(self, conversation: Conversation, option: str, prompt: list[int],
                         complete: bool = True) -> list[int]:
        """The tokens scored for ``option`` as the assistant reply: the template's assistant turn
        after the generation prompt, cut after its first stop token (generation would stop
        there). Fallback when the template does not extend the prompt: the option's own tokens
        followed by EOS. ``complete=False``: the reply's beginning, without that stop token (a
        reply cut by its token budget never produced one)."""
        stops = set(self.stop_ids())
        tokens = self._template_continuation(conversation, option, prompt)
        if tokens is None:
            eos = self.tokenizer.eos_token_id
            tokens = self._encode(option) + ([eos] if eos is not None else [])
        for index, token in enumerate(tokens):
            if token in stops:
                tokens = tokens[: index + 1]
                break
        if not complete:
            while tokens and tokens[-1] in stops:
                tokens = tokens[:-1]
        return tokens

    # -- generation ------------------------------------------------------------------------

    def _left_pad(self, rows: list[list[int]]) -> tuple[Any, Any, Any]:
        import torch

        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            if row:
                ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
                mask[i, width - len(row) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return ids.to(self.device), mask.to(self.device), positions.to(self.device)

    def chat(self, conversations: Sequence[Conversation], decoding: Decoding) -> list[str]:
        import torch

        if not conversations:
            return []
        prompts = [self.prompt_ids(c) for c in conversations]
        stops = self.stop_ids()
        sample = decoding.temperature > 0
        settings: dict[str, Any] = {
            "max_new_tokens": decoding.max_new_tokens,
            "do_sample": sample,
            "eos_token_id": stops,
            "pad_token_id": self.pad_id,
        }
        if sample:
            settings.update(temperature=decoding.temperature, top_p=decoding.top_p, top_k=0)
            if decoding.seed is not None:
                torch.manual_seed(decoding.seed)
        else:
            settings.update(temperature=None, top_p=None, top_k=None)
        schema = decoding.json_schema
        if schema is not None:
            constrainer = self.constrainer()
            constrainer.matcher(schema)  # compile (or find) the grammar before generating anything
        replies: list[str] = [""] * len(conversations)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        self.stats.chat_calls += 1
        self.stats.chat_conversations += len(conversations)
        stop_set = set(stops)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            ids, mask, _ = self._left_pad([prompts[i] for i in chunk])
            extra: dict[str, Any] = {}
            if schema is not None:
                from transformers import LogitsProcessorList

                processor = constrainer.processor(schema, len(chunk), ids.shape[1])
                extra["logits_processor"] = LogitsProcessorList([processor])
            try:
                with torch.inference_mode():
                    out = self.model.generate(input_ids=ids, attention_mask=mask, **settings, **extra)
            except (RuntimeError, ValueError) as exc:
                raise BackendError(f"model {self.name!r}: generation failed ({_one_line(exc)})") from exc
            if schema is not None:
                complete = processor.finish([out[row, ids.shape[1] :].tolist() for row in range(len(chunk))])
                self._count("constrained_replies", len(chunk))
                if not all(complete):
                    self._count("constrained_unfinished", complete.count(False))
            for row, index in enumerate(chunk):
                new = out[row, ids.shape[1] :].tolist()
                for cut, token in enumerate(new):
                    if token in stop_set:
                        new = new[:cut]
                        break
                self._count("generated_tokens", len(new))
                replies[index] = self.tokenizer.decode(new, skip_special_tokens=True).strip()
            progress.advance(len(chunk))
        return replies

    def constrainer(self) -> Any:
        """The llguidance state of this model (tokenizer wrapper, compiled grammars), built once."""
        if self._constrainer is None:
            from sce_checks.models.constrained import Constrainer

            self._constrainer = Constrainer(self.tokenizer, self.stop_ids(), name=self.name)
        return self._constrainer

    # -- scoring ---------------------------------------------------------------------------

    def score_replies(
        self, conversations: Sequence[Conversation], replies: Sequence[Sequence[str]], complete: bool = True
    ) -> list[list[float]]:
        """Log-probability (natural log, summed over tokens) of each of ``replies[i]`` as the
        assistant's reply to ``conversations[i]``: the whole reply (end-of-turn included) when
        ``complete``, else its beginning (no end-of-turn). One row per conversation, one value
        per reply of that row (rows may differ in length)."""
        replies = list(replies)
        if any(isinstance(row, str) for row in replies):
            raise UserInputError("score_replies takes one LIST of replies per conversation, not a string")
        conversations, rows = list(conversations), [list(row) for row in replies]
        if len(rows) != len(conversations):
            raise UserInputError(f"score_replies got {len(rows)} rows of replies for {len(conversations)} conversations")
        if not conversations:
            return []
        prompts = [self.prompt_ids(c) for c in conversations]
        continuations = [
            [self.continuation_ids(c, reply, prompt, complete) for reply in row]
            for c, row, prompt in zip(conversations, rows, prompts)
        ]
        return self._score_tokens(prompts, continuations)

    def score_options(self, conversations: Sequence[Conversation], options: Sequence[str]) -> list[list[float]]:
        """Log-probability (natural log, summed over tokens) of each option being the whole
        assistant reply to each conversation; one row per conversation, one column per option:
        `score_replies` with the same options on every row."""
        options = list(options)
        if not conversations:
            return []
        if not options:
            raise UserInputError("score_options needs at least one option")
        return self.score_replies(conversations, [options] * len(conversations), complete=True)

    def score_token_continuations(
        self, prompts: Sequence[Sequence[int]], continuations: Sequence[Sequence[Sequence[int]]]
    ) -> list[list[float]]:
        """log p(continuation | prompt), summed over the continuation's tokens, for token ids:
        ``continuations[i]`` are scored after ``prompts[i]`` (the engine of `score_replies`,
        without the chat template). An empty continuation scores 0."""
        prompts = [list(p) for p in prompts]
        continuations = [[list(c) for c in row] for row in continuations]
        if len(prompts) != len(continuations):
            raise UserInputError(f"{len(continuations)} rows of continuations for {len(prompts)} prompts")
        if any(not p for p in prompts):
            raise UserInputError("every prompt needs at least one token")
        return self._score_tokens(prompts, continuations)

    def _score_tokens(self, prompts: list[list[int]], continuations: list[list[list[int]]]) -> list[list[float]]:
        """The one scoring implementation: chunks of ``batch_size`` prompts (sorted by length),
        each chunk scored by `_score_chunk`."""
        if not prompts:
            return []
        items = [_score_item(p, c) for p, c in zip(prompts, continuations)]
        scores: list[list[float]] = [[0.0] * item.width for item in items]
        order = sorted((i for i, item in enumerate(items) if item.rests), key=lambda i: len(items[i].prompt))
        self.stats.score_calls += 1
        self.stats.score_conversations += len(items)
        progress.advance(len(items) - len(order))  # nothing to run for them
        # batch_size prompts per pass; the continuations' pass then has one row per continuation,
        # but only the continuations' tokens after their common prefix
        per_chunk = self.batch_size
        started = time.perf_counter()
        for start in range(0, len(order), per_chunk):
            chunk = order[start : start + per_chunk]
            try:
                rows = self._score_chunk([items[i] for i in chunk])
            except RuntimeError as exc:
                raise BackendError(f"model {self.name!r}: scoring failed ({_one_line(exc)})") from exc
            for index, row in zip(chunk, rows):
                for column, value in zip(items[index].columns, row):
                    scores[index][column] = value
            progress.advance(len(chunk))
        self._count("score_ms", int((time.perf_counter() - started) * 1000))
        return scores

    def _forward(self, keep: int | None = None, cache: Any = None, **inputs: Any) -> tuple[Any, Any]:
        """``model(**inputs)``, computing only the last ``keep`` columns' logits where the model
        supports ``logits_to_keep`` (transformers' causal LMs do; the full vocabulary for every
        prompt column would cost more than the rest of the pass). Returns the output and its KV
        cache. transformers renamed ``past_key_values`` to ``cache`` (5.x, the old name goes in
        5.40): the model's own signature says which name it speaks, so neither deprecated name
        nor its warning is used where the new one exists."""
        if self._forward_params is None:
            import inspect

            self._forward_params = frozenset(inspect.signature(self.model.forward).parameters)
        if keep is not None and "logits_to_keep" in self._forward_params:
            inputs["logits_to_keep"] = keep
        new_name = "cache" in self._forward_params
        if cache is not None:
            inputs["cache" if new_name else "past_key_values"] = cache
        out = self.model(**inputs)
        return out, (getattr(out, "cache", None) if new_name else getattr(out, "past_key_values", None))

    def _score_chunk(self, items: list[_ScoreItem]) -> list[list[float]]:
        """Per item, the log-probability of each of its rests (in ``item.rests`` order) after its
        prompt; every item has at least one rest. Two passes: the prompts (which also score each
        rest's first token), then the rests' remaining tokens on copies of the prompts' cache."""
        import torch

        with torch.inference_mode():
            keep = max(len(item.prefix) for item in items) + 1
            width = max(len(rest) for item in items for rest in item.rests) - 1  # of the second pass
            out, cache, mask = self._prompt_pass(items, keep, width)
            prompt_logp = torch.log_softmax(out.logits[:, -keep:, :].float(), dim=-1)  # column keep-1 predicts the first rest token
            totals = [torch.zeros(len(item.rests), dtype=torch.float64) for item in items]
            for b, item in enumerate(items):
                c = len(item.prefix)
                if c:
                    cols = torch.arange(keep - 1 - c, keep - 1)
                    totals[b][:] += prompt_logp[b, cols, torch.tensor(item.prefix)].double().sum().cpu()
                firsts = torch.tensor([rest[0] for rest in item.rests])
                totals[b][:] += prompt_logp[b, keep - 1, firsts].double().cpu()
            if width > 0:
                self._rest_pass(items, cache, mask, width, totals)
        return [t.tolist() for t in totals]

    def _prompt_pass(self, items: list[_ScoreItem], keep: int, width: int) -> tuple[Any, Any, Any]:
        """The (extended) prompts, once each, left-padded so they all end at the last column; the
        logits of the last ``keep`` columns. Prompts of one task share a long token prefix (system
        prompt, preamble, question, instructions): that prefix runs once, its cache is copied to
        every row, and only the remainders run per prompt. Returns the output, its KV cache and
        the mask."""
        import torch

        prompts = [item.prompt for item in items]
        shared = min(_common_prefix_len(prompts), min(len(p) for p in prompts) - keep)
        if len(items) > 1 and shared >= MIN_SHARED_PREFIX:
            head = torch.tensor([prompts[0][:shared]], device=self.device)
            _, cache = self._forward(1, input_ids=head, use_cache=True)
            cache.batch_repeat_interleave(len(items))
            ids, rest_mask, _ = self._left_pad([p[shared:] for p in prompts])
            mask = torch.cat([torch.ones((len(items), shared), dtype=rest_mask.dtype, device=rest_mask.device), rest_mask], dim=1)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, shared:]
            out, cache = self._forward(keep, cache, input_ids=ids, attention_mask=mask, position_ids=positions,
                                       use_cache=True)
            self._count("shared_prefix_tokens", shared)
            self._count("prompt_tokens", int(rest_mask.sum()) + shared)
        else:
            ids, mask, positions = self._left_pad(prompts)
            out, cache = self._forward(keep, input_ids=ids, attention_mask=mask, position_ids=positions,
                                       use_cache=width > 0)
            self._count("prompt_tokens", int(mask.sum()))
        return out, cache, mask

    def _rest_pass(self, items: list[_ScoreItem], cache: Any, mask: Any, width: int, totals: list[Any]) -> None:
        """The rests' remaining tokens, right-padded, each on a copy of its prompt's cache; their
        log-probabilities are added to ``totals``."""
        import torch

        row_of = [b for b, item in enumerate(items) for _ in item.rests]
        cache.batch_select_indices(torch.tensor(row_of, dtype=torch.long, device=self.device))
        rows = len(row_of)
        rest_ids = torch.full((rows, width), self.pad_id, dtype=torch.long)
        rest_mask = torch.zeros((rows, width), dtype=torch.long)
        rest_pos = torch.zeros((rows, width), dtype=torch.long)
        lengths = mask.sum(-1).tolist()
        r = 0
        for b, item in enumerate(items):
            for rest in item.rests:
                fed = rest[:-1]  # the last token is predicted, never fed
                if fed:
                    rest_ids[r, : len(fed)] = torch.tensor(fed)
                    rest_mask[r, : len(fed)] = 1
                rest_pos[r] = lengths[b] + torch.arange(width)
                r += 1
        full_mask = torch.cat([mask[torch.tensor(row_of, device=mask.device)], rest_mask.to(self.device)], dim=1)
        out, _ = self._forward(None, cache, input_ids=rest_ids.to(self.device), attention_mask=full_mask,
                               position_ids=rest_pos.to(self.device), use_cache=True)
        rest_logp = torch.log_softmax(out.logits.float(), dim=-1)
        self._count("option_tokens", int(rest_mask.sum()))
        r = 0
        for b, item in enumerate(items):
            for j, rest in enumerate(item.rests):
                if len(rest) > 1:
                    targets = torch.tensor(rest[1:], device=rest_logp.device)
                    cols = torch.arange(len(rest) - 1, device=rest_logp.device)
                    totals[b][j] += rest_logp[r, cols, targets].double().sum().cpu()
                r += 1

    def _count(self, key: str, value: int) -> None:
        self.stats.extra[key] = self.stats.extra.get(key, 0) + value


MIN_SHARED_PREFIX = 16  # tokens; below this a separate prefix pass costs more than it saves (the one
# threshold of every scoring path: score_options, score_replies, score_token_continuations)


def _common_prefix_len(rows: list[list[int]]) -> int:
    first = rows[0]
    n = min(len(r) for r in rows)
    for i in range(n):
        t = first[i]
        if any(r[i] != t for r in rows):
            return i
    return n
