"""Upload a built dataset folder to the Hugging Face Hub and say which commit it became.

The commit hash is what a paper or a results file should pin (`load_dataset(repo, config,
revision=...)`), so it is returned and printed rather than only the repository URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def push_to_hub(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
    api: Any = None,
) -> str:
    """Create the dataset repo if needed, upload the folder in one commit; returns its hash."""
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    info = api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        repo_type="dataset",
        commit_message=commit_message or "vlm-tv-build: upload dataset",
        ignore_patterns=[".*", "**/.*"],  # temporary files of interrupted writes
    )
    return getattr(info, "oid", None) or str(info)
