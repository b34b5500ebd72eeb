import re

import pytest

from benchmark import CROSS_MODAL_TASKS, POOLS, TASKS, get_task, load_pool, load_task, validate


@pytest.fixture(scope="module", params=POOLS)
def pool(request):
    return load_pool(request.param)


def test_pool_file_matches_schema(pool):
    assert validate(pool, "pool") == []


def test_pool_has_130_unique_items(pool):
    items = pool["items"]
    assert len(items) == 130
    assert len({i["id"] for i in items}) == 130
    assert len({i["input"].casefold() for i in items}) == 130


def test_split_is_30_validation_100_test(pool):
    splits = [i["split"] for i in pool["items"]]
    assert splits.count("validation") == 30
    assert splits.count("test") == 100


def test_both_tasks_of_a_pool_share_the_split(pool):
    a, b = pool["tasks"]
    for split in ("validation", "test"):
        assert [r["id"] for r in load_task(a, split)] == [r["id"] for r in load_task(b, split)]


def test_labels_and_titles_not_empty(pool):
    for item in pool["items"]:
        assert item["wikipedia_title"].strip(), item["id"]
        for task in pool["tasks"]:
            assert item["labels"][task].strip(), (item["id"], task)
            assert item["labels"][task] == item["labels"][task].strip()


def test_pool_records_label_sources(pool):
    assert pool["label_sources"] and all(s.strip() for s in pool["label_sources"])
    assert set(pool["label_rules"]) == set(pool["tasks"])


def test_currency_labels_are_one_word_from_the_currency_name():
    for item in load_pool("countries")["items"]:
        label = item["labels"]["country_currency"]
        assert re.fullmatch(r"[A-Z][a-zà-ÿ]+", label), (item["id"], label)
        assert item["currency_name"].split()[-1].casefold() == label.casefold(), item["id"]


def test_country_images_are_flag_pages():
    for item in load_pool("countries")["items"]:
        assert item["wikipedia_title"].startswith("Flag of "), item["id"]


def test_latin_names_are_binomials():
    names = [i["labels"]["animal_latin"] for i in load_pool("animals")["items"]]
    for name in names:
        assert re.fullmatch(r"[A-Z][a-z]+ [a-z]+", name), name
    assert len(set(names)) == len(names)


def test_one_word_lowercase_labels():
    for task in ("animal_young", "food_color", "food_flavor"):
        for r in load_task(task):
            assert re.fullmatch(r"[a-z]+", r["output"]), (task, r["id"], r["output"])


def test_paper_examples_are_in_the_pools():
    # DESIGN.md: the examples the paper shows.
    def label(task, name):
        return {r["input"]: r["output"] for r in load_task(task)}[name]

    assert label("country_capital", "Greece") == "Athens"
    assert label("country_currency", "Italy") == "Euro"
    assert label("animal_latin", "Gray Wolf") == "Canis lupus"
    assert label("animal_young", "Common Dolphin") == "calf"
    assert label("food_color", "Persimmon") == "orange"
    assert label("food_flavor", "Strawberry") == "sweet"


def test_every_cross_modal_task_loads_with_the_documented_shape():
    for task_id in CROSS_MODAL_TASKS:
        records = load_task(task_id)
        assert len(records) == 130
        assert set(records[0]) == {"id", "task", "split", "input", "output", "wikipedia_title"}
        assert {r["task"] for r in records} == {task_id}
        assert len(load_task(task_id, "validation")) == 30
        assert len(load_task(task_id, "test")) == 100


def test_registry_holds_all_14_tasks_with_instructions():
    assert len(TASKS) == 14
    for task in TASKS.values():
        assert get_task(task.id) is task
        assert task.instruction.strip()
        assert task.scoring in ("first_token", "judge", "exact_and_judge")
    assert get_task("country_capital").instruction == "The capital city of the country:"


def test_tasks_without_a_pool_point_to_the_builders():
    with pytest.raises(ValueError, match="vlm-tv-build"):
        load_task("vqa_food_class")


def test_unknown_task_id_lists_the_known_ones():
    with pytest.raises(KeyError) as info:
        get_task("country_capitol")
    message = str(info.value)
    assert "country_capitol" in message
    for task_id in TASKS:
        assert task_id in message


def test_unknown_split_is_a_clear_error():
    with pytest.raises(ValueError, match="validation, test"):
        load_task("food_color", "train")


def test_loaded_pool_is_a_copy():
    load_pool("foods")["items"].clear()
    assert len(load_pool("foods")["items"]) == 130
