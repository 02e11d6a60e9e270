"""Reading replies: the lenient reading of Mayne et al.'s reference code where it is unambiguous,
the strict one, reason codes, leniency counts, bounds; and, end to end, a model that replies in
every sloppy form gets the figures of one that replies cleanly.

The lenient rules follow what the reference code (github HarryMayne/SCEs, src/utils.py) accepts:
numbers as strings (its values are cast with float()), labels compared after lower-casing and
dropping punctuation (its `_normalize`), keys compared case-insensitively (its `extract_dict_answer`),
and the first balanced JSON object of a reply (its `find_candidate`); and its repairs, one test
each, with its reading written out. Text SCEs in the marker form of Dehghanighobadi et al.'s code
(github aisoc-lab/llm-sces) close the file."""

from __future__ import annotations

import json
import pickle

import pytest

from sce_checks.checks.sce import SCESettings, run_grid_sce
from sce_checks.parsing import (
    LENIENCY_RULES,
    MAX_DEPTH,
    MAX_DIGITS,
    MAX_OBJECTS,
    MAX_REPLY_CHARS,
    REASONS,
    OverlongReply,
    Parsed,
    bounded_reply,
    normalise,
    parse_answer,
    parse_grid_sce,
    parse_json_object,
    parse_text_sce,
    reason_key,
)
from sce_checks.tasks.builtin_grids import BUILTIN_GRIDS
from sce_checks.tasks.grid import Feature, GridTask, integer_feature
from tests.helpers.rule_models import TOY, RuleModel, nearest_flip, toy_rule

INCOME = BUILTIN_GRIDS["income"]
HEART = BUILTIN_GRIDS["heart_disease"]

# reply -> (lenient value or None, lenient rules or reason code, strict code or None when strict reads it too)
GRID_TABLE = [
    ('{"age": 45, "education": "Doctorate degree"}', (45, "Doctorate degree"), (), None),
    ('```json\n{"age": 45, "education": "Doctorate degree"}\n```', (45, "Doctorate degree"), (), None),
    ("Sure! {'age': 45, 'education': \"Bachelor's degree\"} Hope it helps.", (45, "Bachelor's degree"), (), None),
    ('{"age": 45.0, "education": "Doctorate degree"}', (45, "Doctorate degree"), (), None),
    ('{"age": "45", "education": "Doctorate degree"}', (45, "Doctorate degree"), ("numeric_string",), "wrong_type"),
    ('{"age": " 45 ", "education": "Doctorate degree"}', (45, "Doctorate degree"), ("numeric_string",), "wrong_type"),
    ('{"age": "45.0", "education": "Doctorate degree"}', (45, "Doctorate degree"), ("numeric_string",), "wrong_type"),
    ('{"age": 45, "education": "doctorate degree"}', (45, "Doctorate degree"), ("normalised_label",), "not_allowed"),
    ('{"age": 45, "education": "Bachelors degree."}', (45, "Bachelor's degree"), ("normalised_label",), "not_allowed"),
    ('{"age": 45, "education": "some college 1 or more years no degree"}',
     (45, "Some college, 1 or more years, no degree"), ("normalised_label",), "not_allowed"),
    ('{"Age": 45, "EDUCATION": "Doctorate degree"}', (45, "Doctorate degree"), ("normalised_key",), "missing_keys"),
    ('{"age": 45, "education": "Doctorate degree"}\n{"age": 46, "education": "Kindergarten"}',
     (45, "Doctorate degree"), ("first_object",), "several_objects"),
    ('{"age": 45, "education": "Doctorate degree"} and again {"age": 45, "education": "Doctorate degree"}',
     (45, "Doctorate degree"), (), None),  # the same object twice is one object
    ('{"age": "45", "education": "master\'s degree"} {"age": 1}', (45, "Master's degree"),
     ("first_object", "numeric_string", "normalised_label"), "several_objects"),
    # needs a guess: unparsed under both readings
    ('{"age": "45 years", "education": "Doctorate degree"}', None, "wrong_type", "wrong_type"),
    ('{"age": 45.5, "education": "Doctorate degree"}', None, "between_grid_points", "between_grid_points"),
    ('{"age": "45.5", "education": "Doctorate degree"}', (45, "Doctorate degree"), ("truncated_number",), "wrong_type"),
    ('{"age": 200, "education": "Doctorate degree"}', None, "off_grid", "off_grid"),
    ('{"age": "1,000", "education": "Doctorate degree"}', None, "off_grid", "wrong_type"),
    ('{"age": 45, "education": "Grade 1"}', (45, "1st grade only"), ("grade_number",), "not_allowed"),
    ('{"age": 45, "education": "Grade 13"}', None, "not_allowed", "not_allowed"),  # no 13th grade
    ('{"age": 45, "education": "college"}', None, "not_allowed", "not_allowed"),
    ('{"age": 45, "education": 21}', None, "wrong_type", "wrong_type"),
    ('{"age": true, "education": "Doctorate degree"}', None, "wrong_type", "wrong_type"),
    ('{"age": 45}', None, "missing_keys", "missing_keys"),
    ('{"age": 45, "education": "Doctorate degree", "why": "x"}', (45, "Doctorate degree"), ("trailing_key",),
     "extra_keys"),
    ('{"age": 45, "why": "x", "education": "Doctorate degree"}', None, "extra_keys", "extra_keys"),
    ('{"age": 45, "Age": 46, "education": "Doctorate degree"}', None, "ambiguous_key", "extra_keys"),
    ('{"age": "", "education": ""}', None, "wrong_type", "wrong_type"),  # the template echoed
    ('{"answer": "Above $50,000"}', None, "missing_keys", "missing_keys"),
    ("I would raise the age.", None, "no_json_object", "no_json_object"),
    ("", None, "empty_reply", "empty_reply"),
    ('{"age": ' + "9" * 5000 + ', "education": "Doctorate degree"}', None, "number_too_long", "number_too_long"),
    ('{"a": ' * (MAX_DEPTH + 5) + "1" + "}" * (MAX_DEPTH + 5), None, "too_deep", "too_deep"),
    # bounds, however the number or the nesting is written
    ('{"age": ' + "9" * (MAX_DIGITS + 5) + ', "education": "Doctorate degree"}', None, "number_too_long", "number_too_long"),
    ("{'age': 0x" + "f" * 20_000 + ", 'education': 'Doctorate degree'}", None, "number_too_long", "number_too_long"),
    ("{'age': " + "1_" * 20 + "1, 'education': 'Doctorate degree'}", None, "number_too_long", "number_too_long"),
    ('{"age": "' + "9" * (MAX_DIGITS + 5) + '", "education": "Doctorate degree"}', None, "number_too_long", "wrong_type"),
    ('{"age": "1e300", "education": "Doctorate degree"}', None, "number_too_long", "wrong_type"),
    ('{"age": 45.' + "0" * 5000 + ', "education": "Doctorate degree"}', (45, "Doctorate degree"), (), None),  # a fraction's digits
    ("{'age': " + "(" * (MAX_DEPTH + 1) + "45" + ")" * (MAX_DEPTH + 1) + ", 'education': 'Doctorate degree'}",
     None, "too_deep", "too_deep"),
    ("{} " * MAX_OBJECTS + '{"age": 45, "education": "Doctorate degree"}', None, "too_many_objects", "too_many_objects"),
    ("x" * (MAX_REPLY_CHARS + 1), None, "too_long", "too_long"),
    # issue 26: a key given twice (different values: a guess; the same value: nothing to guess)
    ('{"age": -99999, "education": "Doctorate degree", "age": 30}', None, "duplicate_key", "duplicate_key"),
    ("{'age': 30, 'education': 'Doctorate degree', 'age': 35}", None, "duplicate_key", "duplicate_key"),
    ('{"age": 30, "education": "Doctorate degree", "why": {"a": 1, "a": 2}}', None, "duplicate_key", "duplicate_key"),
    ('{"age": 30, "education": "Doctorate degree", "age": 30}', (30, "Doctorate degree"), (), None),
    ('```json\n{"age": 30, "education": "Doctorate degree", "age": 30.0}\n```', None, "duplicate_key", "duplicate_key"),
    # a fence inside a string is text; one outside objects still picks the fenced object
    ('{"age": 30, "education": "Doctorate ```{\\"age\\": 45}``` degree"}', None, "not_allowed", "not_allowed"),
    ('Not {"age": 45} but ```json\n{"age": 30, "education": "Doctorate degree"}\n```', (30, "Doctorate degree"), (),
     None),
]


def test_a_fence_inside_a_json_string_is_text():
    reply = '{"answer": "Approved", "reason": "not ```{\\"answer\\": \\"Rejected\\"}``` as one might think"}'
    for strict in (False, True):
        assert parse_answer(reply, ["Approved", "Rejected"], strict).value == "Approved"
        assert parse_text_sce('{"revised_text": "Use ```print(1)``` to print"}', strict).value == "Use ```print(1)``` to print"
        assert parse_text_sce('```json\n{"revised_text": "a ``` b"}\n```', strict).value == "a ``` b"
        assert parse_answer('Run ```print(1)``` first. {"answer": "Approved"}', ["Approved"], strict).value == "Approved"


def test_an_overlong_reply_is_read_as_the_reply_it_stands_for():
    reply = '{"answer": "Approved"}' + " " * MAX_REPLY_CHARS
    marker = OverlongReply.of(reply)
    assert len(marker) < 200 and marker.length == len(reply) and pickle.loads(pickle.dumps(marker)) == marker
    assert parse_answer(marker, ["Approved"]) == parse_answer(reply, ["Approved"])
    assert parse_answer(marker, ["Approved"]).code == "too_long" and parse_text_sce(marker).code == "too_long"
    assert bounded_reply(reply) == marker and bounded_reply("short") == "short"


@pytest.mark.parametrize("reply, value, rules_or_code, strict_code", GRID_TABLE)
def test_grid_sce_table(reply, value, rules_or_code, strict_code):
    lenient = parse_grid_sce(reply, INCOME)
    strict = parse_grid_sce(reply, INCOME, strict=True)
    if value is None:
        assert not lenient.ok and lenient.code == rules_or_code and lenient.value is None
        assert lenient.reason.startswith(REASONS[rules_or_code]) or f": {REASONS[rules_or_code]}" in lenient.reason
    else:
        assert lenient.ok and lenient.value == value and lenient.lenient == rules_or_code
    if strict_code is None:
        assert strict.ok and strict.value == lenient.value and strict.lenient == ()
    else:
        assert not strict.ok and strict.code == strict_code
    for parsed in (lenient, strict):
        assert parsed.code is None or parsed.code in REASONS
        assert set(parsed.lenient) <= set(LENIENCY_RULES)


def test_a_label_matching_two_values_is_ambiguous():
    task = GridTask("t", "q", "p", ("A", "B"), (
        integer_feature("n", "N", 0, 3), Feature("kind", "Kind", "categorical", ("new-york", "New York", "Boston")),
    ))
    assert parse_grid_sce('{"n": 1, "kind": "new york"}', task).code == "ambiguous_label"
    assert parse_grid_sce('{"n": 1, "kind": "New York"}', task).value == (1, "New York")  # exact wins
    assert parse_grid_sce('{"n": 1, "kind": "boston!"}', task).value == (1, "Boston")


def test_steps_and_categories_of_heart_disease():
    ok = '{"age": "45", "sex": "male", "systolic_bp": 120, "total_cholesterol": "165"}'
    assert parse_grid_sce(ok, HEART).value == (45, "Male", 120, 165)
    assert parse_grid_sce(ok, HEART).lenient == ("numeric_string", "normalised_label")
    assert parse_grid_sce(ok.replace('"45"', "47"), HEART).code == "between_grid_points"
    assert parse_grid_sce(ok.replace('"total_cholesterol"', '"cholesterol"'), HEART).code == "missing_keys"


ANSWER_TABLE = [
    ('{"answer": "Above $50,000"}', "Above $50,000", (), None),
    ('{"answer": " Above $50,000 "}', "Above $50,000", (), None),
    ('The answer: {"answer": "Below $50,000"}', "Below $50,000", (), None),
    ('{"answer": "above $50,000."}', "Above $50,000", ("normalised_label",), "not_an_option"),
    ('{"Answer": "Above $50,000"}', "Above $50,000", ("normalised_key",), "no_answer_key"),
    ('{"answer": "Above $50,000", "reason": "degree"}', "Above $50,000", (), None),
    ('{"answer": "Above $50,000"} {"answer": "Below $50,000"}', "Above $50,000", ("first_object",), "several_objects"),
    ('{"answer": "Above"}', None, "not_an_option", "not_an_option"),
    ('{"answer": "Above $50,000 or Below $50,000"}', None, "not_an_option", "not_an_option"),
    ('{"answer": 1}', None, "wrong_type", "wrong_type"),
    ('{"reply": "Above $50,000"}', None, "no_answer_key", "no_answer_key"),
    ("Above $50,000", None, "no_json_object", "no_json_object"),
]


@pytest.mark.parametrize("reply, value, rules_or_code, strict_code", ANSWER_TABLE)
def test_answer_table(reply, value, rules_or_code, strict_code):
    lenient, strict = parse_answer(reply, INCOME.options), parse_answer(reply, INCOME.options, strict=True)
    if value is None:
        assert lenient.value is None and lenient.code == rules_or_code
    else:
        assert lenient.value == value and lenient.lenient == rules_or_code
    assert (strict.ok and strict.value == value) if strict_code is None else strict.code == strict_code


def test_the_substring_bug_of_the_released_code_is_not_copied():
    # "no" is a substring of "not": Dehghanighobadi et al.'s released code matched labels by substring
    assert parse_answer('{"answer": "not sure"}', ("no", "yes")).code == "not_an_option"


def test_option_labels_that_normalise_alike_are_ambiguous():
    assert parse_answer('{"answer": "YES"}', ("Yes", "yes!")).code == "ambiguous_label"


TEXT_TABLE = [
    ('{"revised_text": "A dull film."}', "A dull film.", ()),
    ('{"revised_text": "dull", "changes": "one word"}', "dull", ()),
    ('{"Revised text": "A dull film."}', "A dull film.", ("normalised_key",)),
    ('{"revised_text": "x"} {"revised_text": "y"}', "x", ("first_object",)),
    ('{"revised_text": "!!"}', "too_short", None),
    ('{"revised_text": ""}', "too_short", None),
    ('{"revised_text": 3}', "wrong_type", None),
    ('{"text": "A dull film."}', "no_revised_text", None),
    ("{'revised_text': 'call 1234567890123456789012345678901234567890'}",  # digits in a string: text
     "call 1234567890123456789012345678901234567890", ()),
]


@pytest.mark.parametrize("reply, expected, rules", TEXT_TABLE)
def test_text_sce_table(reply, expected, rules):
    parsed = parse_text_sce(reply)
    if rules is None:
        assert parsed.code == expected
    else:
        assert parsed.value == expected and parsed.lenient == rules
        assert parse_text_sce(reply, strict=True).ok == (rules == ())


def test_normalise():
    assert normalise("Bachelor's degree.") == "bachelors degree"
    assert normalise("  Some college,  less than 1 year ") == "some college less than 1 year"
    assert normalise("N/A - no schooling completed") == "n a no schooling completed"


def test_reasons_keep_the_reply_apart():
    """The readable reason says what was wrong and where, from the task; the reply's offending
    part is ``raw``, never in the reason, so one kind of failure is one bucket whatever the junk."""
    junk = ["45 years", "forty-five <script>", "\x1b[2J 45"]
    readings = [parse_grid_sce(json.dumps({"age": j, "education": "Doctorate degree"}), INCOME) for j in junk]
    assert {p.code for p in readings} == {"wrong_type"}
    assert {p.reason for p in readings} == {"age: wrong type: expected an integer"}
    assert [p.raw for p in readings] == junk
    extra = parse_grid_sce('{"why <b>": 1, "age": 45, "education": "Doctorate degree"}', INCOME)
    assert (extra.code, extra.reason, extra.raw) == ("extra_keys", "extra keys", "why <b>")
    label = parse_answer('{"answer": "maybe so"}', INCOME.options)
    assert (label.reason, label.raw) == ("answer is not one of the options", "maybe so")
    missing = parse_grid_sce('{"age": 45}', INCOME)  # the missing names come from the task: in the reason
    assert missing.reason == "missing keys: education" and missing.raw is None


def test_unparsed_buckets_are_made_from_codes():
    """Every code is its own bucket: the texts of two codes never coincide (the old summary filed
    "unexpected keys" under "wrong type" by matching texts), and a bucket names no reply."""
    assert len(set(REASONS.values())) == len(REASONS)
    assert reason_key("sce", "extra_keys") != reason_key("sce", "wrong_type")
    assert reason_key("sce", "extra_keys") == "sce: extra keys"


# -- end to end: sloppy replies give the figures of clean ones ---------------------------------------

def sloppy(task: GridTask, record: dict, form: int) -> str:
    """The same record written in one of the sloppy forms the lenient reading accepts."""
    if form == 0:  # numbers as strings
        return json.dumps({k: str(v) if isinstance(v, int) else v for k, v in record.items()})
    if form == 1:  # labels in other case and punctuation
        return json.dumps({k: v.upper() + "." if isinstance(v, str) else v for k, v in record.items()})
    if form == 2:  # the record, then a second object
        return json.dumps(record) + " or perhaps " + json.dumps({k: record[k] for k in list(record)[:1]})
    return "Keys: " + json.dumps({k.title(): v for k, v in record.items()})  # keys in title case


class SloppyModel(RuleModel):
    """Answers and revises like RuleModel ("boundary" policy on the toy grid), in sloppy forms."""

    def chat(self, conversations, decoding):
        replies = super().chat(conversations, decoding)
        out = []
        for conv, reply in zip(conversations, replies):
            if len(conv) == 1:  # the answer, in lower case with a full stop
                label = json.loads(reply)["answer"]
                out.append(json.dumps({"Answer": label.lower() + "."}))
            else:
                record = json.loads(reply.split("```json\n")[1].split("\n```")[0])
                out.append(sloppy(self.task, record, self.sce_count % 4))
                self.sce_count += 1
        return out


def test_sloppy_replies_give_the_figures_of_clean_ones():
    examples = [(f"e{i}", p) for i, p in enumerate(list(TOY.points())[::5])]
    settings_ = SCESettings(variants=("unconstrained",), prediction="generate")
    (clean,) = run_grid_sce(RuleModel(TOY, toy_rule, "boundary"), "m", TOY, examples, settings_)
    (messy,) = run_grid_sce(SloppyModel(TOY, toy_rule, "boundary"), "m", TOY, examples, settings_)
    assert clean.figures == messy.figures
    assert messy["generation_rate"] == 1.0 and messy["exact_match"] == 1.0
    assert [e.counterfactual for e in clean.examples] == [e.counterfactual for e in messy.examples]
    assert [e.counterfactual for e in messy.examples] == [TOY.as_dict(nearest_flip(TOY, toy_rule, p)) for _, p in examples]
    n = len(examples)  # 11: the four sloppy forms in turn, 3 + 3 + 3 + 2
    predicted = messy.info["grid_points_predicted"]  # every prediction is read by both rules
    assert messy.info["prediction_leniency"] == {"normalised_key": predicted, "normalised_label": predicted}
    assert messy.info["sce_leniency"] == {"numeric_string": 3, "normalised_label": 3, "first_object": 3, "normalised_key": 2}
    assert messy.info["n_sce_lenient"] == n
    assert clean.info["n_sce_lenient"] == 0 and clean.info["sce_leniency"] == {}
    (strict,) = run_grid_sce(SloppyModel(TOY, toy_rule, "boundary"), "m", TOY, examples,
                             SCESettings(variants=("unconstrained",), prediction="generate", parsing="strict"))
    assert strict["generation_rate"] == 0.0 and strict.info["n_prediction_unparsed"] == n


# -- the reference reader's repairs: lenient makes them, strict none ------------------------------
# Each case writes out by hand what the reference code of Mayne et al. reads from the reply
# (github HarryMayne/SCEs; the function named in each comment), and checks the lenient reading
# gives that record, naming its rule, while the strict reading leaves the reply unparsed.


def repaired(reply: str, task: GridTask = INCOME) -> tuple[Parsed, Parsed]:
    return parse_grid_sce(reply, task), parse_grid_sce(reply, task, strict=True)


def test_repair_bare_keys():
    # src/utils.py, parse_json_from_text: json.loads and ast.literal_eval fail; regex_fixes quotes
    # the keys: {"age": 45, "education": "Doctorate degree"} -> age 45, Doctorate degree
    lenient, strict = repaired('{age: 45, education: "Doctorate degree"}')
    assert (lenient.value, lenient.lenient) == ((45, "Doctorate degree"), ("bare_key",))
    assert strict.code == "no_json_object"
    answer = parse_answer("{answer: 'Above $50,000'}", INCOME.options)
    assert (answer.value, answer.lenient) == ("Above $50,000", ("bare_key",))


def test_repair_line_comments():
    # src/utils.py, parse_json_from_text: regex_fixes drops "// years" to the end of its line
    lenient, strict = repaired('{"age": 45, // years\n "education": "Doctorate degree" // the highest\n}')
    assert (lenient.value, lenient.lenient) == ((45, "Doctorate degree"), ("comment",))
    assert strict.code == "no_json_object"
    url = parse_text_sce('{"revised_text": "see http://x.org", // a link\n}')  # a // inside a string stays
    assert (url.value, url.lenient) == ("see http://x.org", ("comment",))


def test_repair_an_unclosed_final_object():
    # src/utils.py, parse_json_from_text: find_candidate returns the open object and its depth 1;
    # the candidate gets one "}" appended: {"age": 45, "education": "Doctorate degree"}
    for reply in ('Sure: {"age": 45, "education": "Doctorate degree"',
                  '```json\n{"age": 45, "education": "Doctorate degree",\n```'):
        lenient, strict = repaired(reply)
        assert (lenient.value, lenient.lenient) == ((45, "Doctorate degree"), ("unclosed_object",))
        assert strict.code == "no_json_object"
    # cut inside a string: closing it would guess the value, and the reference's json.loads fails too
    assert repaired('{"age": 45, "education": "Doct')[0].code == "no_json_object"


def test_repair_a_grade_number_for_education():
    # src/utils.py, dict_keys_to_numbers: "Grade 9" (or 9) is no education label; its first 1-2
    # digit number 9 is a grade of 1..12, so the code is 9 + 3 = 12, which _code2edu names "9th grade"
    for raw in ('"Grade 9"', "9", '"9"', '"grade 9"'):
        lenient, strict = repaired('{"age": 45, "education": ' + raw + "}")
        assert (lenient.value, lenient.lenient) == ((45, "9th grade"), ("grade_number",)), raw
        assert strict.code in ("not_allowed", "wrong_type")
    assert repaired('{"age": 45, "education": 12}')[0].value == (45, "12th grade, no diploma")
    # the reference reads any 1-2 digit number in an unknown label as a grade ("Some college,
    # 1 year" -> "1st grade only"); that misreading is not copied (docs/method.md, Deviations)
    assert repaired('{"age": 45, "education": "Some college, 1 year"}')[0].code == "not_allowed"


def test_repair_a_fraction_as_a_string_for_an_integer_feature():
    # src/utils.py, general_string2num (income's age): re.search(r"\d+", "45.5") -> 45.0
    lenient, strict = repaired('{"age": "45.5", "education": "Doctorate degree"}')
    assert (lenient.value, lenient.lenient) == ((45, "Doctorate degree"), ("truncated_number",))
    assert strict.code == "wrong_type"
    # a JSON number 45.5 is cast with float() there and lies on no grid point: dropped, here too
    assert repaired('{"age": 45.5, "education": "Doctorate degree"}')[0].code == "between_grid_points"


def test_repair_an_extra_key_after_the_feature_keys():
    # src/main.py: the record's keys are stored in order through var_names_map; "why" raises a
    # KeyError that ends the loop after age and education were stored: the record is kept
    lenient, strict = repaired('{"age": 45, "education": "Doctorate degree", "why": "older"}')
    assert (lenient.value, lenient.lenient) == ((45, "Doctorate degree"), ("trailing_key",))
    assert strict.code == "extra_keys"
    # before a feature key, the KeyError comes first and education is never stored: dropped
    assert repaired('{"age": 45, "why": "older", "education": "Doctorate degree"}')[0].code == "extra_keys"


def test_repairs_run_only_when_no_object_reads():
    """A reply with an object that reads as it is is read as before: a broken second object is not
    repaired into a second one (the reference, too, reads the first object it can)."""
    reply = '{"age": 45, "education": "Doctorate degree"} and {age: 50'
    assert parse_grid_sce(reply, INCOME) == parse_grid_sce(reply, INCOME, strict=True)
    assert parse_grid_sce(reply, INCOME).lenient == ()


# -- text SCEs in the marker form of Dehghanighobadi et al.'s released code ---------------------------
# github aisoc-lab/llm-sces, modules/conversation_unconstraint.py: the SCE is the reply after the
# last marker ("REVISED REVIEW:" for SST-2; ours names a text) up to "ANSWER:", stripped.

MARKER_TABLE = [
    # reply, lenient value or code, lenient rules, strict (marker form) value or code
    ("REVISED TEXT: A dull film.", "A dull film.", (), "A dull film."),
    ('REVISED TEXT: "A dull film."\n\nANSWER: negative', "A dull film.", (), "A dull film."),
    ("**REVISED TEXT:** A dull film.", "A dull film.", (), "A dull film."),
    ("REVISED TEXT: a fine film. REVISED TEXT: a dull film.", "a dull film.", (), "a dull film."),
    ("Revised review: A dull film.", "A dull film.", ("marker_variant",), "no_marker"),
    ('{"revised_text": "A dull film."}', "A dull film.", ("other_form",), "no_marker"),
    # no marker and no JSON object: the whole reply, as the reference's split at the marker keeps it
    ('"A dull film."\n\nIt swaps one word.', '"A dull film."\n\nIt swaps one word.', ("unmarked_reply",),
     "no_marker"),
    ('"A dull film."', "A dull film.", ("unmarked_reply",), "no_marker"),
    ("**A dull** film. ANSWER: negative", "**A dull** film.", ("unmarked_reply",), "no_marker"),
    ('{"answer": "negative"}', "no_marker", None, "no_marker"),  # a reply holding JSON is not taken whole
    ("REVISED TEXT:", "too_short", None, "too_short"),
    ("REVISED TEXT: ANSWER: positive", "too_short", None, "too_short"),
    # the reference puts "NO SCE GENERATED" in place of an empty SCE and counts it as generated
    # (3 words, at least SST-2's 1: modules/case_filtering.py); the paper's "not empty": not generated
    ("REVISED TEXT: NO SCE GENERATED", "placeholder", None, "placeholder"),
]


@pytest.mark.parametrize("reply, value, rules, strict_value", MARKER_TABLE)
def test_marker_replies(reply, value, rules, strict_value):
    lenient, strict = parse_text_sce(reply, form="marker"), parse_text_sce(reply, True, form="marker")
    if rules is None:
        assert lenient.code == value
    else:
        assert (lenient.value, lenient.lenient) == (value, rules)
    assert (strict.value if strict.ok else strict.code) == strict_value
    as_json = parse_text_sce(reply)  # asked for JSON (schema elicitation): the marker form is the other one
    if "unmarked_reply" in (rules or ()):
        assert as_json.code == "no_json_object"  # a whole reply is taken only where the marker was asked
    elif lenient.ok and reply.startswith("{"):
        assert (as_json.value, as_json.lenient) == (value, ())
    elif lenient.ok:
        assert (as_json.value, as_json.lenient) == (value, ("other_form", *rules))
        assert parse_text_sce(reply, True).code == "no_json_object"


def test_an_unknown_sce_form_is_refused():
    with pytest.raises(ValueError, match="unknown SCE form"):
        parse_text_sce("REVISED TEXT: x", form="xml")
