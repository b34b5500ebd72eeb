import json

import pytest
from examples import good, reported_submission

from benchmark import TASKS, validate
from benchmark.validation import KINDS, schema


def paths(obj, kind):
    return {e.path for e in validate(obj, kind)}


@pytest.mark.parametrize(
    "kind",
    [
        "results",
        "submission",
        "sample",
        "judge_verdict",
        "pool_record",
        "row_cross_modal",
        "row_vqa",
        "row_overriding",
    ],
)
def test_good_examples_pass(kind):
    assert validate(good(kind), kind) == []


def test_reported_submission_passes():
    assert validate(reported_submission(), "submission") == []


def test_every_kind_has_a_draft_2020_12_schema():
    for kind in KINDS:
        assert schema(kind)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_schema_task_enum_matches_the_registry():
    common = json.loads(
        (
            __import__("benchmark").validation.resources.files("benchmark")
            / "schemas"
            / "common.schema.json"
        ).read_text()
    )
    assert common["$defs"]["registered_task_id"]["enum"] == list(TASKS)


# (kind, mutation, JSON path that must be reported)
def _drop(key):
    def f(d):
        del d[key]

    return f


BAD = [
    ("results", _drop("versions"), "$"),
    (
        "results",
        lambda d: d["results"]["country_capital"]["patch"].pop("layer"),
        "$.results.country_capital.patch",
    ),
    (
        "results",
        lambda d: d["results"]["country_capital"]["prompt"].update(acc=1.5),
        "$.results.country_capital.prompt.acc",
    ),
    (
        "results",
        lambda d: d["results"]["country_capital"].update(magic={"acc": 0.1}),
        "$.results.country_capital",
    ),
    (
        "results",
        lambda d: d["results"]["country_capital"]["no_context"].update(n=0),
        "$.results.country_capital.no_context.n",
    ),
    ("results", lambda d: d["versions"].pop("git_hash"), "$.versions"),
    ("results", lambda d: d["model"].pop("revision"), "$.model"),
    ("results", lambda d: d["config"].update(spec="audio_examples"), "$.config.spec"),
    ("results", lambda d: d["config"].update(seeds="0,1,2"), "$.config.seeds"),
    ("results", lambda d: d["results"].update({"Bad Task": {}}), "$.results"),
    ("submission", lambda d: d["submission"].pop("submitted_by"), "$.submission"),
    (
        "submission",
        lambda d: d["results"]["results"]["country_capital"]["patch"].update(acc=-0.1),
        "$.results.results.country_capital.patch.acc",
    ),
    (
        "submission",
        lambda d: d["results"]["results"].update(
            {"custom:mine": d["results"]["results"]["country_capital"]}
        ),
        "$.results.results",
    ),
    ("sample", lambda d: d.update(prompt_hash="abc"), "$.prompt_hash"),
    ("sample", lambda d: d.update(layer=None), "$.layer"),
    ("sample", lambda d: d.update(lenient="yes"), "$.lenient"),
    ("judge_verdict", lambda d: d["judge"].update(model="gpt-4o"), "$.judge.model"),
    ("judge_verdict", lambda d: d["judge"].update(temperature=0.7), "$.judge.temperature"),
    ("judge_verdict", lambda d: d.update(choice="E"), "$.choice"),
    ("judge_verdict", lambda d: d.update(choice="A"), "$.success"),
    ("judge_verdict", lambda d: d.update(choice=None, success=None), "$.error"),
    ("pool_record", lambda d: d["labels"].update(country_capital=""), "$.labels.country_capital"),
    ("pool_record", lambda d: d.update(split="train"), "$.split"),
    ("pool_record", lambda d: d.update(id="France"), "$.id"),
    ("pool_record", _drop("wikipedia_title"), "$"),
    ("row_cross_modal", lambda d: d.update(output=""), "$.output"),
    ("row_cross_modal", lambda d: d["attribution"].pop("license"), "$.attribution"),
    ("row_cross_modal", lambda d: d.update(image=42), "$.image"),
    ("row_vqa", lambda d: d.update(image_id=-1), "$.image_id"),
    ("row_vqa", _drop("caption"), "$"),
    ("row_overriding", lambda d: d.update(setting="humour"), "$.setting"),
    ("row_overriding", lambda d: d.update(override="  "), "$.override"),
]


@pytest.mark.parametrize("kind,mutate,path", BAD, ids=[f"{k}-{p}" for k, _, p in BAD])
def test_bad_records_fail_with_the_right_path(kind, mutate, path):
    doc = good(kind)
    mutate(doc)
    assert path in paths(doc, kind)


def test_reported_submission_needs_a_source():
    doc = reported_submission()
    del doc["submission"]["source"]
    assert "$.submission" in paths(doc, "submission")


def test_reported_submission_rejects_unknown_task():
    doc = reported_submission()
    doc["results"]["results"]["country_capitol"] = {"patch": {"acc": 0.1}}
    assert "$.results.results" in paths(doc, "submission")


def test_unknown_kind_is_a_clear_error():
    with pytest.raises(ValueError, match="known kinds"):
        validate({}, "resluts")
