"""Searches: procedures that ask the model until they find inputs with a wanted label.

Why a package apart from sce_checks/metrics/: a search calls the model (it spends predictions,
batches them and can raise `BackendError` on malformed answers), while a metric is a pure function
of values already known (metrics/: gower, minimality, faithfulness, stats, text_distance).

- `sce_checks.search.grid`: the exact ring search on a grid task (`BoundarySearch`,
  `NearestResult`, `exhaustive_nearest`): the reference minimal counterfactual x* and ICF_A's
  nearest target point (Mayne et al. 2025) without predicting the whole grid.
- `sce_checks.search.text`: the bounded minimal-edit search on free text (`search_minimal_edit`)
  and the redundancy of an SCE's changes (`redundancy`).

Both take a prediction callable, never a model or a `Predictor`, so they can be run on any
labelling function (a rule, a memo, a backend):

- ``labels(inputs) -> [label | None, ...]``: batched, one label per input in order, None when the
  model's reply named no option. `BoundarySearch` (its ``oracle``) and `redundancy` need only
  this; the checks pass `Predictor.labels`.
- ``predict(texts) -> [(label | None, probs | None), ...]``: `search_minimal_edit` also orders its
  beam by the target option's probability when the backend scores options (``probs``: option ->
  probability; None without option scores), which labels alone cannot give.

This package's __init__ imports nothing, so importing one search does not import the other.
"""
