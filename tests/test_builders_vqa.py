"""VQA subsets and overriding sets from tiny inputs in the real layouts: VQAv2 questions and
annotations JSON, LLaVA-ReCap caption records (JSON, JSONL, Parquet), OK-VQA, A-OKVQA, COCO."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from PIL import Image

from benchmark import validate
from builders import cli, overriding
from builders.cross_modal import json_row
from builders.overriding import CREATIVE, FORMATS, factual_count_report, render_format
from builders.sources import CocoImages, InputError, coco_image_id, load_captions, recap_image_id
from builders.vqa import consensus, load_qas, question_configs

FOOD = "What kind of food is this?"
SHIRT = "What color is the man's shirt?"
HOLDING = "What is the man holding?"
COLOURS = ["red", "blue", "green", "white", "black", "yellow", "gray", "pink", "orange", "brown"]


def _answers(*pairs: tuple[str, int]) -> list[dict]:
    out = []
    for answer, n in pairs:
        out += [{"answer": answer, "answer_confidence": "yes"}] * n
    return [dict(a, answer_id=i + 1) for i, a in enumerate(out)]


class Inputs:
    """Writes the files; `qid` hands out question ids in VQAv2's style (image_id * 1000 + k)."""

    def __init__(self, root: Path):
        self.root = root
        self.questions: list[dict] = []
        self.annotations: list[dict] = []

    def ask(self, image_id, question, answers, answer_type="other"):
        qid = image_id * 1000 + sum(q["image_id"] == image_id for q in self.questions)
        self.questions.append({"image_id": image_id, "question": question, "question_id": qid})
        counts: dict[str, int] = {}
        for a in answers:
            counts[a["answer"]] = counts.get(a["answer"], 0) + 1
        self.annotations.append(
            {
                "question_id": qid,
                "image_id": image_id,
                "question_type": " ".join(question.lower().split()[:3]),
                "answer_type": answer_type,
                "multiple_choice_answer": max(counts, key=counts.get),
                "answers": answers,
            }
        )
        return qid


def _jpeg(path: Path, colour) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 24), colour).save(path, format="JPEG")


def _recap(image_id: int) -> dict:
    return {
        "id": f"{image_id:012d}",
        "conversations": [
            {"from": "human", "value": "<image>\nPlease generate a detailed caption."},
            {"from": "gpt", "value": f"  A detailed caption of image {image_id}.  "},
        ],
        "data_source": "coco",
    }


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("vqa-inputs")
    vqa = Inputs(root)
    # Food: images 1-5 usable; 6 has a tie; 7 has no caption; 8 has no image file.
    for i in range(1, 9):
        answers = (
            _answers(("cake", 5), ("pizza", 5))
            if i == 6
            else _answers((f"food{i}", 6), ("pasta", 4))
        )
        vqa.ask(i, FOOD, answers)
    # Shirt: images 9-20, one asked with other case and spacing.
    for i in range(9, 21):
        question = "what color is  the man's shirt?" if i == 9 else SHIRT
        vqa.ask(i, question, _answers((COLOURS[i % 10], 7), ("blue" if i % 10 else "red", 3)))
    # Holding: images 21-26; "Bat." and "bat" are one answer after normalising.
    for i in range(21, 27):
        answers = _answers(("Bat.", 3), ("bat", 2), ("racket", 3), ("ball", 2))
        vqa.ask(i, HOLDING, answers if i == 21 else _answers((f"thing{i}", 10)))
    # Extra question for --question, and the questions the overriding sets pair up.
    for i in range(1, 31):
        vqa.ask(i, "What sport is this?", _answers(("tennis" if i % 2 else "baseball", 10)))
        vqa.ask(i, "How many people are there?", _answers((str(i % 4 + 1), 8), ("0", 2)), "number")
        vqa.ask(i, "Is it sunny?", _answers(("yes", 10)), "yes/no")
    # COCO images, in both file-name styles; image 8 is absent.
    for i in range(1, 31):
        if i == 8:
            continue
        name = f"val2014/COCO_val2014_{i:012d}.jpg" if i % 2 else f"train2017/{i:012d}.jpg"
        _jpeg(root / "coco" / name, (i * 8, 100, 200 - i * 5))
    paths = {"coco": root / "coco", "questions": root / "v2_questions.json"}
    paths["questions"].write_text(
        json.dumps(
            {
                "info": {},
                "task_type": "Open-Ended",
                "data_type": "mscoco",
                "data_subtype": "val2014",
                "questions": vqa.questions,
                "license": {},
            }
        )
    )
    paths["annotations"] = root / "v2_annotations.json"
    paths["annotations"].write_text(
        json.dumps(
            {
                "info": {},
                "data_type": "mscoco",
                "data_subtype": "val2014",
                "annotations": vqa.annotations,
                "license": {},
            }
        )
    )
    # LLaVA-ReCap captions in three layouts; image 7 has none.
    ids = [i for i in range(1, 31) if i != 7]
    as_json = [dict(_recap(i), image=f"coco/train2017/{i:012d}.jpg") for i in ids[:10]]
    paths["captions_json"] = root / "recap.json"
    paths["captions_json"].write_text(json.dumps(as_json))
    paths["captions_jsonl"] = root / "recap.jsonl"
    paths["captions_jsonl"].write_text("\n".join(json.dumps(_recap(i)) for i in ids[10:20]))
    import pyarrow as pa
    import pyarrow.parquet as pq

    shard = [dict(_recap(i), image={"bytes": b"\xff\xd8", "path": f"{i}.jpg"}) for i in ids[20:]]
    paths["captions_parquet"] = root / "recap-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(shard), paths["captions_parquet"])
    # OK-VQA (images 1-6) and A-OKVQA (4-9): shared 4, 5, 6; image 4 asks the same question.
    ok = Inputs(root)
    for i in range(1, 7):
        question = "What is this used for?" if i == 4 else f"Which country invented food {i}?"
        ok.ask(i, question, _answers((f"country{i}", 6), ("italy", 4)))
        ok.ask(i, "A later question?", _answers(("x", 10)))
    paths["okvqa_questions"] = root / "OpenEnded_mscoco_val2014_questions.json"
    paths["okvqa_questions"].write_text(json.dumps({"questions": ok.questions}))
    paths["okvqa_annotations"] = root / "mscoco_val2014_annotations.json"
    paths["okvqa_annotations"].write_text(json.dumps({"annotations": ok.annotations}))
    aok = []
    for i in range(4, 10):
        aok.append(
            {
                "split": "val",
                "image_id": i,
                "question_id": f"22jbM6gDxdaMaunuzgrsBB{i}",
                "question": "What is this used for?" if i == 4 else f"What era is object {i}?",
                "choices": ["modern", "ancient", "medieval", "future"],
                "correct_choice_idx": i % 4,
                "direct_answers": ["modern"] * 10,
                "difficult_direct_answer": False,
                "rationales": ["A reason."] * 3,
            }
        )
    paths["aokvqa"] = root / "aokvqa_v1p0_val.json"
    paths["aokvqa"].write_text(json.dumps(aok))
    return paths


def _vqa_args(inputs, out, *extra, captions=None) -> list[str]:
    if captions is None:
        captions = [inputs[f"captions_{k}"] for k in ("json", "jsonl", "parquet")]
    return [
        "vqa",
        "--out", str(out),
        "--questions", str(inputs["questions"]),
        "--annotations", str(inputs["annotations"]),
        *[a for c in captions for a in ("--captions", str(c))],
        "--coco-dir", str(inputs["coco"]),
        "--n-validation", "2",
        "--n-test", "3",
        *extra,
    ]  # fmt: skip


def _load(folder: Path, config: str, tmp_path: Path, decode: bool = False):
    import datasets

    ds = datasets.load_dataset(str(folder), config, cache_dir=str(tmp_path / "hf-cache"))
    if not decode:
        ds = ds.cast_column("image", datasets.Image(decode=False))
    return ds


def test_consensus_rule():
    assert consensus(["pizza"] * 6 + ["cake"] * 4) == "pizza"
    assert consensus(["Pizza."] * 2 + ["pizza"] * 2 + ["cake"] * 3 + ["pie"] * 3) == "pizza"
    assert consensus(["pizza"] * 4 + ["cake"] * 3 + ["pie"] * 3) == "pizza"  # 4 of 10 and unique
    assert consensus(["pizza"] * 3 + ["cake"] * 3 + ["pie"] * 2 + ["a", "b"]) is None  # under 4
    assert consensus(["pizza"] * 5 + ["cake"] * 5) is None  # a tie
    assert consensus(["pizza"] * 5 + ["cake"] * 5, min_votes=6) is None
    assert consensus([]) is None


def test_caption_sources_and_coco_ids(inputs):
    captions = load_captions(
        [str(inputs["captions_json"]), str(inputs["captions_jsonl"]),
         str(inputs["captions_parquet"])]
    )  # fmt: skip
    assert sorted(captions) == [i for i in range(1, 31) if i != 7]
    assert captions[3] == "A detailed caption of image 3."
    assert coco_image_id("COCO_val2014_000000391895.jpg") == 391895
    assert coco_image_id("coco/train2017/000000391895.jpg") == 391895
    assert coco_image_id("000000391895") == 391895 and coco_image_id("abc") is None
    coco = CocoImages([inputs["coco"]])
    assert coco.path(3).name == "COCO_val2014_000000000003.jpg"
    assert coco.path(4).name == "000000000004.jpg" and coco.path(8) is None


def test_question_configs():
    configs = question_configs(["vqa_sport=What sport is this?", "Where is the dog?", "a=B?"])
    assert configs["vqa_sport"] == "What sport is this?" and configs["vqa_a"] == "B?"
    assert configs["vqa_where_is_the_dog"] == "Where is the dog?"
    assert list(configs)[:3] == ["vqa_food_class", "vqa_shirt_color", "vqa_man_holding"]


def test_vqa_build_selects_usable_items_and_validates(inputs, tmp_path, capsys):
    out = tmp_path / "vqa"
    assert cli.main(_vqa_args(inputs, out, "--question", "vqa_sport=What sport is this?")) == 0
    printed = capsys.readouterr().out
    assert "no consensus answer 1" in printed and "no dense caption 1" in printed
    meta = yaml.safe_load((out / "README.md").read_text().split("---\n", 2)[1])
    configs = [c["config_name"] for c in meta["configs"]]
    assert configs == ["vqa_food_class", "vqa_shirt_color", "vqa_man_holding", "vqa_sport"]
    assert [c.get("default", False) for c in meta["configs"]] == [True, False, False, False]
    assert meta["task_categories"] == ["visual-question-answering"]
    assert meta["size_categories"] == ["n<1K"]
    food = _load(out, "vqa_food_class", tmp_path)
    assert {s: food[s].num_rows for s in food} == {"validation": 2, "test": 3}
    rows = [r for s in ("validation", "test") for r in food[s]]
    # Exactly the five usable items: not the tie (6), the captionless (7), the fileless (8).
    assert sorted(r["image_id"] for r in rows) == [1, 2, 3, 4, 5]
    for row in rows:
        assert row["output"] == f"food{row['image_id']}" and len(row["answers"]) == 10
        assert row["caption"] == f"A detailed caption of image {row['image_id']}."
        assert row["question"] == FOOD and row["id"] == str(row["question_id"])
        assert row["image"]["bytes"][:2] == b"\xff\xd8"  # the COCO JPEG, unchanged
        assert validate(json_row(row), "row_vqa") == []
    holding = _load(out, "vqa_man_holding", tmp_path)
    first = [r for s in holding for r in holding[s] if r["image_id"] == 21]
    assert [r["output"] for r in first] == ["bat"]
    shirt = _load(out, "vqa_shirt_color", tmp_path, decode=True)
    assert isinstance(shirt["test"][0]["image"], Image.Image)
    sport = _load(out, "vqa_sport", tmp_path)
    assert sport["test"][0]["task"] == "vqa_sport"
    readme = (out / "README.md").read_text()
    assert "at least 4 annotators" in readme and "CC BY 4.0" in readme
    assert (meta["license"], meta["license_name"]) == ("other", "coco-vqa-terms")
    assert meta["license_link"] == "https://cocodataset.org/#termsofuse"
    assert "The dense captions covered 96.7% of the COCO images" in readme  # 29 of 30


def test_vqa_is_deterministic_under_a_seed(inputs, tmp_path):
    def shirt_ids(seed: int, name: str) -> list[str]:
        out = tmp_path / name
        assert cli.main(_vqa_args(inputs, out, "--seed", str(seed))) == 0
        ds = _load(out, "vqa_shirt_color", tmp_path)
        return [r["id"] for s in ("validation", "test") for r in ds[s]]

    first, again, other = shirt_ids(0, "a"), shirt_ids(0, "b"), shirt_ids(1, "c")
    assert first == again
    assert first != other


def test_vqa_too_few_items_fails_with_reasons(inputs, tmp_path, capsys):
    args = _vqa_args(inputs, tmp_path / "x")
    args[args.index("--n-test") + 1] = "4"
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "vqa_food_class" in err and "only 5 usable, 6 needed" in err
    assert "no COCO image file: 1" in err


def test_recap_ids_must_be_coco_file_names(tmp_path):
    assert recap_image_id("000000391895") == 391895
    assert recap_image_id("COCO_val2014_000000391895.jpg") == 391895
    assert recap_image_id("coco/train2017/000000391895.jpg") == 391895
    assert recap_image_id(391895) == 391895  # a JSON number
    for other in ("GCC_train_000644580", "391895", "00453/004539375.jpg", "", None, True):
        assert recap_image_id(other) is None, other
    # LLaVA-ReCap-CC3M ids: their digits would name unrelated COCO images; refused.
    cc3m = tmp_path / "recap-cc3m.json"
    cc3m.write_text(json.dumps([dict(_recap(1), id="GCC_train_000644580")]))
    with pytest.raises(InputError, match="record 0 has id 'GCC_train_000644580', not a COCO"):
        load_captions([str(cc3m)])
    # A COCO path in `image` is enough when `id` is something else.
    mixed = tmp_path / "recap-mixed.json"
    mixed.write_text(json.dumps([dict(_recap(5), id="x-5", image="train2017/000000000005.jpg")]))
    assert list(load_captions([str(mixed)])) == [5]


def test_captions_that_miss_most_candidate_images_are_refused(inputs, tmp_path, capsys):
    # Captions whose ids point at other images (a wrong id mapping): none of the candidates.
    shifted = tmp_path / "recap-shifted.json"
    shifted.write_text(json.dumps([_recap(i + 100) for i in range(1, 31)]))
    assert cli.main(_vqa_args(inputs, tmp_path / "out", captions=[shifted])) == 2
    err = capsys.readouterr().err
    assert "only 0 of the 26 COCO images" in err and "(0%)" in err and "80%" in err
    assert not (tmp_path / "out").exists()
    # Captions for 10 of the 26 candidates (38%): still refused; accepted with a lower bar.
    few = _vqa_args(inputs, tmp_path / "out", captions=[inputs["captions_json"]])
    assert cli.main(few) == 2
    assert "only 10 of the 26 COCO images" in capsys.readouterr().err
    assert cli.main([*few, "--min-caption-coverage", "0.3"]) == 1  # too few shirts, not 2
    assert "vqa_shirt_color" in capsys.readouterr().err


def _split_file(path: Path, key: str, out: Path) -> tuple[Path, Path]:
    """The file as two (train-like and val-like) halves of its `key` list."""
    doc = json.loads(path.read_text())
    half = len(doc[key]) // 2
    first, second = out / f"a-{path.name}", out / f"b-{path.name}"
    first.write_text(json.dumps(dict(doc, **{key: doc[key][:half]})))
    second.write_text(json.dumps(dict(doc, **{key: doc[key][half:]})))
    return first, second


def test_several_questions_and_annotations_files_are_merged(inputs, tmp_path, capsys):
    q1, q2 = _split_file(inputs["questions"], "questions", tmp_path)
    a1, a2 = _split_file(inputs["annotations"], "annotations", tmp_path)
    whole = load_qas(str(inputs["questions"]), str(inputs["annotations"]))
    # Questions of one file answered in the other: joined across files all the same.
    merged = load_qas([str(q1), str(q2)], [str(a2), str(a1)])
    assert sorted(merged, key=lambda q: q.question_id) == sorted(whole, key=lambda q: q.question_id)
    args = _vqa_args(inputs, tmp_path / "one")
    for flag, parts in (("--questions", (q1, q2)), ("--annotations", (a1, a2))):
        i = args.index(flag)
        args[i : i + 2] = [flag, str(parts[0]), flag, str(parts[1])]
    assert cli.main(args) == 0
    readme = (tmp_path / "one" / "README.md").read_text()
    assert f"`{q1.name}, {q2.name}`" in readme and f"`{a1.name}, {a2.name}`" in readme
    capsys.readouterr()
    # The same file twice: every question id is given twice; refused, naming both places.
    twice = _vqa_args(inputs, tmp_path / "two", "--questions", str(inputs["questions"]))
    assert cli.main(twice) == 2
    err = capsys.readouterr().err
    assert "question_id 1000 is asked twice" in err and "questions[0]" in err
    twice = _vqa_args(inputs, tmp_path / "two", "--annotations", str(a1))
    assert cli.main(twice) == 2
    assert "is annotated twice" in capsys.readouterr().err


def _overriding_args(inputs, out, *extra) -> list[str]:
    return [
        "overriding",
        "--out", str(out),
        "--questions", str(inputs["questions"]),
        "--annotations", str(inputs["annotations"]),
        "--coco-dir", str(inputs["coco"]),
        "--okvqa-questions", str(inputs["okvqa_questions"]),
        "--okvqa-annotations", str(inputs["okvqa_annotations"]),
        "--aokvqa", str(inputs["aokvqa"]),
        "--n-semantic", "12",
        *extra,
    ]  # fmt: skip


# The paper's pools, word for word (Figure 9); the builders must not paraphrase them.
PAPER_SYNTAX = {
    "all_caps": "Format your answer in ALL CAPS.",
    "quotes": "Put your answer in quotes.",
    "json": "Answer in JSON format.",
}
PAPER_CREATIVE = {
    "book_title": "Write a creative book title that matches the image.",
    "character_name": "Invent a name for the main character of the image.",
    "company_name": "Name a company that could use this image in an advertisement.",
}


def test_overriding_pools_are_the_papers_sentences():
    assert FORMATS == PAPER_SYNTAX
    assert CREATIVE == PAPER_CREATIVE


def test_overriding_sets_validate_and_conflict(inputs, tmp_path, capsys):
    out = tmp_path / "ov"
    assert cli.main(_overriding_args(inputs, out)) == 0
    printed = capsys.readouterr()
    # Two factual images here, far from the paper's 148: printed, and warned about on stderr.
    assert "override_factual: 2 image(s) (the paper's factual set has 148)" in printed.out
    assert "warning: override_factual has 2 image(s), far from the paper's 148" in printed.err
    assert "more than 25% off" in printed.err and "warning" not in printed.out
    meta = yaml.safe_load((out / "README.md").read_text().split("---\n", 2)[1])
    assert [c["config_name"] for c in meta["configs"]] == [
        "override_semantic", "override_syntax", "override_creative", "override_factual"
    ]  # fmt: skip
    assert all([f["split"] for f in c["data_files"]] == ["test"] for c in meta["configs"])
    assert [c.get("default", False) for c in meta["configs"]] == [True, False, False, False]
    assert meta["size_categories"] == ["n<1K"]
    sets = {c["config_name"]: list(_load(out, c["config_name"], tmp_path)["test"])
            for c in meta["configs"]}  # fmt: skip
    for rows in sets.values():
        for row in rows:
            assert validate(json_row(row), "row_overriding") == [], row["id"]
            assert row["question"] != row["override"]
    semantic = sets["override_semantic"]
    assert len(semantic) == 12 and len({r["image_id"] for r in semantic}) == 12
    assert 8 not in {r["image_id"] for r in semantic}  # no image file
    for row in semantic:
        assert row["question_answer"] != row["override_answer"]
        assert "Is it sunny?" not in (row["question"], row["override"])  # yes/no left out
    images = [r["image_id"] for r in semantic]
    for setting in ("syntax", "creative"):
        assert [r["image_id"] for r in sets[f"override_{setting}"]] == images
    for row, sem in zip(sets["override_syntax"], semantic, strict=True):
        first = next(k for k, v in FORMATS.items() if row["question"].endswith(v))
        second = next(k for k, v in FORMATS.items() if row["override"] == v)
        assert first != second
        assert row["question"] == f"{sem['question']} {PAPER_SYNTAX[first]}"
        assert row["override"] == PAPER_SYNTAX[second]
        assert row["question_answer"] == render_format(first, sem["question_answer"])
        assert row["override_answer"] == render_format(second, sem["question_answer"])
    assert {render_format(f, "cat") for f in FORMATS} == {"CAT", '"cat"', '{"answer": "cat"}'}
    for row in sets["override_creative"]:
        assert row["question"] in PAPER_CREATIVE.values()
        assert row["override"] in PAPER_CREATIVE.values()
    factual = sets["override_factual"]
    assert [r["image_id"] for r in factual] == [5, 6]  # shared; image 4 asks the same question
    assert factual[0]["question"] == "Which country invented food 5?"
    assert factual[0]["override"] == "What era is object 5?"
    assert factual[0]["question_answer"] == "country5"
    assert factual[0]["override_answer"] == "ancient"  # choices[correct_choice_idx]
    readme = (out / "README.md").read_text()
    assert "OK-VQA" in readme and "Only a `test` split" in readme
    assert (meta["license"], meta["license_name"]) == ("other", "coco-vqa-terms")
    for key, sentence in {**PAPER_SYNTAX, **PAPER_CREATIVE}.items():
        assert f'- `{key}`: "{sentence}"' in readme
    assert "Factual images: 2 (the paper's factual set: 148)." in readme
    assert "- A-OKVQA: `aokvqa_v1p0_val.json`" in readme and str(inputs["aokvqa"]) not in readme


def test_factual_count_warning_threshold():
    assert factual_count_report(148) == (
        "override_factual: 148 image(s) (the paper's factual set has 148)",
        None,
    )
    assert factual_count_report(111)[1] is None  # exactly 25% fewer: still close enough
    assert factual_count_report(185)[1] is None  # exactly 25% more
    low = factual_count_report(110)[1]
    assert low and "110 image(s), far from the paper's 148" in low and "26% fewer" in low
    high = factual_count_report(200)[1]
    assert high and "200 image(s)" in high and "35% more" in high


def test_factual_build_near_the_papers_count_does_not_warn(inputs, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(overriding, "PAPER_FACTUAL_IMAGES", 2)
    argv = _overriding_args(inputs, tmp_path / "f", "--settings", "factual")
    assert cli.main(argv) == 0
    printed = capsys.readouterr()
    assert "override_factual: 2 image(s) (the paper's factual set has 2)" in printed.out
    assert "warning" not in printed.err


def test_overriding_without_factual_inputs(inputs, tmp_path, capsys):
    args = _overriding_args(inputs, tmp_path / "a")[:9] + ["--n-semantic", "5"]
    assert cli.main(args) == 2
    assert "--okvqa-questions" in capsys.readouterr().err
    assert cli.main([*args, "--settings", "semantic,creative"]) == 0
    meta = yaml.safe_load((tmp_path / "a" / "README.md").read_text().split("---\n", 2)[1])
    assert [c["config_name"] for c in meta["configs"]] == ["override_semantic", "override_creative"]


def test_overriding_is_deterministic_and_needs_enough_pairs(inputs, tmp_path, capsys):
    def semantic(name: str, *extra: str) -> list[tuple]:
        out = tmp_path / name
        argv = _overriding_args(inputs, out, "--settings", "semantic", *extra)
        assert cli.main(argv) == 0
        return [
            (r["image_id"], r["question"])
            for r in _load(out, "override_semantic", tmp_path)["test"]
        ]

    assert semantic("a") == semantic("b")
    assert semantic("a") != semantic("c", "--seed", "3")
    argv = _overriding_args(inputs, tmp_path / "d", "--settings", "semantic")
    argv[argv.index("--n-semantic") + 1] = "40"
    assert cli.main(argv) == 1
    assert "only 29 VQAv2 image(s)" in capsys.readouterr().err


def test_inputs_through_an_fsspec_url(inputs):
    # hf://datasets/... goes through the same fsspec code; memory:// stands in for it offline.
    import fsspec

    from builders.sources import read_json, read_records

    fs = fsspec.filesystem("memory")
    fs.pipe("/vqa/questions.json", inputs["questions"].read_bytes())
    for i, name in enumerate(("captions_parquet", "captions_parquet")):
        fs.pipe(f"/vqa/recap/train-0000{i}-of-00002.parquet", inputs[name].read_bytes())
    assert read_json("memory://vqa/questions.json")["questions"][0]["question"] == FOOD
    records = list(read_records("memory://vqa/recap/train-*.parquet", columns=("id",)))
    assert len(records) == 2 * 9 and set(records[0]) == {"id"}  # only the asked column
    assert len(load_captions(["memory://vqa/recap/train-*.parquet"])) == 9
    with pytest.raises(FileNotFoundError, match="no file matches"):
        read_json("memory://vqa/absent-*.json")
    with pytest.raises(FileNotFoundError, match="no file matches"):
        read_json(str(inputs["coco"] / "absent.json"))
