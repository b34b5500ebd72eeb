import pytest
import torch

from harness import engine
from harness.hooks import Intervention, captured, patched
from harness.templates import get_template, render_examples, render_instruction, render_query

T = get_template("spaced")
PAIRS = [("France", "Paris"), ("Japan", "Tokyo"), ("Peru", "Lima"), ("Kenya", "Nairobi")]


def layer_outputs(adapter, batch, interventions=()):
    """Every layer's full output [n_layers, B, T, d] for one forward, as the next layer sees it
    (observer hooks registered after the patch hooks, so they run after them)."""
    outs = []
    with patched(adapter.layers, list(interventions)), torch.no_grad():
        hooks = [
            layer.register_forward_hook(
                lambda _m, _a, o: outs.append(o if torch.is_tensor(o) else o[0])
            )
            for layer in adapter.layers
        ]
        try:
            logits = adapter.model(**batch.model_inputs).logits
        finally:
            for h in hooks:
                h.remove()
    return torch.stack(outs), logits


def test_patch_writes_exactly_the_vector_and_nothing_else(tiny_adapter):
    prompts = [render_query(T, "France"), render_query(T, "Democratic Kenya")]
    batch = tiny_adapter.encode(prompts)
    clean, clean_logits = layer_outputs(tiny_adapter, batch)
    vec = torch.randn(clean.shape[-1]) * 3
    layer, pos = 2, batch.input_ids.shape[1] - 1
    rows = torch.tensor([1])
    hot, hot_logits = layer_outputs(tiny_adapter, batch, [Intervention(layer, rows, pos, vec)])

    assert torch.equal(hot[layer, 1, pos], vec)
    # Everything before the patched layer, the unpatched row, and earlier positions of the
    # patched row are untouched (causal attention).
    assert torch.equal(hot[:layer], clean[:layer])
    assert torch.allclose(hot[:, 0], clean[:, 0], atol=1e-6)
    assert torch.allclose(hot[:, 1, :pos], clean[:, 1, :pos], atol=1e-6)
    mask = torch.ones_like(hot[layer, 1], dtype=torch.bool)
    mask[pos] = False
    assert torch.equal(hot[layer, 1][mask], clean[layer, 1][mask])
    # ... and the patch does change what follows.
    assert not torch.allclose(hot_logits[1, -1], clean_logits[1, -1])
    assert torch.allclose(hot_logits[0], clean_logits[0], atol=1e-5)


def test_capture_then_patch_round_trips(tiny_adapter):
    prompt = render_examples(T, PAIRS, query="Chile")
    batch = tiny_adapter.encode([prompt])
    got: list = []
    last = torch.tensor([batch.input_ids.shape[1] - 1])
    with captured(tiny_adapter.layers, last, got), torch.no_grad():
        clean = tiny_adapter.model(**batch.model_inputs).logits[0, -1]
    for layer in range(tiny_adapter.num_layers):
        iv = Intervention(layer, torch.tensor([0]), -1, got[layer][0])
        with patched(tiny_adapter.layers, [iv]), torch.no_grad():
            again = tiny_adapter.model(**batch.model_inputs).logits[0, -1]
        assert torch.allclose(again, clean, atol=1e-5), layer


def test_batched_equals_unbatched(tiny_adapter):
    prompts = [
        render_examples(T, PAIRS[:2], query="Chile"),
        render_query(T, "Peru"),
        render_examples(T, PAIRS, query="Norway"),
    ]
    together = engine.capture_task_states(tiny_adapter, prompts, batch_size=8)
    alone = torch.cat([engine.capture_task_states(tiny_adapter, [p]) for p in prompts])
    assert torch.allclose(together, alone, atol=1e-4)
    vec = torch.randn(together.shape[-1])
    for layer in (0, 3):
        b = engine.first_tokens(tiny_adapter, prompts, batch_size=8, vector=vec, layer=layer)
        u = torch.cat(
            [engine.first_tokens(tiny_adapter, [p], vector=vec, layer=layer) for p in prompts]
        )
        assert torch.equal(b, u)


def test_fast_sweep_equals_a_full_forward_per_layer(tiny_adapter):
    prompts = [render_query(T, x) for x in ("France", "United Arab Emirates", "Peru")]
    vectors = torch.randn(tiny_adapter.num_layers, 64) * 2
    fast = engine.sweep_layers(tiny_adapter, prompts, vectors, return_logits=True, max_rows=5)
    for layer in range(tiny_adapter.num_layers):
        batch = tiny_adapter.encode(prompts)
        iv = Intervention(layer, torch.arange(3), -1, vectors[layer])
        with patched(tiny_adapter.layers, [iv]), torch.no_grad():
            full = tiny_adapter.model(**batch.model_inputs).logits[:, -1]
        assert torch.allclose(fast[:, layer], full, atol=1e-4), layer
    ids = engine.sweep_layers(tiny_adapter, prompts, vectors)
    assert torch.equal(ids, fast.argmax(-1))


def _full_forward_logits(adapter, prompts, layer=None, vector=None):
    """The last position's logits of one full forward per prompt, patched or not."""
    out = []
    for p in prompts:
        batch = adapter.encode([p])
        ivs = [] if vector is None else [Intervention(layer, torch.arange(1), -1, vector)]
        with patched(adapter.layers, ivs), torch.no_grad():
            out.append(adapter.model(**batch.model_inputs).logits[0, -1])
    return torch.stack(out)


@pytest.mark.parametrize("bands", [1, 2, 3, None])
def test_sweep_of_several_vector_sets_in_bands_equals_full_forwards(tiny_adapter, bands):
    """Seeds' vectors share the prefix, and each band's step skips the layers below its lowest
    patched layer: every (set, layer) still equals its own full forward."""
    prompts = [render_query(T, x) for x in ("France", "United Arab Emirates", "Peru", "Chad")]
    sets = torch.randn(2, tiny_adapter.num_layers, 64) * 2
    patches = [(layer, v[layer]) for v in sets for layer in range(tiny_adapter.num_layers)]
    fast = engine.last_token_variants(tiny_adapter, prompts, patches, 7, True, bands=bands)
    swept = engine.sweep_layers(tiny_adapter, prompts, sets, return_logits=True, max_rows=7)
    assert swept.shape == (4, 2, tiny_adapter.num_layers, fast.shape[-1])
    for s in range(2):
        for layer in range(tiny_adapter.num_layers):
            full = _full_forward_logits(tiny_adapter, prompts, layer, sets[s, layer])
            column = s * tiny_adapter.num_layers + layer
            assert torch.allclose(fast[:, column], full, atol=1e-4), (s, layer)
            assert torch.allclose(swept[:, s, layer], full, atol=1e-4), (s, layer)


def test_query_and_patched_equal_a_full_forward_each(tiny_adapter):
    """no_context and every seed's patch from one pass: the unpatched forward's cache, cut by
    one token, is the prefix of the patched rows."""
    prompts = [render_query(T, x) for x in ("France", "United Arab Emirates", "Peru")]
    vectors = torch.randn(3, 64) * 2
    plain, patched_ids = engine.query_and_patched(tiny_adapter, prompts, vectors, 2, batch_size=2)
    assert torch.equal(plain, _full_forward_logits(tiny_adapter, prompts).argmax(-1))
    for j, v in enumerate(vectors):
        want = _full_forward_logits(tiny_adapter, prompts, 2, v).argmax(-1)
        assert torch.equal(patched_ids[:, j], want), j
    alone, none = engine.query_and_patched(tiny_adapter, prompts, torch.empty(0, 64), None)
    assert torch.equal(alone, plain) and none.shape == (3, 0)
    with pytest.raises(ValueError, match="needs a layer"):
        engine.query_and_patched(tiny_adapter, prompts, vectors, None)


def test_prompt_lengths_count_the_tokens_encode_makes(tiny_adapter):
    prompts = [render_query(T, "Peru"), render_examples(T, PAIRS, query="Norway")]
    lengths = tiny_adapter.prompt_lengths(prompts)
    assert lengths == [
        int(tiny_adapter.encode([p]).model_inputs["attention_mask"].sum()) for p in prompts
    ]
    assert lengths[0] < lengths[1]


def test_captured_states_equal_the_whole_prompts_forward(tiny_adapter):
    """Extraction stops each batch at its last task token; the states there are those of the
    whole prompt's forward (the answers after the task tokens change nothing)."""
    prompts = [render_examples(T, PAIRS[: i + 1]) for i in range(3)]
    batch = tiny_adapter.encode(prompts)
    assert int(batch.task_index.max()) < batch.input_ids.shape[1] - 1  # there is a tail to cut
    full, _ = layer_outputs(tiny_adapter, batch)
    want = full[:, torch.arange(3), batch.task_index].transpose(0, 1)
    assert torch.allclose(engine.capture_task_states(tiny_adapter, prompts), want, atol=1e-5)


def test_rows_are_cut_at_their_own_task_token_and_realigned():
    """Each row keeps its tokens up to its own task token, right-aligned, so no column is
    spent on answers (hand-written: left and right padding)."""
    ids = torch.tensor([[0, 0, 5, 6, 7, 8], [1, 2, 3, 4, 9, 9], [7, 7, 7, 0, 0, 0]])
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    cut, index = engine._up_to_task_tokens(
        {"input_ids": ids, "attention_mask": mask}, torch.tensor([3, 2, 1])
    )
    assert cut["attention_mask"].tolist() == [[0, 1, 1], [1, 1, 1], [0, 1, 1]]
    real = cut["input_ids"].masked_fill(cut["attention_mask"] == 0, -1)
    assert real.tolist() == [[-1, 5, 6], [1, 2, 3], [-1, 7, 7]]
    assert index.tolist() == [2, 2, 2]
    image_inputs = {"input_ids": ids, "attention_mask": mask, "pixel_values": torch.zeros(1)}
    same, same_index = engine._up_to_task_tokens(image_inputs, torch.tensor([3, 2, 1]))
    assert same is image_inputs and same_index.tolist() == [3, 2, 1]


def test_task_vector_is_the_mean_of_captured_states(tiny_adapter):
    prompts = [render_examples(T, PAIRS[i:] + PAIRS[:i]) for i in range(3)]
    states = engine.capture_task_states(tiny_adapter, prompts)
    assert states.shape == (3, tiny_adapter.num_layers, 64)
    assert torch.allclose(engine.extract_task_vector(tiny_adapter, prompts), states.mean(0))


@pytest.mark.parametrize(
    "pairs",
    [
        [("12:30", "noon"), ("Q: A:", "x"), ("a:b", "A:c")],
        [("France", "Paris"), ("Time: 9:15", "morning")],
    ],
)
@pytest.mark.parametrize("name", ["spaced", "paper"])
def test_task_token_is_the_delimiter_before_the_last_answer(tiny_adapter, pairs, name):
    template = get_template(name)
    prompt = render_examples(template, pairs, query="Q: 1:2")
    # The character is the marker's colon, and what follows it is the last answer.
    last_y = pairs[-1][1]
    assert prompt.text[prompt.task_char] == ":"
    after = prompt.text[prompt.task_char + 1 :]
    assert after.lstrip(" ").startswith(last_y + template.separator)
    batch = tiny_adapter.encode([prompt, render_query(template, "x")])
    enc = tiny_adapter.tokenizer(prompt.text, return_offsets_mapping=True)
    pad = batch.input_ids.shape[1] - len(enc["input_ids"])
    col = int(batch.task_index[0]) - pad
    start, end = enc["offset_mapping"][col]
    assert start <= prompt.task_char < end
    assert prompt.text[start:end].endswith(":") or ":" in prompt.text[start:end]
    # Tokens after the task token spell the last answer.
    rest = tiny_adapter.tokenizer.decode(enc["input_ids"][col + 1 :])
    assert rest.strip().startswith(last_y)
    # The query's task token is its last token.
    assert int(batch.task_index[1]) == batch.input_ids.shape[1] - 1


def test_instruction_task_token_is_the_last_token(tiny_adapter):
    batch = tiny_adapter.encode([render_instruction("The capital city of the country:")])
    assert int(batch.task_index[0]) == batch.input_ids.shape[1] - 1


def test_patching_a_layer_out_of_range_is_an_error(tiny_adapter):
    with pytest.raises(IndexError, match="out of range"):
        with patched(
            tiny_adapter.layers, [Intervention(99, torch.tensor([0]), -1, torch.zeros(64))]
        ):
            pass
