"""``dataset``: problems from any Hugging Face ``datasets`` source.

``path`` is what ``datasets.load_dataset`` takes -- a hub name (``openai/gsm8k``,
with ``name: main``), a local folder of data files, or a builder such as ``json``,
``csv`` or ``parquet`` with ``data_files`` -- or a folder written by
``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` (read with
``load_from_disk``). Local data never touches the network; a hub name is read from
the HF cache when ``HF_DATASETS_OFFLINE=1``.

The train pool is ``split``; the held-out set is ``eval_split`` when given (the
contamination guard refuses overlap), else a hash split of ``split``. Field
mapping, ``answer_format: gsm8k`` (``#### 42`` answers), verifier inference and
tolerances are the ``jsonl`` task's (``tasks/jsonl.py``); rows are numbered from 1
in ids and messages.

    selftaught run recipes/star_smollm2_gsm8k.yaml task.type=dataset task.path=openai/gsm8k \\
        task.name=main task.eval_split=test task.answer_format=gsm8k
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from selftaught import jsonl as reader
from selftaught.records import Problem
from selftaught.tasks import _qa
from selftaught.tasks.jsonl import Fields, problem, qa_task


class Config(Fields):
    type: str = "dataset"
    path: str = Field(..., description="load_dataset name or builder, a local data folder, or a save_to_disk folder")
    name: str | None = Field(None, description="the dataset's configuration (subset), e.g. main for openai/gsm8k")
    split: str = Field("train", description="split of the train pool")
    eval_split: str | None = Field(None, description="held-out split (None: hash-split `split`)")
    data_files: str | list[str] | dict[str, str | list[str]] | None = Field(None, description="load_dataset's data_files")
    revision: str | None = Field(None, description="hub revision (commit, tag or branch)")


def _saved_to_disk(path: Path) -> bool:
    return path.is_dir() and any((path / f).is_file() for f in ("dataset_dict.json", "state.json"))


def open_split(cfg: Config, split: str):
    """One split as a ``datasets.Dataset``; errors name the source and the splits it has."""
    import datasets

    from selftaught.models.loading import quiet_hf

    quiet_hf()
    local = Path(cfg.path).expanduser()
    try:
        if _saved_to_disk(local):
            ds = datasets.load_from_disk(str(local))
            if isinstance(ds, datasets.Dataset):
                return ds if split == "train" else _no_split(cfg, split, ["train (a single saved Dataset)"])
        else:
            ds = datasets.load_dataset(cfg.path, cfg.name, data_files=cfg.data_files, revision=cfg.revision)
    except Exception as e:  # datasets raises many kinds: name the source and pass its words on
        raise reader.DataError(f"dataset {cfg.path!r}{f' ({cfg.name})' if cfg.name else ''}: cannot load: "
                               f"{type(e).__name__}: {e}") from None
    if split not in ds:
        _no_split(cfg, split, list(ds))
    return ds[split]


def _no_split(cfg: Config, split: str, have: list[str]):
    raise reader.DataError(f"dataset {cfg.path!r}: no split {split!r}; it has: {', '.join(have)}")


def load_split(cfg: Config, split: str) -> list[Problem]:
    ds = open_split(cfg, split)
    source = f"{cfg.path}[{split}]"
    prefix = f"{Path(cfg.path).name or cfg.path}/{split}"
    ids = reader.UniqueIds(source)
    out = [problem(source, i + 1, dict(rec), cfg, prefix, ids) for i, rec in enumerate(ds)]
    if not out:
        raise reader.DataError(f"{source}: no rows")
    return out


def build(cfg: Config):
    pool = load_split(cfg, cfg.split)
    if cfg.eval_split:
        pool, held = _qa.dedupe(pool), _qa.dedupe(load_split(cfg, cfg.eval_split))
    else:
        pool, held = _qa.hash_split(pool, cfg.held_out_fraction, f"dataset/{cfg.split_seed}")
    return qa_task("dataset", cfg, pool, held)
