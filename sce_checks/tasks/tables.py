"""Text datasets held as Arrow tables: Parquet files, Hugging Face ``datasets`` folders written by
``save_to_disk``, and datasets in the local Hugging Face datasets cache (``hf:<name>``, never
downloaded). They end as the same records the CSV and JSONL readers give
(sce_checks/tasks/text.py), with the same column mapping (``text_field``, ``label_field``,
``id_field``, ``ignore_fields``) and the same rules; pyarrow and datasets come from the ``data``
extra, imported only here (through sce_checks/optional.py) and only for such a dataset.

Every column is checked against the table's schema before a row is read: an unknown column, a
missing text column or a column of a type that cannot be a text, a label or an id is one line
naming the file and the column. A label column of integers reads as the class names where the
table declares them (a ``datasets`` ``ClassLabel``, kept in a Parquet file's ``huggingface``
metadata), else as the integers' decimal text (as a CSV cell would). Row numbers in messages
count data rows from 1.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from sce_checks import optional
from sce_checks.errors import UserInputError

__all__ = ["HF_PREFIX", "SAVED_MARKERS", "is_table_source", "table_records"]

HF_PREFIX = "hf:"  # hf:<name>[:<split>]: a dataset in the local Hugging Face datasets cache
PARQUET_SUFFIX = ".parquet"
SAVED_MARKERS = ("dataset_dict.json", "state.json")  # what save_to_disk writes into its folder
_NEEDED_FOR = "a Parquet or Hugging Face dataset"


def is_table_source(source: str) -> bool:
    """Whether ``source`` names a dataset read here: a ``.parquet`` path, a folder written by
    ``save_to_disk``, or ``hf:<name>``."""
    if source.startswith(HF_PREFIX):
        return True
    path = Path(source)
    return path.suffix.lower() == PARQUET_SUFFIX or (path.is_dir() and any((path / m).is_file() for m in SAVED_MARKERS))


def table_records(source: str, shown: str, fields: Any, split: str | None = None,
                  config: str | None = None) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """The rows of ``source`` as ``(where, n, record)``, like the CSV reader's; ``fields`` is the
    column mapping (``text``, ``label``, ``id``, ``accepted``). ``split`` picks a split of a
    dataset with several (``hf:<name>:<split>`` names one too); ``config`` a cached dataset's
    configuration."""
    table, names = _load(source, shown, split, config)
    _check_columns(table.schema, shown, fields)
    label_names = names.get(fields.label)
    for n, row in enumerate(table.to_pylist(), start=1):
        where = f"{shown}: row {n}"
        label = row.get(fields.label)
        if isinstance(label, int) and not isinstance(label, bool):
            if label_names is not None and not 0 <= label < len(label_names):
                raise UserInputError(f"{where}: {fields.label!r} {label} is not a class of the column "
                                     f"(0 to {len(label_names) - 1}: {', '.join(label_names)})")
            row[fields.label] = label_names[label] if label_names is not None else str(label)
        yield where, n, row


def _load(source: str, shown: str, split: str | None, config: str | None) -> tuple[Any, dict[str, list[str]]]:
    """(an Arrow table, ClassLabel names by column) of a Parquet file, a saved or a cached dataset."""
    if source.startswith(HF_PREFIX):
        name, _, named_split = source[len(HF_PREFIX):].partition(":")
        dataset = _cached_dataset(name, shown, config)
        return _dataset_table(dataset, shown, split or named_split or None)
    if Path(source).suffix.lower() == PARQUET_SUFFIX and not Path(source).is_dir():
        return _parquet_table(source, shown)
    if not Path(source).is_dir():
        raise UserInputError(f"{shown}: not found")
    datasets = optional.datasets(_NEEDED_FOR)
    with _quiet(datasets):
        try:
            dataset = datasets.load_from_disk(source)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserInputError(f"{shown}: not a readable dataset folder (datasets' save_to_disk): {_one_line(exc)}") from None
    return _dataset_table(dataset, shown, split)


def _parquet_table(source: str, shown: str) -> tuple[Any, dict[str, list[str]]]:
    parquet = optional.pyarrow("parquet", _NEEDED_FOR)
    if not Path(source).is_file():
        raise UserInputError(f"{shown}: file not found")
    try:
        table = parquet.read_table(source)
    except (OSError, ValueError, KeyError, TypeError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise UserInputError(f"{shown}: not a readable Parquet file: {_one_line(exc)}") from None
    return table, _metadata_class_names(table.schema, shown)


def _metadata_class_names(schema: Any, shown: str) -> dict[str, list[str]]:
    """ClassLabel names that ``datasets`` keeps in a Parquet file's ``huggingface`` metadata."""
    raw = (schema.metadata or {}).get(b"huggingface")
    if raw is None:
        return {}
    try:
        features = json.loads(raw)["info"]["features"]
        return {column: [str(n) for n in f["names"]] for column, f in features.items()
                if isinstance(f, dict) and f.get("_type") == "ClassLabel" and isinstance(f.get("names"), list)}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise UserInputError(f"{shown}: its 'huggingface' metadata is not readable JSON features") from None


def _cached_dataset(name: str, shown: str, config: str | None) -> Any:
    """A dataset from the local Hugging Face datasets cache, by the builder that ``datasets``
    itself uses offline (it reads the cached Arrow files; it has no way to download)."""
    datasets = optional.datasets(_NEEDED_FOR)
    cache = optional.datasets(_NEEDED_FOR, "packaged_modules.cache.cache")
    if not name or name.count("/") > 1:
        raise UserInputError(f"{shown}: expected hf:<name> or hf:<owner>/<name>, optionally :<split>")
    with _quiet(datasets):
        try:
            builder = cache.Cache(dataset_name=name.split("/")[-1], repo_id=name, config_name=config,
                                  version="auto", hash="auto")
            return builder.as_dataset()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserInputError(
                f"{shown}: not in the local Hugging Face datasets cache ({datasets.config.HF_DATASETS_CACHE}): "
                f"{_one_line(exc)}; sce-checks never downloads: load it once with datasets.load_dataset({name!r}), "
                "or save it with save_to_disk and name the folder") from None


def _dataset_table(dataset: Any, shown: str, split: str | None) -> tuple[Any, dict[str, list[str]]]:
    """The Arrow table of a ``Dataset``, or of one split of a ``DatasetDict`` (``split``, or its
    only split), with the ClassLabel names of its features."""
    datasets = optional.datasets(_NEEDED_FOR)
    if isinstance(dataset, datasets.DatasetDict):
        splits = list(dataset)
        if split is None and len(splits) == 1:
            split = splits[0]
        if split not in dataset:
            what = f"no split {split!r}" if split is not None else f"{len(splits)} splits"
            raise UserInputError(f"{shown}: {what}; name one of: {', '.join(splits)} "
                                 "(split = \"...\" in a task file, or hf:<name>:<split>)")
        dataset = dataset[split]
    elif split is not None and str(getattr(dataset, "split", None) or split) != split:
        raise UserInputError(f"{shown}: holds one split ({dataset.split}), not {split!r}")
    names = {column: list(feature.names) for column, feature in dataset.features.items()
             if isinstance(feature, datasets.ClassLabel)}
    return dataset.with_format("arrow")[:], names


def _check_columns(schema: Any, shown: str, fields: Any) -> None:
    """Each column known to the mapping and of a type its role can hold; the text column present."""
    pyarrow = optional.pyarrow("", _NEEDED_FOR)
    types = pyarrow.types
    columns = list(schema.names)
    for column in columns:
        if column not in fields.accepted:
            raise UserInputError(f"{shown}: unknown column {column!r}; accepted columns: {', '.join(fields.accepted)} "
                                 "(to ignore a column, list it in ignore_fields of a task .toml)")
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if dupes:
        raise UserInputError(f"{shown}: duplicate column {dupes[0]!r}")
    if fields.text not in columns:
        raise UserInputError(f"{shown}: no {fields.text!r} column; columns are {', '.join(columns) or 'none'}")

    def text_type(kind: Any) -> bool:
        if types.is_dictionary(kind):
            kind = kind.value_type
        return types.is_string(kind) or types.is_large_string(kind) or getattr(types, "is_string_view", lambda _: False)(kind)

    roles = ((fields.text, "strings", text_type),
             (fields.label, "strings or integers (class indices)", lambda k: text_type(k) or types.is_integer(k)),
             (fields.id, "strings or integers", lambda k: text_type(k) or types.is_integer(k)))
    for column, expected, fits in roles:
        if column in columns and not types.is_null(schema.field(column).type) and not fits(schema.field(column).type):
            raise UserInputError(f"{shown}: column {column!r} holds {schema.field(column).type}; expected {expected}")


@contextmanager
def _quiet(datasets: Any) -> Iterator[None]:
    """No progress bars nor cache notes from ``datasets`` on the audit's output."""
    logging = datasets.utils.logging
    level = logging.get_verbosity()
    bars = datasets.utils.are_progress_bars_disabled()
    logging.set_verbosity_error()
    datasets.utils.disable_progress_bars()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if not bars:
            datasets.utils.enable_progress_bars()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:240]
