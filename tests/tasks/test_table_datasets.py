"""Text datasets from Parquet files, ``save_to_disk`` folders and the local Hugging Face datasets
cache, built small in tmp_path: the same column mapping and rules as the CSV reader, one line per
bad file or column before any model call, and one line naming the ``data`` extra when pyarrow or
datasets is missing."""

from __future__ import annotations

import pytest

from sce_checks import optional
from sce_checks.errors import UserInputError
from sce_checks.tasks import load_task, load_text_dataset

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
datasets = pytest.importorskip("datasets")

ROWS = {"id": ["r1", "r2", "r3"], "text": ["Fine film.", "Dull.", "A delight."], "label": ["pos", "neg", "pos"]}


def parquet(tmp_path, columns: dict, name: str = "reviews.parquet"):
    path = tmp_path / name
    pq.write_table(pa.table(columns), path)
    return path


def class_label_dataset(rows: int = 3):
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    return datasets.Dataset.from_dict({"text": [f"text {i}" for i in range(rows)], "label": [i % 2 for i in range(rows)]},
                                      features=features)


def test_a_parquet_file_reads_like_the_csv(tmp_path):
    task = load_task(str(parquet(tmp_path, ROWS)))
    assert task.name == "reviews" and task.options == ("neg", "pos")
    assert [(e.id, e.text, e.gold) for e in task.examples] == list(zip(ROWS["id"], ROWS["text"], ROWS["label"]))


def test_a_parquet_file_written_by_datasets_keeps_its_class_names(tmp_path):
    path = tmp_path / "classes.parquet"
    class_label_dataset().to_parquet(str(path))
    task = load_task(str(path))
    assert [e.gold for e in task.examples] == ["neg", "pos", "neg"] and [e.id for e in task.examples] == ["row-1", "row-2", "row-3"]


def test_integer_labels_without_class_names_read_as_their_digits(tmp_path):
    task = load_task(str(parquet(tmp_path, {"text": ["a", "b"], "label": [0, 1]})))
    assert task.options == ("0", "1")


def test_a_task_file_maps_the_columns_of_a_parquet_file(tmp_path):
    parquet(tmp_path, {"review": ["Good.", "Bad."], "stars": ["positive", "negative"], "date": ["x", "y"]})
    (tmp_path / "t.toml").write_text('name = "r"\nquestion = "Q?"\npreamble = "P."\noptions = ["negative", "positive"]\n'
                                     'data = "reviews.parquet"\ntext_field = "review"\nlabel_field = "stars"\n'
                                     'ignore_fields = ["date"]\n')
    task = load_task(str(tmp_path / "t.toml"))
    assert [(e.text, e.gold) for e in task.examples] == [("Good.", "positive"), ("Bad.", "negative")]


@pytest.mark.parametrize("columns, message", [
    ({"text": ["a"], "label": ["x"], "extra": [1]}, r"reviews\.parquet: unknown column 'extra'; accepted columns: id, text, label"),
    ({"body": ["a"], "label": ["x"]}, r"reviews\.parquet: unknown column 'body'"),
    ({"id": ["a"], "label": ["x"]}, r"reviews\.parquet: no 'text' column; columns are id, label"),
    ({"text": [1, 2], "label": ["x", "y"]}, r"reviews\.parquet: column 'text' holds int64; expected strings"),
    ({"text": ["a", "b"], "label": [0.5, 1.5]}, r"column 'label' holds double; expected strings or integers"),
    ({"text": ["a", "b"], "label": ["x", "y"], "id": [[1], [2]]}, r"column 'id' holds list<\w+: int64>; expected strings or integers"),
    ({"text": ["a", None], "label": ["x", "y"]}, r"reviews\.parquet: row 2: missing or empty 'text'"),
    ({"text": ["a", "b"], "label": ["x", "x"]}, r"found 1 distinct label"),
    ({"text": ["a", "b\x00c"], "label": ["x", "y"]}, r"row 2: 'text' holds a NUL character \(U\+0000\) at position 1"),
    ({"text": ["a", "b" * 20_001], "label": ["x", "y"]}, r"row 2: 'text' is 20,001 characters long \(at most 20,000\)"),
])
def test_each_bad_column_or_cell_is_one_line_naming_it(tmp_path, columns, message):
    with pytest.raises(UserInputError, match=message) as info:
        load_task(str(parquet(tmp_path, columns)))
    assert "\n" not in str(info.value)


def test_a_file_that_is_not_parquet_is_one_line(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"id,text\n1,a\n")
    with pytest.raises(UserInputError, match=r"broken\.parquet: not a readable Parquet file"):
        load_task(str(path))
    with pytest.raises(UserInputError, match=r"missing\.parquet: dataset file not found"):
        load_task(str(tmp_path / "missing.parquet"))


def test_a_saved_dataset_and_a_saved_dataset_dict_by_split(tmp_path):
    class_label_dataset().save_to_disk(str(tmp_path / "one"))
    assert [e.gold for e in load_task(str(tmp_path / "one")).examples] == ["neg", "pos", "neg"]
    datasets.DatasetDict({"train": class_label_dataset(4), "test": class_label_dataset(2)}).save_to_disk(str(tmp_path / "two"))
    with pytest.raises(UserInputError, match=r"two: 2 splits; name one of: train, test \(split = \"\.\.\.\" in a task file"):
        load_task(str(tmp_path / "two"))
    assert len(load_text_dataset(tmp_path / "two", split="test").examples) == 2
    with pytest.raises(UserInputError, match=r"two: no split 'dev'; name one of: train, test"):
        load_text_dataset(tmp_path / "two", split="dev")
    (tmp_path / "t.toml").write_text('name = "r"\nquestion = "Q?"\npreamble = "P."\noptions = ["neg", "pos"]\n'
                                     'data = "two"\nsplit = "train"\n')
    assert len(load_task(str(tmp_path / "t.toml")).examples) == 4


def test_a_folder_that_is_not_a_saved_dataset_is_one_line(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(UserInputError, match=r"a folder not written by datasets' save_to_disk"):
        load_task(str(tmp_path / "plain"))
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "state.json").write_text("{not json")
    with pytest.raises(UserInputError, match=r"fake: not a readable dataset folder") as info:
        load_task(str(tmp_path / "fake"))
    assert "\n" not in str(info.value)


def test_split_is_refused_for_a_csv(tmp_path):
    (tmp_path / "d.csv").write_text("text,label\na,x\nb,y\n")
    with pytest.raises(UserInputError, match=r"split and config apply to Hugging Face datasets only"):
        load_text_dataset(tmp_path / "d.csv", split="train")


class TinyReviews(datasets.GeneratorBasedBuilder):
    """A dataset as ``load_dataset`` leaves it in the cache (``<owner>___<name>/<config>/<version>/<hash>``)."""

    VERSION = datasets.Version("1.0.0")

    def _info(self):
        return datasets.DatasetInfo(features=class_label_dataset().features)

    def _split_generators(self, dl_manager):
        return [datasets.SplitGenerator(name="train", gen_kwargs={"n": 3}),
                datasets.SplitGenerator(name="test", gen_kwargs={"n": 2})]

    def _generate_examples(self, n):
        for i in range(n):
            yield i, {"text": f"cached {i}", "label": 1 - i % 2}


def test_a_dataset_in_the_local_cache_is_read_and_never_fetched(tmp_path, monkeypatch):
    cache = tmp_path / "hf-datasets"
    TinyReviews(cache_dir=str(cache), repo_id="acme/tiny_reviews", dataset_name="tiny_reviews",
                hash="0123abcd").download_and_prepare()
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    task = load_task("hf:acme/tiny_reviews:test")
    assert task.name == "tiny_reviews" and [(e.text, e.gold) for e in task.examples] == [("cached 0", "pos"), ("cached 1", "neg")]
    with pytest.raises(UserInputError, match=r"hf:acme/tiny_reviews: 2 splits; name one of: train, test"):
        load_task("hf:acme/tiny_reviews")
    with pytest.raises(UserInputError, match=r"hf:acme/not_there: not in the local Hugging Face datasets cache .* "
                                             r"sce-checks never downloads") as info:
        load_task("hf:acme/not_there")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("module", ["pyarrow", "datasets"])
def test_a_missing_library_is_one_line_naming_the_extra(tmp_path, monkeypatch, module):
    real = optional._load

    def missing(name, needed_for, install):
        if name.split(".")[0] == module:
            return real("no_such_module_" + module, needed_for, install)
        return real(name, needed_for, install)

    monkeypatch.setattr(optional, "_load", missing)
    source = str(parquet(tmp_path, ROWS)) if module == "pyarrow" else "hf:acme/anything"
    with pytest.raises(UserInputError, match=r"needs no_such_module_\w+, which is not importable .*pip install 'sce-checks\[data\]'"):
        load_task(source)


def test_an_audit_file_names_parquet_files_and_saved_folders_relative_to_itself(tmp_path, monkeypatch):
    from sce_checks.auditfile import load_audit_file

    audits = tmp_path / "audits"
    audits.mkdir()
    parquet(audits, ROWS)
    class_label_dataset().save_to_disk(str(audits / "saved"))
    (audits / "a.sce.toml").write_text('model = "smollm2"\ndatasets = ["reviews.parquet", "saved", "sentiment"]\n')
    monkeypatch.chdir(tmp_path)  # not the audit file's folder
    audit = load_audit_file(audits / "a.sce.toml")
    assert audit.spec.datasets == (str(audits / "reviews.parquet"), str(audits / "saved"), "sentiment")
