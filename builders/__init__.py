"""Builders of the benchmark's Hub datasets (`vlm-tv-build`).

- `cross_modal`: the six cross-modal tasks, as text (`build_text_only`, offline) or with their
  Wikipedia images (`build_with_images`); `write_dataset` writes rows held in memory.
- `vqa`: VQAv2 subsets with LLaVA-ReCap dense captions.
- `overriding`: the task-overriding sets (semantic, syntax, creative, factual).
- `wiki` / `http`: the MediaWiki client (User-Agent, rate limit, retries, disk cache).
- `layout` / `card` / `hub`: the Hub's Parquet layout, dataset cards, uploads.

Nothing here is imported by the harness at run time; `datasets` is imported only when writing.
"""
