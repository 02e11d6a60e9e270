"""The ``hf:<hub id or local dir>`` backend: a transformers causal LM driven through its chat
template.

* ``chat``: left-padded batched generation in chunks of ``batch_size`` (conversations sorted by
  prompt length so a chunk holds similar lengths; the order of the replies is restored). The
  token prefix a chunk's prompts share (system prompt, task text) runs once and is handed to
  ``generate`` as a filled KV cache for every row (remembered between calls, with the scoring
  prefixes). Greedy at temperature 0. At temperature > 0 with a seed, every row draws with its
  OWN generator, seeded by `sce_checks.models.base.conversation_seed` (the run's seed, the
  sample index and the conversation): ``generate`` runs greedily and a `SeededSampler`
  (sce_checks/models/sampling.py), the last logits processor, applies temperature and top-p
  and leaves only the row's drawn token, so a reply does not depend on the batch it was drawn
  in (its size, its other rows, their order) and a rerun draws it again. At temperature > 0
  without a seed, transformers' own sampling from torch's global generator (not reproducible,
  and not cached). With ``Decoding.stop_after_json`` a row ends at the close of its first readable
  JSON object (sce_checks/models/json_stop.py). With ``Decoding.json_schema`` set, every reply
  is constrained to that schema by grammar-constrained decoding (llguidance, imported only then;
  sce_checks/models/constrained.py): a logits processor in the same batched ``generate`` call
  keeps one matcher per row and masks each step's logits to the tokens the schema allows,
  compact JSON (no whitespace outside strings); once the JSON value is complete only a stop id
  is allowed, so the reply is the JSON text itself. Greedy and sampled decoding alike.
  ``stats.extra`` counts ``constrained_replies`` and ``constrained_unfinished`` (replies cut by
  ``max_new_tokens`` before the value closed). The schema constraint runs before the seeded
  sampler, so a constrained reply is sampled among the tokens the schema allows.
* ``score_replies`` (the scoring primitive of `sce_checks.models.base`): the log-probability
  of given assistant replies to each conversation, each row its own list of replies. A reply is
  scored as the tokens the chat template writes for an assistant turn after the generation
  prompt: with ``complete=True`` up to and including the end-of-turn token, so "Yes" and
  "Yes, but" are told apart (the reply is the WHOLE reply); with ``complete=False`` without it
  (the reply's beginning, e.g. an explanation cut by its token budget; an empty reply then
  scores 0). ``score_options`` is ``score_replies`` with the same options on every row and
  ``complete=True``. One batched implementation (``_score_tokens``, also reachable on token ids
  as `HFChatModel.score_token_continuations`): the token prefix all prompts of the call share
  (system prompt, instructions, the start of the text; at least ``MIN_SHARED_PREFIX`` tokens)
  runs ONCE, and is remembered for the next calls; the prompts, sorted by length, are cut into
  chunks of about ``SCORE_TOKENS_PER_PASS`` tokens (scaled with ``batch_size``), and each chunk
  is ONE forward pass on the prefix's cache: per row the prompt's remainder (extended by its
  replies' common token prefix), left-padded, then one segment per reply (its tokens but the
  last), which a 4-D attention mask lets see the prompt and itself but no other reply. Logits
  are kept only for the trailing scored columns (``logits_to_keep``), log-softmax in fp32, sums
  in float64. Both scoring methods take ``temperature=T`` (``tempered_scoring``): each token's
  log-probability from log_softmax(logits / T), the distribution the sampler draws from at T
  (before top-p); T = 1, the default, is the model's own distribution. On CPU the attention runs torch's SDPA with grouped key/value heads as they are
  (`_sdpa_gqa_attention`), not repeated into copies.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from sce_checks import optional, progress
from sce_checks.config import default
from sce_checks.errors import BackendError, UserInputError
from sce_checks.models.base import CallStats, Conversation, Decoding, conversation_seed, scoring_temperature
from sce_checks.models.fingerprint import parameters_fingerprint, remembered_folder_fingerprint
from sce_checks.models.gguf import converted_folder, gguf_file, gguf_sha256, quiet_progress
from sce_checks.models.identity import (chat_template, gguf_converted_folder, hf_folder, keyed_settings, spec_identity,
                                        transformers_identity)
from sce_checks.models.lazy import LazyModel

__all__ = ["MIN_SHARED_PREFIX", "HFChatModel", "load", "load_lazily", "quiet_progress", "require_torch",
           "resolve_device", "resolve_dtype"]


def resolve_device(device: str | None) -> str:
    """``None``/``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``; anything else as given."""
    torch = optional.torch()

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str | None, device: str) -> Any:
    """``None`` -> float32 on CPU/MPS (exact, and what the SCE papers used), bfloat16 on CUDA
    (`sce_checks.models.identity.default_dtype`)."""
    torch = optional.torch()

    return getattr(torch, keyed_settings(device, dtype)[1])


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
        chat_template: str | None = None,
    ) -> None:
        """Wrap an already-loaded ``model`` (on its device, in its dtype) and ``tokenizer``.

        ``fingerprint`` defaults to one of ``path``'s files when given (remembered by their
        path, size and mtime), else to a hash of the parameters themselves. ``device`` and
        ``dtype`` are the settings the identity keys (as requested, ``"auto"`` where not given:
        sce_checks/models/identity.py); None keys the model's own device and dtype.
        ``chat_template``: the sha256 of a template given with ``--chat-template`` (identity key).
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
        self.chat_template_sha256 = chat_template
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
        self.score_tokens = SCORE_TOKENS_PER_PASS * max(1, self.batch_size // 8)
        self._heads: list[tuple[list[int], list[tuple[Any, Any]]]] = []  # remembered shared-prefix caches
        _use_gqa_sdpa(self.model)

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, path_or_id: str, options: Any, name: str | None = None, *, path: str | None = None,
                        fingerprint: str | None = None) -> "HFChatModel":
        """Load tokenizer and model from a local folder or a hub id (the same code path: files
        already in the local Hugging Face cache load offline). ``options`` is a `ModelOptions`;
        ``name`` (default ``path_or_id``) names the model in its identity and errors; ``path``
        and ``fingerprint`` (a GGUF's file and sha256) replace the folder's in the identity.
        ``--chat-template`` (``options.extra``) replaces the model's template; a model left with
        none (a base model) is one `UserInputError` line saying so."""
        torch = optional.torch()

        device = resolve_device(options.device)
        dtype = resolve_dtype(options.dtype, device)
        label = name or f"hf:{path_or_id}"
        template = chat_template(options)  # a bad --chat-template file is reported before loading
        tokenizer, model = _load_pretrained(path_or_id, dtype, bool(options.trust_remote_code), label)
        if template is not None:
            tokenizer.chat_template = template[0]
        if not getattr(tokenizer, "chat_template", None):
            raise UserInputError(f"model '{label}' has no chat template (a base model?); sce-checks asks in chat "
                                 "turns: pass --chat-template FILE, a Jinja chat template")
        try:
            model = model.to(torch.device(device))
        except (RuntimeError, AssertionError) as exc:
            raise UserInputError(f"model '{label}': device {device!r} is not usable ({_one_line(exc)})") from None
        return cls(model, tokenizer, name=name or path_or_id, path=path or hf_folder(path_or_id),
                   batch_size=options.batch_size, fingerprint=fingerprint, device=options.device or "auto",
                   dtype=options.dtype or "auto", chat_template=template[1] if template else None)

    def identity(self) -> dict[str, Any]:
        """What the answers depend on (sce_checks/models/identity.py: the same identity a lazy
        model computes from the files before loading)."""
        return transformers_identity(name=self.name, path=self.path, fingerprint=self.fingerprint,
                                     device=self.keyed_device, dtype=self.keyed_dtype, batch_size=self.batch_size,
                                     chat_template=self.chat_template_sha256)

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
        torch = optional.torch()

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
        torch = optional.torch()

        if not conversations:
            return []
        prompts = [self.prompt_ids(c) for c in conversations]
        stops = self.stop_ids()
        settings = self._generation_settings(decoding, stops)
        seeds = None
        if decoding.temperature > 0 and decoding.seed is not None:  # a generator per row (models/sampling.py)
            seeds = [conversation_seed(decoding, c) for c in conversations]
        schema = decoding.json_schema
        if schema is not None:
            self.constrainer().matcher(schema)  # compile (or find) the grammar before generating anything
        replies: list[str] = [""] * len(conversations)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        self.stats.chat_calls += 1
        self.stats.chat_conversations += len(conversations)
        stop_set = set(stops)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            ids, mask, extra = self._generation_inputs([prompts[i] for i in chunk])
            processor, json_end = self._chunk_controls(decoding, [seeds[i] for i in chunk] if seeds else None,
                                                       len(chunk), ids.shape[1], extra)
            try:
                with torch.inference_mode():
                    out = self.model.generate(input_ids=ids, attention_mask=mask, **settings, **extra)
            except (RuntimeError, ValueError) as exc:
                raise BackendError(f"model {self.name!r}: generation failed ({_one_line(exc)})") from exc
            generated = [out[row, ids.shape[1] :].tolist() for row in range(len(chunk))]
            if json_end is not None:
                generated = [json_end.cut(row, tokens) for row, tokens in enumerate(generated)]
                self._count("json_stopped_replies", sum(1 for end in json_end.stopped_at if end is not None))
            if processor is not None:
                complete = processor.finish(generated)
                self._count("constrained_replies", len(chunk))
                if not all(complete):
                    self._count("constrained_unfinished", complete.count(False))
            for row, index in enumerate(chunk):
                new = generated[row]
                for cut, token in enumerate(new):
                    if token in stop_set:
                        new = new[:cut]
                        break
                self._count("generated_tokens", len(new))
                replies[index] = self.tokenizer.decode(new, skip_special_tokens=True).strip()
            progress.advance(len(chunk))
        return replies

    def _generation_settings(self, decoding: Decoding, stops: list[int]) -> dict[str, Any]:
        """``generate``'s decoding arguments: greedy at temperature 0, and for a seeded sampled
        request too (its `SeededSampler` draws, the greedy step takes the one token it leaves);
        transformers' own sampling for an unseeded one (torch's global generator)."""
        settings: dict[str, Any] = {"max_new_tokens": decoding.max_new_tokens, "eos_token_id": stops,
                                    "pad_token_id": self.pad_id}
        if decoding.temperature > 0 and decoding.seed is None:
            settings.update(do_sample=True, temperature=decoding.temperature, top_p=decoding.top_p, top_k=0)
        else:
            settings.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return settings

    def _chunk_controls(self, decoding: Decoding, seeds: list[int] | None, rows: int, width: int,
                        extra: dict[str, Any]) -> tuple[Any, Any]:
        """Put the logits processors and stopping criterion of one chunk of ``rows`` prompts
        ``width`` columns wide into ``extra``: the schema constraint, then the seeded sampler (it
        draws from what the constraint allows), and the JSON-end criterion. Returns the
        constraint processor and the criterion (None where not used)."""
        transformers = optional.transformers() if (decoding.json_schema or seeds or decoding.stop_after_json) else None
        processors = []
        processor = None
        if decoding.json_schema is not None:
            processor = self.constrainer().processor(decoding.json_schema, rows, width)
            processors.append(processor)
        if seeds is not None:
            from sce_checks.models.sampling import SeededSampler  # imports torch and transformers

            processors.append(SeededSampler(seeds, decoding.temperature, decoding.top_p))
        if processors:
            extra["logits_processor"] = transformers.LogitsProcessorList(processors)
        json_end = None
        if decoding.stop_after_json:
            from sce_checks.models.json_stop import JsonObjectEnd  # imports torch and transformers

            json_end = JsonObjectEnd(self.tokenizer, rows, width)
            extra["stopping_criteria"] = transformers.StoppingCriteriaList([json_end])
            if processor is not None:
                processor.stopped = json_end.stopped_at
        return processor, json_end

    def _generation_inputs(self, prompts: list[list[int]]) -> tuple[Any, Any, dict[str, Any]]:
        """``generate``'s input ids, attention mask and cache for a chunk of prompts. The token
        prefix they share (system prompt, task text: `_shared_head`) is run once and its keys
        and values handed to ``generate`` as a filled cache for every row; the rest of each
        prompt is left-padded after it (position ids follow the mask, so each row's positions
        continue the prefix without gaps)."""
        torch = optional.torch()

        head = self._shared_head(prompts, min(len(p) for p in prompts) - 1)
        if head is None:
            ids, mask, _ = self._left_pad(prompts)
            return ids, mask, {}
        tokens, layers = head
        rows = len(prompts)
        rest_ids, rest_mask, _ = self._left_pad([p[len(tokens):] for p in prompts])
        ids = torch.cat([torch.tensor([tokens] * rows, dtype=torch.long, device=rest_ids.device), rest_ids], dim=1)
        mask = torch.cat([torch.ones((rows, len(tokens)), dtype=rest_mask.dtype, device=rest_mask.device), rest_mask], dim=1)
        return ids, mask, {_generate_cache_name(): self._head_cache(head, rows)}

    def constrainer(self) -> Any:
        """The llguidance state of this model (tokenizer wrapper, compiled grammars), built once."""
        if self._constrainer is None:
            from sce_checks.models.constrained import Constrainer  # imports llguidance, only when used

            self._constrainer = Constrainer(self.tokenizer, self.stop_ids(), name=self.name)
        return self._constrainer

    # -- scoring ---------------------------------------------------------------------------

    #: ``score_replies`` and ``score_options`` take ``temperature=`` (sce_checks/models/base.py)
    tempered_scoring = True

    def score_replies(
        self, conversations: Sequence[Conversation], replies: Sequence[Sequence[str]], complete: bool = True,
        temperature: float = 1.0,
    ) -> list[list[float]]:
        """Log-probability (natural log, summed over tokens) of each of ``replies[i]`` as the
        assistant's reply to ``conversations[i]``: the whole reply (end-of-turn included) when
        ``complete``, else its beginning (no end-of-turn). One row per conversation, one value
        per reply of that row (rows may differ in length). At ``temperature`` T each token's
        log-probability is that of log_softmax(logits / T), what a sampler at T draws from."""
        temperature = scoring_temperature(temperature)
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
        return self._score_tokens(prompts, continuations, temperature)

    def score_options(self, conversations: Sequence[Conversation], options: Sequence[str],
                      temperature: float = 1.0) -> list[list[float]]:
        """Log-probability (natural log, summed over tokens) of each option being the whole
        assistant reply to each conversation; one row per conversation, one column per option:
        `score_replies` with the same options on every row (and the same ``temperature``)."""
        options = list(options)
        if not conversations:
            return []
        if not options:
            raise UserInputError("score_options needs at least one option")
        return self.score_replies(conversations, [options] * len(conversations), complete=True, temperature=temperature)

    def score_token_continuations(
        self, prompts: Sequence[Sequence[int]], continuations: Sequence[Sequence[Sequence[int]]],
        temperature: float = 1.0,
    ) -> list[list[float]]:
        """log p(continuation | prompt), summed over the continuation's tokens, for token ids:
        ``continuations[i]`` are scored after ``prompts[i]`` (the engine of `score_replies`,
        without the chat template), at ``temperature``. An empty continuation scores 0."""
        temperature = scoring_temperature(temperature)
        prompts = [list(p) for p in prompts]
        continuations = [[list(c) for c in row] for row in continuations]
        if len(prompts) != len(continuations):
            raise UserInputError(f"{len(continuations)} rows of continuations for {len(prompts)} prompts")
        if any(not p for p in prompts):
            raise UserInputError("every prompt needs at least one token")
        return self._score_tokens(prompts, continuations, temperature)

    def _score_tokens(self, prompts: list[list[int]], continuations: list[list[list[int]]],
                      temperature: float = 1.0) -> list[list[float]]:
        """The one scoring implementation (module docstring): the token prefix every prompt of
        the call shares runs once (its KV cache remembered for the next call), the prompts are
        sorted by length and cut into chunks of about `SCORE_TOKENS_PER_PASS` tokens, and each
        chunk is scored in ONE forward pass by `_score_chunk`."""
        if not prompts:
            return []
        items = [_score_item(p, c) for p, c in zip(prompts, continuations)]
        scores: list[list[float]] = [[0.0] * item.width for item in items]
        order = [i for i, item in enumerate(items) if item.rests]
        self.stats.score_calls += 1
        self.stats.score_conversations += len(items)
        progress.advance(len(items) - len(order))  # nothing to run for them
        started = time.perf_counter()
        try:
            # every prompt keeps the tokens whose logits are scored: its continuations' common
            # prefix and the token before it
            head = self._shared_head([items[i].prompt for i in order],
                                     min((len(items[i].prompt) - len(items[i].prefix) - 1 for i in order), default=0))
            # sorted by the length that remains after the shared prefix (the padding of a chunk)
            order.sort(key=lambda i: (len(items[i].prompt), max(len(r) for r in items[i].rests)))
            for chunk in self._score_chunks(order, items, len(head[0]) if head else 0):
                rows = self._score_chunk([items[i] for i in chunk], head, temperature)
                for index, row in zip(chunk, rows):
                    for column, value in zip(items[index].columns, row):
                        scores[index][column] = value
                progress.advance(len(chunk))
        except RuntimeError as exc:
            raise BackendError(f"model {self.name!r}: scoring failed ({_one_line(exc)})") from exc
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
            self._forward_params = frozenset(inspect.signature(self.model.forward).parameters)
        if keep is not None and "logits_to_keep" in self._forward_params:
            inputs["logits_to_keep"] = keep
        new_name = "cache" in self._forward_params
        if cache is not None:
            inputs["cache" if new_name else "past_key_values"] = cache
        out = self.model(**inputs)
        return out, (getattr(out, "cache", None) if new_name else getattr(out, "past_key_values", None))

    def _shared_head(self, prompts: list[list[int]], limit: int) -> tuple[list[int], list[tuple[Any, Any]]] | None:
        """(tokens, per-layer keys and values) of the token prefix all ``prompts`` share, at most
        ``limit`` tokens, run once with batch size 1; None when fewer than two prompts or under
        `MIN_SHARED_PREFIX` tokens. The last few heads are remembered: the prompts of one task
        share the same prefix call after call (a boundary search sends one call per ring, and
        the SCE requests start with the prediction prompt)."""
        if len(prompts) < 2:
            return None
        shared = min(_common_prefix_len(prompts), limit)
        for tokens, layers in self._heads:  # a remembered head all prompts start with, nearly as long
            n = len(tokens)
            if shared - _HEAD_SLACK <= n <= shared and prompts[0][:n] == tokens:
                self._count("shared_prefix_reused", 1)
                return tokens, layers
        if shared < MIN_SHARED_PREFIX:
            return None
        torch = optional.torch()

        tokens = prompts[0][:shared]
        with torch.inference_mode():
            _, cache = self._forward(1, input_ids=torch.tensor([tokens], device=self.device), use_cache=True)
        layers = [(layer.keys, layer.values) for layer in cache.layers]
        self._heads = [(tokens, layers)] + self._heads[: _HEADS_KEPT - 1]
        self._count("shared_prefix_tokens", shared)
        return tokens, layers

    def _score_chunks(self, order: list[int], items: list[_ScoreItem], shared: int) -> Iterator[list[int]]:
        """``order`` cut into chunks whose single pass holds at most ``score_tokens`` query
        tokens (rows x (longest remainder + rests)), and at most ``4 * score_tokens`` cached
        tokens (rows x (shared prefix + width)); at least one prompt per chunk."""
        chunk: list[int] = []
        remainder = segments = seg_width = 0
        for i in order:
            item = items[i]
            r = max(remainder, len(item.prompt) - shared)
            s = max(segments, len(item.rests))
            w = max(seg_width, max(len(rest) for rest in item.rests) - 1)
            width = r + (s * w if w > 0 else 0)
            rows = len(chunk) + 1
            if chunk and (rows * width > self.score_tokens or rows * (shared + width) > 4 * self.score_tokens):
                yield chunk
                chunk = []
                r = len(item.prompt) - shared
                s = len(item.rests)
                w = max(len(rest) for rest in item.rests) - 1
            chunk.append(i)
            remainder, segments, seg_width = r, s, w
        if chunk:
            yield chunk

    def _score_chunk(self, items: list[_ScoreItem], head: tuple[list[int], list[tuple[Any, Any]]] | None,
                     temperature: float = 1.0) -> list[list[float]]:
        """Per item, the log-probability of each of its rests (in ``item.rests`` order) after its
        prompt, in ONE forward pass over the chunk (every item has at least one rest). Row b
        holds, after the shared head's cached keys and values: the prompt's remainder,
        left-padded to the chunk's longest, then one segment per rest: the rest's tokens but its
        last (which is predicted, never fed), padded to the longest segment. A 4-D attention mask
        lets the remainder attend causally to the head and itself, and each segment to the head,
        the remainder and itself (never to another rest); position ids continue each prompt's
        real length in every segment. The first token of every rest is scored from the last
        remainder column; the continuations' common prefix from the columns before it."""
        torch = optional.torch()

        p = len(head[0]) if head else 0
        remainders = [item.prompt[p:] for item in items]
        rows = len(items)
        r_width = max(len(r) for r in remainders)
        n_seg = max(len(item.rests) for item in items)
        s_width = max(len(rest) for item in items for rest in item.rests) - 1  # tokens fed per segment
        q_width = r_width + (n_seg * s_width if s_width > 0 else 0)
        ids = torch.full((rows, q_width), self.pad_id, dtype=torch.long)
        positions = torch.zeros((rows, q_width), dtype=torch.long)
        allowed = torch.zeros((rows, q_width, p + q_width), dtype=torch.bool)
        diagonal = torch.arange(q_width)
        allowed[:, diagonal, p + diagonal] = True  # padding attends to itself (no empty softmax row)
        causal = torch.ones((q_width, q_width), dtype=torch.bool).tril()
        for b, (item, rem) in enumerate(zip(items, remainders)):
            pad = r_width - len(rem)
            ids[b, pad:r_width] = torch.tensor(rem)
            positions[b, pad:r_width] = torch.arange(p, p + len(rem))
            allowed[b, pad:r_width, :p] = True
            allowed[b, pad:r_width, p + pad : p + r_width] = causal[pad:r_width, pad:r_width]
            for j, rest in enumerate(item.rests):
                fed = rest[:-1]
                if not fed:
                    continue
                lo, hi = r_width + j * s_width, r_width + j * s_width + len(fed)
                ids[b, lo:hi] = torch.tensor(fed)
                positions[b, lo:hi] = torch.arange(p + len(rem), p + len(rem) + len(fed))
                allowed[b, lo:hi, : p + r_width] = allowed[b, r_width - 1, : p + r_width]
                allowed[b, lo:hi, p + lo : p + hi] = causal[: len(fed), : len(fed)]
        c_max = max(len(item.prefix) for item in items)
        keep = c_max + 1 + (q_width - r_width)  # the trailing columns whose logits are read
        with torch.inference_mode():
            cache = self._head_cache(head, rows)
            out, _ = self._forward(keep, cache, input_ids=ids.to(self.device), position_ids=positions.to(self.device),
                                   attention_mask=allowed[:, None].to(self.device), use_cache=cache is not None)
            logits = out.logits[:, -keep:, :].float()
            logp = torch.log_softmax(logits if temperature == 1.0 else logits / temperature, dim=-1)
            where_b, where_col, tokens, owners = [], [], [], []  # owners: (row, rest index or -1 for all)
            base = c_max  # the column (of the kept ones) that predicts each rest's first token
            for b, item in enumerate(items):
                c = len(item.prefix)
                for t, token in enumerate(item.prefix):
                    where_b.append(b), where_col.append(base - c + t), tokens.append(token), owners.append((b, -1))
                for j, rest in enumerate(item.rests):
                    where_b.append(b), where_col.append(base), tokens.append(rest[0]), owners.append((b, j))
                    for k, token in enumerate(rest[1:]):
                        col = base + 1 + j * s_width + k
                        where_b.append(b), where_col.append(col), tokens.append(token), owners.append((b, j))
            where = [torch.tensor(v, device=logp.device) for v in (where_b, where_col, tokens)]
            values = logp[where[0], where[1], where[2]].double().cpu().tolist()
        totals = [[0.0] * len(item.rests) for item in items]
        shared_part = [0.0] * rows
        for (b, j), value in zip(owners, values):
            if j < 0:
                shared_part[b] += value
            else:
                totals[b][j] += value
        self._count("prompt_tokens", sum(len(r) for r in remainders) + p)
        self._count("option_tokens", sum(len(rest) - 1 for item in items for rest in item.rests))
        self._count("padded_tokens", rows * q_width - sum(len(r) for r in remainders)
                    - sum(len(rest) - 1 for item in items for rest in item.rests))
        return [[shared_part[b] + t for t in row] for b, row in enumerate(totals)]

    def _head_cache(self, head: tuple[list[int], list[tuple[Any, Any]]] | None, rows: int) -> Any:
        """A shared head's keys and values as the KV cache of ``rows`` rows (expanded views, no
        copy); None without a head."""
        if not head:
            return None
        transformers = optional.transformers()

        return transformers.DynamicCache(ddp_cache_data=[(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1)) for k, v in head[1]],
                            config=self.model.config)

    def _count(self, key: str, value: int) -> None:
        self.stats.extra[key] = self.stats.extra.get(key, 0) + value


MIN_SHARED_PREFIX = 16  # tokens; below this a separate prefix pass costs more than it saves (the one
# threshold of every scoring path: score_options, score_replies, score_token_continuations)
SCORE_TOKENS_PER_PASS = 4096  # query tokens of one scoring pass at batch size 8 (scaled with it):
# large enough that the matrix products run near the machine's peak, small enough for the
# attention mask and the cached keys (benchmarks/bench_end_to_end.py measures it)
_HEADS_KEPT = 4  # shared-prefix caches remembered between scoring calls
_HEAD_SLACK = 16  # a remembered prefix is reused when at most this many tokens shorter than the shared one
_GQA_SDPA = "sce_sdpa_gqa"  # the attention implementation registered by `_use_gqa_sdpa`


def _sdpa_gqa_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
                        scaling: float | None = None, is_causal: bool | None = None, **kwargs: Any) -> tuple[Any, None]:
    """transformers' SDPA attention, but grouped-query heads are handed to torch's kernel as they
    are (``enable_gqa``) also when there is a mask: transformers repeats the key and value heads
    into copies on CPU whenever a mask is given (padding, scoring masks), which cost a fifth of a
    scoring pass. The same arithmetic; anything unusual goes to transformers' own function."""
    torch = optional.torch()
    sdpa_attention = optional.transformers("integrations.sdpa_attention")

    q_len, kv_len = query.shape[2], key.shape[2]
    causal = q_len > 1 and attention_mask is None and (is_causal if is_causal is not None else getattr(module, "is_causal", True))
    plain = (dropout == 0.0 or not module.training) and kwargs.get("softcap") is None and kwargs.get("position_bias") is None
    if not plain or key.shape[1] == query.shape[1] or (causal and kv_len != q_len) or query.device.type != "cpu":
        return sdpa_attention.sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    out = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, scale=scaling,
                                                           is_causal=bool(causal), enable_gqa=True)
    return out.transpose(1, 2).contiguous(), None


def _use_gqa_sdpa(model: Any) -> None:
    """Run ``model``'s attention through `_sdpa_gqa_attention` when it uses transformers' SDPA
    attention on CPU (other implementations and devices are left as they are)."""
    config = getattr(model, "config", None)
    if getattr(config, "_attn_implementation", None) != "sdpa" or next(model.parameters()).device.type != "cpu":
        return
    try:
        transformers = optional.transformers()
        masking_utils = optional.transformers("masking_utils")

        transformers.AttentionInterface.register(_GQA_SDPA, _sdpa_gqa_attention)
        masking_utils.AttentionMaskInterface.register(_GQA_SDPA, masking_utils.sdpa_mask)
        model.set_attn_implementation(_GQA_SDPA)
    except (ImportError, AttributeError, ValueError):  # a transformers without these hooks: its own SDPA
        return


def _generate_cache_name() -> str:
    """The name ``generate`` takes a filled KV cache by: ``cache`` since transformers 5 renamed
    it (``past_key_values`` is deprecated there), ``past_key_values`` before."""
    try:
        generation_utils = optional.transformers("generation.utils")
    except ImportError:
        return "past_key_values"
    return "cache" if "cache" in generation_utils.ALL_CACHE_NAMES else "past_key_values"


def _common_prefix_len(rows: list[list[int]]) -> int:
    first = rows[0]
    n = min(len(r) for r in rows)
    for i in range(n):
        t = first[i]
        if any(r[i] != t for r in rows):
            return i
    return n


# -- the loader its declaration names (sce_checks/models/catalog.py: HF) ---------------------------------

def load(spec: Any, options: Any, lazily: bool = False) -> Any:
    """The model of ``hf:<hub id or local dir>`` (a parsed `Spec`, `ModelOptions`); with
    ``lazily``, one built by its first request when its files give its identity (`load_lazily`).
    A GGUF (``hf:model.gguf``, a folder holding one) is converted once (sce_checks/models/gguf.py)
    and loaded from the converted folder, known by the GGUF's path and sha256."""
    lazy = load_lazily(spec, options, load) if lazily else None
    if lazy is not None:
        return lazy
    require_torch(spec)
    source = gguf_file(spec.target)
    if source is None:
        return HFChatModel.from_pretrained(spec.target, options)
    folder = converted_folder(source, gguf_converted_folder(source))
    return HFChatModel.from_pretrained(str(folder), options, name=spec.target, path=str(source),
                                       fingerprint=gguf_sha256(source))


def _load_pretrained(path_or_id: str, dtype: Any, trust: bool, label: str) -> tuple[Any, Any]:
    """(tokenizer, model) from transformers' ``from_pretrained``; what it refuses is one line."""
    transformers = optional.transformers()

    try:
        with quiet_progress():
            tokenizer = transformers.AutoTokenizer.from_pretrained(path_or_id, trust_remote_code=trust)
            model = transformers.AutoModelForCausalLM.from_pretrained(path_or_id, dtype=dtype, trust_remote_code=trust)
    except OSError as exc:  # missing folder, unknown/uncached repo, missing weights files
        raise UserInputError(
            f"model 'hf:{path_or_id}' could not be loaded: it is neither a local folder with "
            f"model weights nor a model in the local Hugging Face cache ({_one_line(exc)}); "
            "pass a folder holding config.json, the tokenizer files and the weights "
            f"(*.safetensors) or a .gguf file, or download the model once with `hf download {path_or_id}` "
            "(with HF_HUB_OFFLINE=1 set, nothing is fetched)"
        ) from None
    except ValueError as exc:  # unknown architecture, refused remote code, broken tokenizer files
        raise UserInputError(f"model '{label}' could not be loaded by transformers: {_one_line(exc)}") from None
    return tokenizer, model


def load_lazily(spec: Any, options: Any, build: Any) -> LazyModel | None:
    """A transformers backend whose identity its files give (a local folder, a hub model in the
    local cache, smollm2 once converted: sce_checks/models/identity.py), built by ``build(spec,
    options)`` on its first request (`LazyModel`), so a rerun answered wholly from the response
    cache imports neither torch nor transformers; None when its files are not there yet."""
    try:
        identity = spec_identity(spec, options)
    except OSError:  # files that cannot be read: loading says what is wrong with them
        identity = None
    if identity is None:
        return None
    return LazyModel(identity, lambda: build(spec, options), HFChatModel)


def require_torch(spec: Any) -> None:
    """`UserInputError` naming the spec when torch or transformers cannot be imported."""
    optional.torch(f"model spec {str(spec)!r}")
    optional.transformers(needed_for=f"model spec {str(spec)!r}")
