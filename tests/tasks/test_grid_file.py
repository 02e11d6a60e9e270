"""User grid task files (design contract 4): a valid round trip and one test per error message,
each checking that the message names the file and the key (users fix these files by hand)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sce_checks.errors import UserInputError
from sce_checks.metrics.gower import gower_distance
from sce_checks.tasks.grid_file import MAX_GRID_POINTS, load_grid_file

REPO = Path(__file__).resolve().parents[2]

HEAD = """\
name = "loan"
question = "Will this loan application be approved?"
preamble = "You will be given a loan application."
options = ["Rejected", "Approved"]
"""
INCOME = """\
[[features]]
name = "income"
label = "Yearly income (thousand dollars)"
type = "integer"
min = 10
max = 200
step = 10
"""
CREDIT = """\
[[features]]
name = "credit"
label = "Credit rating"
type = "ordinal"
values = ["poor", "fair", "good", "excellent"]
"""


def write(tmp_path: Path, text: str, name: str = "loan.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(UserInputError) as info:
        load_grid_file(path)
    message = str(info.value)
    assert message.startswith(str(path) + ":"), message  # names the file
    assert "\n" not in message
    return message


def test_valid_file_round_trip(tmp_path):
    path = write(tmp_path, HEAD + INCOME + CREDIT)
    task = load_grid_file(path)
    assert (task.name, task.options, task.source) == ("loan", ("Rejected", "Approved"), str(path))
    assert task.question == "Will this loan application be approved?"
    assert task.preamble == "You will be given a loan application."
    income, credit = task.features
    assert (income.name, income.label, income.type) == ("income", "Yearly income (thousand dollars)", "integer")
    assert income.values == tuple(range(10, 201, 10))
    assert credit.values == ("poor", "fair", "good", "excellent") and credit.type == "ordinal"
    assert task.size == 20 * 4
    assert task.render((30, "good")) == "- Yearly income (thousand dollars): 30\n- Credit rating: good"
    # Gower (Mayne et al. 2025, sec. 3): mean of |30-10|/190 and |2-0|/3 = (20/190 + 2/3) / 2
    assert gower_distance(task, (10, "poor"), (30, "good")) == pytest.approx((20 / 190 + 2 / 3) / 2)


def test_example_file_in_audits_loads():
    task = load_grid_file(REPO / "audits" / "examples" / "loan.grid.toml")
    assert [f.type for f in task.features] == ["integer", "ordinal", "categorical"]
    assert task.size == 240


def test_step_defaults_to_one_and_stops_below_max(tmp_path):
    task = load_grid_file(write(tmp_path, HEAD + """\
        [[features]]
        name = "a"
        label = "A"
        type = "integer"
        min = 0
        max = 10
        step = 4
        [[features]]
        name = "b"
        label = "B"
        type = "integer"
        min = -2
        max = 1
        [[features]]
        name = "c"
        label = "C"
        type = "categorical"
        values = ["only"]
        """))
    assert [f.values for f in task.features] == [(0, 4, 8), (-2, -1, 0, 1), ("only",)]


def test_toml_syntax_error_names_line(tmp_path):
    message = error_of(tmp_path, HEAD + "[[features]]\nname = \"x\"\nlabel = oops\n")
    assert "invalid TOML" in message and "line 7" in message


def test_missing_top_level_key(tmp_path):
    message = error_of(tmp_path, HEAD.replace('question = "Will this loan application be approved?"\n', "") + INCOME)
    assert message.endswith("question: missing required key")


def test_unknown_top_level_key_is_a_typo(tmp_path):
    message = error_of(tmp_path, HEAD + 'premble = "x"\n' + INCOME)
    assert "premble: unknown key" in message and "accepted keys: name, question, preamble" in message


def test_missing_features(tmp_path):
    assert error_of(tmp_path, HEAD).endswith("features: missing required key")


def test_empty_features(tmp_path):
    assert "features: expected one or more [[features]] tables" in error_of(tmp_path, HEAD + "features = []\n")


def test_wrong_type_for_name(tmp_path):
    message = error_of(tmp_path, HEAD.replace('name = "loan"', "name = 3") + INCOME)
    assert "name: expected a string, got integer 3" in message


@pytest.mark.parametrize(
    "options, expected",
    [
        ('["Rejected"]', "options: expected 2 to 10 options, got 1"),
        (str([f"O{i}" for i in range(11)]), "options: expected 2 to 10 options, got 11"),
        ('["Same", "Same"]', "options: duplicate option 'Same'"),
        ('["A", ""]', "options[1]: expected a non-empty string"),
        ('"A or B"', "options: expected an array of 2 to 10 strings, got string"),
    ],
)
def test_bad_options(tmp_path, options, expected):
    text = HEAD.replace('options = ["Rejected", "Approved"]', f"options = {options}") + INCOME
    assert expected in error_of(tmp_path, text)


def test_three_options_load(tmp_path):
    """A multi-class grid (docs/method.md): every option kept, in order, and usable as a DIR direction."""
    text = HEAD.replace('options = ["Rejected", "Approved"]', 'options = ["low", "medium", "high"]')
    task = load_grid_file(write(tmp_path, text + INCOME.replace('step = 10\n', 'step = 10\nincreases = "high"\n')))
    assert task.options == ("low", "medium", "high")
    assert task.features[0].increases == "high"
    with pytest.raises(ValueError, match="has 3 options; other_option needs two"):
        task.other_option("low")


def test_missing_options(tmp_path):
    text = HEAD.replace('options = ["Rejected", "Approved"]\n', "") + INCOME
    assert error_of(tmp_path, text).endswith("options: missing required key")


def test_unknown_feature_type(tmp_path):
    message = error_of(tmp_path, HEAD + INCOME + CREDIT.replace('"ordinal"', '"float"'))
    assert message.endswith("features[1].type: unknown type 'float'; expected integer, ordinal or categorical")


def test_unknown_feature_key(tmp_path):
    message = error_of(tmp_path, HEAD + INCOME.replace("label =", "lable ="))
    assert "features[0].lable: unknown key" in message and "name, label, type, min, max, step" in message


def test_values_on_integer_feature_is_unknown_key(tmp_path):
    message = error_of(tmp_path, HEAD + INCOME + 'values = ["a"]\n')
    assert "features[0].values: unknown key" in message


def test_missing_feature_key(tmp_path):
    assert error_of(tmp_path, HEAD + INCOME.replace("max = 200\n", "")).endswith("features[0].max: missing required key")
    assert error_of(tmp_path, HEAD + CREDIT.replace('type = "ordinal"\n', "")).endswith(
        "features[0].type: missing required key")


def test_float_bound_is_wrong_type(tmp_path):
    message = error_of(tmp_path, HEAD + INCOME.replace("min = 10", "min = 10.5"))
    assert "features[0].min: expected an integer, got float 10.5" in message


def test_boolean_is_not_an_integer(tmp_path):
    assert "features[0].step: expected an integer, got boolean" in error_of(tmp_path, HEAD + INCOME.replace("step = 10", "step = true"))


def test_empty_range(tmp_path):
    message = error_of(tmp_path, HEAD + INCOME.replace("max = 200", "max = 5"))
    assert "features[0].max: empty range: max (5) is below min (10)" in message


@pytest.mark.parametrize("step", ["0", "-10"])
def test_non_positive_step(tmp_path, step):
    message = error_of(tmp_path, HEAD + INCOME.replace("step = 10", f"step = {step}"))
    assert f"features[0].step: must be a positive integer, got {step}" in message


def test_duplicate_feature_names(tmp_path):
    message = error_of(tmp_path, HEAD + INCOME + CREDIT.replace('name = "credit"', 'name = "income"'))
    assert "features[1].name: duplicate feature name 'income' (also features[0])" in message


@pytest.mark.parametrize("bad", ["credit rating", "2fast", "credit-rating", "größe", "credit\\n"])
def test_feature_name_must_be_ascii_identifier(tmp_path, bad):
    message = error_of(tmp_path, HEAD + CREDIT.replace('name = "credit"', f'name = "{bad}"'))
    assert "features[0].name:" in message and "is not a valid name; use ASCII letters" in message


def test_empty_feature_name(tmp_path):
    assert "features[0].name: must not be empty" in error_of(tmp_path, HEAD + CREDIT.replace('name = "credit"', 'name = ""'))


def test_feature_name_with_underscore_and_digits_is_accepted(tmp_path):
    task = load_grid_file(write(tmp_path, HEAD + CREDIT.replace('name = "credit"', 'name = "_credit_2"')))
    assert task.features[0].name == "_credit_2"


@pytest.mark.parametrize(
    "values, expected",
    [
        ("[]", "features[0].values: expected a non-empty array of strings"),
        ('["poor"]', "features[0].values: an ordinal feature needs at least 2 values, got 1"),
        ('["poor", "poor"]', "features[0].values: duplicate value 'poor'"),
        ('["poor", 3]', "features[0].values[1]: expected a non-empty string, got 3"),
        ('"poor"', "features[0].values: expected a non-empty array of strings, got string"),
    ],
)
def test_bad_values(tmp_path, values, expected):
    text = HEAD + CREDIT.replace('values = ["poor", "fair", "good", "excellent"]', f"values = {values}")
    assert expected in error_of(tmp_path, text)


def test_feature_must_be_a_table(tmp_path):
    assert "features[0]: expected a table" in error_of(tmp_path, HEAD + "features = [1]\n")


def two_integer_features(max_b: int) -> str:
    """A grid of 2000 x ``max_b`` points."""
    return HEAD + f"""\
        [[features]]
        name = "a"
        label = "A"
        type = "integer"
        min = 1
        max = 2000
        [[features]]
        name = "b"
        label = "B"
        type = "integer"
        min = 1
        max = {max_b}
        """


def test_grid_too_large(tmp_path):
    message = error_of(tmp_path, two_integer_features(1001))
    assert f"features: the grid has 2,002,000 points (2000 x 1001); at most {MAX_GRID_POINTS:,}" in message


def test_grid_at_the_limit_is_accepted(tmp_path):
    assert load_grid_file(write(tmp_path, two_integer_features(1000))).size == MAX_GRID_POINTS


def test_missing_file(tmp_path):
    with pytest.raises(UserInputError, match=r"nope\.toml: file not found"):
        load_grid_file(tmp_path / "nope.toml")


def test_not_utf8(tmp_path):
    path = tmp_path / "loan.toml"
    path.write_bytes(HEAD.encode() + b'label = "\xff"\n')
    with pytest.raises(UserInputError, match=r"loan\.toml: not UTF-8"):
        load_grid_file(path)


def test_increases_is_read_and_leaves_the_fingerprint_alone(tmp_path):
    """``increases`` declares a CheckList DIR direction (Ribeiro et al. 2020); baselines compare
    fingerprints, so declaring one must not change it."""
    plain = load_grid_file(write(tmp_path, HEAD + INCOME + CREDIT, "plain.toml"))
    declared = load_grid_file(write(tmp_path, HEAD + INCOME + 'increases = "Approved"\n' + CREDIT
                                    + 'increases = "Approved"\n', "dir.toml"))
    assert [f.increases for f in plain.features] == [None, None]
    assert [f.increases for f in declared.features] == ["Approved", "Approved"]
    assert declared.fingerprint() == plain.fingerprint()


def test_increases_errors_name_the_file_and_key(tmp_path):
    assert "features[0].increases: 'Maybe' is not one of the options" in error_of(
        tmp_path, HEAD + INCOME + 'increases = "Maybe"\n')
    categorical = CREDIT.replace('"ordinal"', '"categorical"') + 'increases = "Approved"\n'
    assert "features[1].increases: only integer and ordinal features can declare a direction" in error_of(
        tmp_path, HEAD + INCOME + categorical)


def test_a_python_grid_task_has_two_to_ten_options():
    from sce_checks.tasks.grid import GridTask, integer_feature

    for options in (("only",), tuple(f"O{i}" for i in range(11))):
        with pytest.raises(ValueError, match=f"{len(options)} options; a grid task has 2 to 10"):
            GridTask("g", "q?", "p.", options, (integer_feature("x", "X", 0, 3),))
