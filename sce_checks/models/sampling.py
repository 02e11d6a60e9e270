"""Seeded sampling for the ``hf`` backend: every row of a batch draws with its own generator.

transformers' sampling draws every row of a batch from torch's one global generator, so a row's
reply depends on the rows beside it, their number and their order. `SeededSampler` is a logits
processor that takes the draw over instead: ``generate`` runs greedily (``do_sample=False``), and
at each step the sampler

* divides the row's logits by the temperature, keeps the nucleus (the most probable tokens whose
  probability reaches ``top_p``; at least one) and renormalises, in float64;
* draws the token by inverting the cumulative distribution of the tokens in decreasing order of
  probability (ties in token order) at a uniform number from the row's OWN generator, a CPU
  ``torch.Generator`` seeded with the row's seed (`sce_checks.models.base.conversation_seed`);
* leaves only the drawn token unmasked, so the greedy step picks it.

So a row's reply depends on its seed and its own logits only: batched sampling gives what
unbatched sampling gives (up to the floating-point differences a batch makes in the logits,
which move a draw only when its uniform number falls within them of a boundary). The sampler
runs after every other logits processor, the grammar constraint of sce_checks/models/constrained.py
included: a token the constraint refused has probability 0 and is never drawn.
"""

from __future__ import annotations

from typing import Sequence

from sce_checks import optional

# imported by the hf backend only when it samples with a seed: torch is loaded by then
torch = optional.torch()
LogitsProcessor = optional.transformers().LogitsProcessor

__all__ = ["SeededSampler", "draw_tokens"]


def draw_tokens(logits: "torch.Tensor", temperature: float, top_p: float, uniforms: "torch.Tensor") -> "torch.Tensor":
    """The token each row of ``logits`` (rows x vocabulary) draws at ``uniforms`` (one number in
    [0, 1) per row): the inverse of the cumulative distribution of softmax(logits / temperature)
    restricted to its top-p nucleus, tokens in decreasing order of probability (module docstring)."""
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    ordered, order = probs.sort(dim=-1, descending=True, stable=True)
    if top_p < 1.0:
        before = ordered.cumsum(dim=-1) - ordered  # the mass of the more probable tokens
        ordered = ordered * (before < top_p)  # the first token is always kept
    cumulative = ordered.cumsum(dim=-1)
    target = uniforms.to(device=cumulative.device, dtype=cumulative.dtype)[:, None] * cumulative[:, -1:]
    index = torch.searchsorted(cumulative, target, right=True)
    last = (ordered > 0).sum(dim=-1, keepdim=True) - 1  # the least probable token still drawable
    return order.gather(1, torch.minimum(index, last.clamp(min=0))).squeeze(1)


class SeededSampler(LogitsProcessor):
    """Draws each row's next token with the row's own generator (module docstring). One per
    ``generate`` call; ``seeds[row]`` seeds row ``row`` of the batch."""

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float) -> None:
        if not temperature > 0:
            raise ValueError(f"SeededSampler needs a temperature above 0, got {temperature}")
        self.generators = [torch.Generator(device="cpu").manual_seed(int(seed)) for seed in seeds]
        self.temperature = float(temperature)
        self.top_p = float(top_p)

    def __call__(self, input_ids: "torch.Tensor", scores: "torch.Tensor") -> "torch.Tensor":
        if scores.shape[0] != len(self.generators):
            raise ValueError(f"SeededSampler got {scores.shape[0]} rows for {len(self.generators)} seeds")
        uniforms = torch.cat([torch.rand(1, generator=g, dtype=torch.float64) for g in self.generators])
        tokens = draw_tokens(scores, self.temperature, self.top_p, uniforms)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, tokens[:, None], 0.0)
        return out
