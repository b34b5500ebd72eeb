"""Writing the Hub's dataset layout that `benchmark.layout` describes.

`OUT/<config>/<split>-00000-of-00001.parquet` plus `OUT/README.md` whose YAML `configs:` names
each file. That is what `datasets.load_dataset(OUT, config)` reads locally and what the Hub
serves after an upload, with no loading script. The features (the `Image` type included) are
stored in each Parquet file's schema metadata, so a reader gets PIL images back.

`write_configs` builds the whole folder beside `OUT` and swaps it in when complete
(`builders.output`): nothing of an earlier build is left over, an interrupted build leaves `OUT`
as it was, and a folder that is not an earlier build of the same kind is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmark.files import atomic_output, atomic_write_text
from benchmark.layout import SPLITS, data_file

from .output import build_folder

__all__ = ["SPLITS", "config_splits", "data_file", "write_configs", "write_parquet"]


def write_parquet(path: Path, rows: Sequence[Mapping[str, Any]], features: Any) -> None:
    """Encode rows with `features` (datasets.Features) and write them atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    encoded = [features.encode_example(dict(row)) for row in rows]
    table = pa.Table.from_pylist(encoded, schema=features.arrow_schema)
    with atomic_output(path) as tmp:
        # Small row groups keep image-heavy files readable by the Hub's viewer.
        pq.write_table(table, str(tmp), row_group_size=100)


def config_splits(rows_by_config: Mapping[str, Mapping[str, Sequence[Any]]]) -> dict[str, list]:
    """{config: [splits with rows, in validation/test order]}."""
    out = {}
    for config, by_split in rows_by_config.items():
        splits = [s for s in SPLITS if by_split.get(s)]
        splits += sorted(s for s in by_split if s not in SPLITS and by_split[s])
        out[config] = splits
    return out


def write_configs(
    out_dir: str | Path,
    rows_by_config: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]],
    features: Any,
    card_text: str,
    *,
    kind: str = "custom",
    overwrite: bool = False,
) -> Path:
    """Write every (config, split) as Parquet and the card; returns the folder.

    `out_dir` must be new, empty, or an earlier build of the same `kind` (its marker says so);
    `overwrite` replaces whatever it holds. Raises `builders.output.OutputFolderError` otherwise.
    """
    out = Path(out_dir)
    configs = config_splits(rows_by_config)
    with build_folder(out, kind, overwrite=overwrite) as tmp:
        for config, splits in tqdm(configs.items(), desc="writing", unit="config", disable=None):
            for split in splits:
                rows = rows_by_config[config][split]
                write_parquet(tmp / data_file(config, split), rows, features)
        atomic_write_text(tmp / "README.md", card_text)
    return out
