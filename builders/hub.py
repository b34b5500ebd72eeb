"""Upload a built dataset folder to the Hugging Face Hub and say which commit it became.

The commit hash is what a paper or a results file should pin (`load_dataset(repo, config,
revision=...)`), so it is returned and printed rather than only the repository URL.

A re-push must leave the repo holding exactly the new build: a config or split the rebuild no
longer makes would otherwise stay on the Hub, and `load_dataset` (or a reader browsing the
files) would still find its stale Parquet. So the upload commit also deletes every remote
file of the kinds a build writes (`BUILD_FILE_PATTERNS`) that this upload does not replace.
Files a person added to the repo by hand (a figure, `.gitattributes`) are left alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# What builds write besides README.md (always re-uploaded): `<config>/<split>-*.parquet`.
BUILD_FILE_PATTERNS = ["*.parquet"]


def push_to_hub(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
    api: Any = None,
) -> str:
    """Create the dataset repo if needed, upload the folder in one commit; returns its hash.

    The same commit deletes remote Parquet files the folder no longer has (see module doc).
    """
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
        delete_patterns=list(BUILD_FILE_PATTERNS),
    )
    return getattr(info, "oid", None) or str(info)
