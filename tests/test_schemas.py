import json
from importlib import resources

import pytest
from examples import good, reported_submission

from benchmark import (
    FIRST_TOKEN_METHODS,
    METHOD_ID_PATTERN,
    METHODS,
    QUERIES,
    SPECS,
    TASKS,
    validate,
)
from benchmark.consistency.results import check_results_consistency, check_submission
from benchmark.strict_json import canonical_json, loads_checked
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
        "generation",
    ],
)
def test_good_examples_pass(kind):
    assert validate(good(kind), kind) == []


def test_reported_submission_passes():
    assert validate(reported_submission(), "submission") == []


def test_every_kind_has_a_draft_2020_12_schema():
    for kind in KINDS:
        assert schema(kind)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def _common():
    """common.schema.json: shared definitions, not a kind of its own."""
    return json.loads(
        (resources.files("benchmark") / "schemas" / "common.schema.json").read_text("utf-8")
    )


def test_schema_task_enum_matches_the_registry():
    assert _common()["$defs"]["registered_task_id"]["enum"] == list(TASKS)


def test_schema_settings_match_the_protocol():
    config = schema("results")["properties"]["config"]["properties"]
    assert tuple(config["spec"]["enum"]) == SPECS
    assert tuple(config["query"]["enum"]) == QUERIES


def test_schema_method_ids_match_the_protocol():
    method_id = _common()["$defs"]["method_id"]
    assert method_id["pattern"] == METHOD_ID_PATTERN
    assert all(m in method_id["description"] for m in METHODS)
    task_results = schema("results")["$defs"]["task_results"]
    assert tuple(task_results["properties"]) == METHODS
    # The shipped methods that patch must record their layer; any method may record one (a
    # plug-in that patches), and the layer checks and the leaderboard go by the entry's `layer`.
    layered = {
        m for m, s in task_results["properties"].items() if s["$ref"].endswith("patch_result")
    }
    assert layered == {"patch", "instruction_patch"}
    assert "layer" in schema("results")["$defs"]["method_result"]["properties"]
    assert set(FIRST_TOKEN_METHODS) <= set(METHODS)


@pytest.mark.parametrize("kind", ["results", "submission"])
def test_plugin_method_ids_validate(kind):
    doc = good(kind)
    results = doc["results"] if kind == "results" else doc["results"]["results"]
    config = doc["config"] if kind == "results" else doc["results"]["config"]
    config["methods"].append("toy_method")
    results["country_capital"]["toy_method"] = dict(results["country_capital"]["prompt"])
    assert validate(doc, kind) == []


@pytest.mark.parametrize("kind", ["results", "submission"])
def test_bad_method_ids_fail(kind):
    doc = good(kind)
    results = doc["results"] if kind == "results" else doc["results"]["results"]
    results["country_capital"]["Bad-Id"] = dict(results["country_capital"]["prompt"])
    prefix = "$.results" if kind == "results" else "$.results.results"
    assert f"{prefix}.country_capital" in paths(doc, kind)


def test_plugin_method_results_are_checked_like_known_ones():
    doc = good("results")
    doc["results"]["country_capital"]["toy_method"] = {"acc": 2.0, "acc_std": 0, "n": 1}
    assert "$.results.country_capital.toy_method.acc" in paths(doc, "results")


def test_reported_submission_accepts_plugin_method_ids_but_not_bad_ones():
    doc = reported_submission()
    task = next(iter(doc["results"]["results"].values()))
    task["toy_method"] = {"acc": 0.1}
    assert validate(doc, "submission") == []
    task["Bad-Id"] = {"acc": 0.1}
    assert validate(doc, "submission") != []


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
        lambda d: d["results"]["country_capital"].update({"Magic-Method": {"acc": 0.1}}),
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
    (
        "judge_verdict",
        lambda d: d["judge"].update(model="gpt-4o", base_url=None),
        "$.judge.model",
    ),
    ("judge_verdict", lambda d: d["judge"].update(base_url=""), "$.judge.base_url"),
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


def test_judge_on_an_openai_compatible_server_may_name_its_model_freely():
    doc = good("judge_verdict")
    doc["judge"].update(model="llama-3.1-8b-instruct", base_url="http://127.0.0.1:8000/v1")
    assert validate(doc, "judge_verdict") == []
    doc["judge"]["base_url"] = None  # the OpenAI API: a dated snapshot only
    assert "$.judge.model" in paths(doc, "judge_verdict")
    doc["judge"]["model"] = "gpt-4o-2024-08-06"
    assert validate(doc, "judge_verdict") == []


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


def test_method_context_and_seeded_are_typed():
    doc = good("results")
    doc["results"]["country_capital"]["patch"].update(context="the query", seeded=False)
    assert validate(doc, "results") == []
    doc["results"]["country_capital"]["patch"]["seeded"] = "no"
    assert "$.results.country_capital.patch.seeded" in paths(doc, "results")


@pytest.mark.parametrize(
    "created", ["yesterday", "2026-11-22", "2026-11-22 12:00", "2026-13-01T00:00:00Z"]
)
def test_created_must_be_a_date_time(created):
    doc = good("results")
    doc["created"] = created
    assert [str(e) for e in validate(doc, "results")] == [
        f"<data>: $.created: {created!r} is not a 'date-time'"
    ]


def test_a_submission_records_the_sha256_of_its_results():
    for doc in (good("submission"), reported_submission()):
        assert check_submission(doc) == []
        del doc["submission"]["results_sha256"]
        assert "$.submission" in paths(doc, "submission")
        doc["submission"]["results_sha256"] = "not a hash"
        assert "$.submission.results_sha256" in paths(doc, "submission")


def test_canonical_json_is_sorted_compact_utf8_and_finite():
    assert canonical_json({"b": 1.5, "a": ["é", 0.1]}) == '{"a":["é",0.1],"b":1.5}'
    with pytest.raises(ValueError):
        canonical_json({"a": float("nan")})


def test_strict_parsing_names_what_it_refuses():
    assert loads_checked('{"a": [1, 2.5, "NaN"]}') == ({"a": [1, 2.5, "NaN"]}, [])
    doc, errors = loads_checked('{"a": {"b": NaN, "c": 1, "c": 2}, "d": [-Infinity]}')
    assert doc is None
    assert [(e.path, e.message.split(":")[0]) for e in errors] == [
        ("$.a", "duplicate key 'c'"),
        ("$.a.b", "NaN is not a number JSON allows (only finite numbers are valid)"),
        ("$.d[0]", "-Infinity is not a number JSON allows (only finite numbers are valid)"),
    ]


def test_consistency_accepts_what_the_harness_writes_for_overriding():
    """override_text with a judge: acc is the exact-match mean; the judge's own figures beside."""
    doc = good("results")
    per_seed = [0.5, 0.25]
    doc["seeds"] = doc["config"]["seeds"] = [0, 1]
    doc["config"].update(tasks=["override_text"], methods=["instruction_patch"], layer=2)
    doc["layer_selection"] = {"mode": "override", "layer": 2}
    doc["results"] = {
        "override_text": {
            "instruction_patch": {
                "acc": 0.375,
                "acc_std": 0.125,
                "per_seed": per_seed,
                "n": 4,
                "layer": 2,
                "exact_original": 0.25,
                "judged": 7,
                "judge_failures": 1,
                "judge_acc": 0.0,
                "judge_acc_failures_as_misses": 0.0,
                "judge_agreement": 0.5,
            }
        }
    }
    assert validate(doc, "results") == []
    assert check_results_consistency(doc) == []
