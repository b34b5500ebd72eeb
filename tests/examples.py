"""Valid examples of every schema kind; tests derive the invalid ones from these."""

import copy
import statistics

from benchmark.strict_json import canonical_sha256

SHA = "0" * 64
# Three seeds' accuracies; a result's acc and acc_std are their mean and population std, as the
# harness writes them (and as `validate` checks).
PER_SEED = [0.4, 0.5, 0.6]


def sweep(num_layers: int = 30, layer: int = 21) -> dict:
    """A validation sweep's layer selection as the harness writes it: one point per layer, the
    mean curve the mean of the task curves, the chosen layer its first maximum."""
    curve = [0.6 if i == layer else 0.1 for i in range(num_layers)]
    return {
        "mode": "sweep",
        "layer": layer,
        "split": "validation",
        "validation_curve": {"country_capital": list(curve)},
        "mean_curve": curve,
    }


def results() -> dict:
    method = {
        "acc": statistics.fmean(PER_SEED),
        "acc_std": statistics.pstdev(PER_SEED),
        "acc_strict": 0.4,
        "acc_strict_std": 0.1,
        "n": 100,
        "per_seed": list(PER_SEED),
    }
    return {
        "kind": "results",
        "schema_version": 1,
        "run_id": "text_examples-0123456789ab",  # the harness's shape: <spec>-<12 hex>
        "created": "2026-11-22T12:00:00+00:00",
        "model": {"name": "smollm2-135m", "revision": None, "num_layers": 30},
        "config": {
            "tasks": ["country_capital"],
            "spec": "text_examples",
            "query": "text",
            "n_shot": 5,
            "seeds": [0, 1, 2],
            "methods": ["no_context", "majority", "prompt", "patch"],
            "template": {"example": "Q: {x}\nA: {y}", "query": "Q: {x}\nA:", "separator": "\n\n"},
            "layer": None,
        },
        "versions": {
            "vlm_tv_eval": "0.1.0",
            "torch": "2.13.0",
            "transformers": "5.23.0",
            "git_hash": "abc1234",
        },
        "seeds": [0, 1, 2],
        "layer_selection": sweep(),
        "results": {
            "country_capital": {
                "no_context": dict(method),
                "majority": dict(method),
                "prompt": dict(method),
                "patch": dict(method, layer=21),
            }
        },
    }


def submission() -> dict:
    return {
        "kind": "submission",
        "submission": {
            "name": "SmolLM2-135M (CPU)",
            "submitted_by": "vlm-tv-eval developers",
            "date": "2026-11-22",
            "reported": False,
            "results_sha256": canonical_sha256(results()),
        },
        "results": results(),
    }


def reported_submission() -> dict:
    """A reported row as the paper's table has it (Table 2: Idefics2, text examples patched
    onto image queries)."""
    tasks = ("country_capital", "country_currency", "animal_latin", "animal_young")
    tasks += ("food_color", "food_flavor")
    accs = (0.61, 0.40, 0.48, 0.62, 0.53, 0.39)
    figures = {t: {"patch": {"acc": a}} for t, a in zip(tasks, accs, strict=True)}
    reported = {
        "model": {"name": "idefics2"},
        "config": {"spec": "text_examples", "query": "image"},
        "results": figures,
    }
    return {
        "kind": "submission",
        "submission": {
            "name": "Idefics2 (paper)",
            "submitted_by": "vlm-tv-eval developers",
            "date": "2026-11-22",
            "reported": True,
            "source": "Luo et al. 2025, Table 2",
            "results_sha256": canonical_sha256(reported),
        },
        "results": reported,
    }


def rehash(submission: dict) -> dict:
    """`submission` with the sha256 of its (changed) results recorded, as `add` would."""
    submission["submission"]["results_sha256"] = canonical_sha256(submission["results"])
    return submission


def sample() -> dict:
    return {
        "doc_id": "france",
        "task": "country_capital",
        "split": "test",
        "method": "patch",
        "seed": 0,
        "layer": 21,
        "prompt_hash": SHA,
        "doc_hash": SHA,
        "prediction": " Paris",
        "target": "Paris",
        "lenient": True,
        "strict": True,
    }


def verdict() -> dict:
    return {
        "item_id": "123",
        "task": "override_semantic",
        "judge": {"model": "gpt-4o-2024-08-06", "temperature": 0},
        "choice": "B",
        "success": True,
        "raw": '{"choice": "B"}',
        "error": None,
    }


def pool_record() -> dict:
    return {
        "id": "france",
        "input": "France",
        "split": "test",
        "labels": {"country_capital": "Paris", "country_currency": "Euro"},
        "wikipedia_title": "Flag of France",
        "currency_name": "Euro",
    }


def row_cross_modal() -> dict:
    return {
        "id": "france",
        "task": "country_capital",
        "split": "test",
        "input": "France",
        "image": {"path": "france.png", "bytes": None},
        "output": "Paris",
        "attribution": {
            "source_url": "https://upload.example/Flag_of_France.svg.png",
            "file_page": "File:Flag of France.svg",
            "author": "SKopp",
            "license": "Public domain",
        },
    }


def row_vqa() -> dict:
    return {
        "id": "262148000",
        "task": "vqa_food_class",
        "split": "validation",
        "question": "What kind of food is this?",
        "image": None,
        "caption": "A plate with a slice of pizza topped with cheese.",
        "output": "pizza",
        "answers": ["pizza"] * 10,
        "image_id": 262148,
        "question_id": 262148000,
    }


def row_overriding() -> dict:
    return {
        "id": "semantic-0001",
        "setting": "semantic",
        "image": "coco/000000262148.jpg",
        "question": "What color is the plate?",
        "override": "What kind of food is this?",
    }


def generation() -> dict:
    return {
        "doc_id": "country_capital>country_currency/france",
        "task": "override_text",
        "method": "instruction_patch",
        "seed": 0,
        "layer": 21,
        "prompt_hash": "0" * 64,
        "answer": " Euro",
        "question1": "The capital city of the country: France",
        "question2": "The last word of the official currency of the country: France",
        "override_label": "Euro",
        "original_label": "Paris",
        "exact_override": True,
        "exact_original": False,
    }


GOOD = {
    "results": results,
    "submission": submission,
    "sample": sample,
    "judge_verdict": verdict,
    "pool_record": pool_record,
    "row_cross_modal": row_cross_modal,
    "row_vqa": row_vqa,
    "row_overriding": row_overriding,
    "generation": generation,
}


def good(kind: str) -> dict:
    return copy.deepcopy(GOOD[kind]())


def run_results(out) -> dict:
    """The one results.json a CLI run wrote under `out`."""
    import json

    (path,) = out.glob("*/*/results.json")
    return json.loads(path.read_text())
