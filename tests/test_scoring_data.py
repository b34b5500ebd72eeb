import pytest

from benchmark import load_task
from benchmark.scoring import lenient_match, strict_match
from harness.items import majority_answer, sample_demos


@pytest.mark.parametrize(
    "pred,target,hit",
    [
        (" Paris", "Paris", True),
        ("Par", "Paris", True),  # a first token that starts the answer
        (" Can", "Canis lupus", True),
        ("Paris is", "Paris", True),  # either may be the prefix
        (" paris", "Paris", False),  # case-sensitive by default
        ("", "Paris", False),  # an empty prediction is never a hit
        ("\n", "Paris", False),
        (" London", "Paris", False),
    ],
)
def test_lenient_rule(pred, target, hit):
    assert lenient_match(pred, target) is hit


def test_case_insensitive_flag():
    assert lenient_match(" paris", "Paris", case_insensitive=True)
    assert strict_match(" PARIS", "Paris", case_insensitive=True)
    assert not strict_match(" PARIS", "Paris")


def test_strict_rule_compares_whole_first_tokens():
    assert strict_match(" Can", " Can")
    assert not strict_match(" Ca", " Can")
    assert not strict_match("", "")


def test_demos_never_include_the_query_and_do_not_repeat():
    pool = load_task("country_capital", "validation")
    for query in pool:
        demos = sample_demos(pool, query, 5, seed=0, task_id="country_capital")
        assert query["id"] not in {d["id"] for d in demos}
        assert len({d["id"] for d in demos}) == 5


def test_demos_depend_on_seed_task_and_query_only():
    pool = load_task("food_color", "test")
    q = pool[7]
    a = sample_demos(pool, q, 5, 1, "food_color")
    # Drawing demos for other queries first (another processing order) changes nothing.
    for other in pool[:7]:
        sample_demos(pool, other, 5, 1, "food_color")
    assert a == sample_demos(pool, q, 5, 1, "food_color")
    assert a != sample_demos(pool, q, 5, 2, "food_color")


def test_too_many_demos_is_an_error():
    pool = load_task("food_color", "validation")
    with pytest.raises(ValueError, match="only 29 other items"):
        sample_demos(pool, pool[0], 30, 0, "food_color")


def test_majority_answer_ties_go_to_the_first_seen():
    demos = [{"output": o} for o in ["calf", "pup", "pup", "calf", "cub"]]
    assert majority_answer(demos) == "calf"
    assert majority_answer([{"output": "cub"}, {"output": "pup"}, {"output": "pup"}]) == "pup"


def test_byte_fragments_match_strictly_by_token_id_only():
    # Two different tokens that each decode to U+FFFD (pieces of a multi-byte character).
    assert not strict_match("\ufffd", "\ufffd", prediction_id=101, target_id=102)
    assert strict_match("\ufffd", "\ufffd", prediction_id=101, target_id=101)
    # The same word with and without its leading space is still the same first token.
    assert strict_match(" Paris", "Paris", prediction_id=5, target_id=6)


def test_smollm2_byte_fragment_tokens_do_not_strictly_match_tokyo_in_kanji():
    """The real case: SmolLM2 decodes many byte tokens to U+FFFD, so a fragment would match the
    first token of 東京 as a string; by id it does not."""
    from harness.adapters import make_adapter

    adapter = make_adapter("smollm2-135m")
    adapter.load()
    tok = adapter.tokenizer
    target = adapter.answer_token("Q: Japan\nA:", "東京")
    target_text = adapter.decode_token(target)
    texts = tok.batch_decode([[i] for i in range(tok.vocab_size)])
    fragments = [i for i, text in enumerate(texts) if text == target_text]
    assert "\ufffd" in target_text and len(fragments) > 1
    other = next(i for i in fragments if i != target)
    assert not strict_match(adapter.decode_token(other), target_text, False, other, target)
    assert strict_match(target_text, target_text, False, target, target)
