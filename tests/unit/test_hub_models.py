"""Hub ids (``model: org/name[@revision]``) resolve through huggingface_hub and its
cache, offline, against a cache laid out in the hub's own layout
(``models--org--name/{blobs,refs,snapshots}``) from a tiny model built here."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from selftaught import hardware
from selftaught.models import loading
from tiny_llama import save_tiny_llama  # tests/unit/tiny_llama.py

REPO = "tiny-org/tiny-llama"
COMMIT = hashlib.sha1(b"tiny-llama, first commit").hexdigest()


def _blob_name(data: bytes, name: str) -> str:
    """The hub names a blob by its etag: sha256 for LFS files (weights), the git blob sha1 otherwise."""
    if name.endswith(".safetensors"):
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lay_out_hub_cache(model_dir: Path, hub_cache: Path, repo: str, commit: str, ref: str = "main") -> Path:
    """Copy an HF model directory into ``hub_cache`` the way ``snapshot_download`` stores it:
    content in blobs/, snapshots/<commit>/<file> as relative symlinks, refs/<ref> -> commit."""
    root = hub_cache / ("models--" + repo.replace("/", "--"))
    snap = root / "snapshots" / commit
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    snap.mkdir(parents=True, exist_ok=True)
    for f in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        data = f.read_bytes()
        blob = root / "blobs" / _blob_name(data, f.name)
        blob.write_bytes(data)
        link = snap / f.relative_to(model_dir)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / ref).write_text(commit)
    return snap


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A random 1-layer Llama with the arithmetic task's character tokenizer, saved locally."""
    out = tmp_path_factory.mktemp("tiny-src")
    save_tiny_llama(out)
    return out


@pytest.fixture(scope="module")
def hf_home(tiny_model, tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("hf-home")
    lay_out_hub_cache(tiny_model, home / "hub", REPO, COMMIT)
    return home


@pytest.fixture
def offline(hf_home, monkeypatch):
    """This process offline against ``hf_home`` (huggingface_hub read HF_HOME and
    HF_HUB_OFFLINE at import; the subprocess test below sets the real variables)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(loading, "_revisions", {})
    monkeypatch.setattr(hardware, "_current", None)  # probe calls hardware.use(): undone after the test
    monkeypatch.setenv(hardware.ENV, "")
    return hf_home / "hub"


def test_the_cache_is_in_the_hubs_own_layout(hf_home):
    from huggingface_hub import scan_cache_dir

    info = scan_cache_dir(hf_home / "hub")
    assert not info.warnings
    (repo,) = info.repos
    assert repo.repo_id == REPO and repo.repo_type == "model"
    (rev,) = repo.revisions
    assert rev.commit_hash == COMMIT and set(rev.refs) == {"main"}
    assert {f.file_name for f in rev.files} >= {"config.json", "model.safetensors", "tokenizer.json"}


def test_hub_id_resolves_offline_to_its_cached_snapshot_and_loads(offline, tiny_model):
    import torch

    path = loading.resolve(REPO)
    assert Path(path) == offline / f"models--{REPO.replace('/', '--')}" / "snapshots" / COMMIT
    assert loading.hub_revision(REPO) == COMMIT
    assert loading.checkpoint_hash(path) == loading.checkpoint_hash(str(tiny_model))  # same weights, via symlinks
    model, tok = loading.load_pretrained(path)
    ref, _ = loading.load_pretrained(str(tiny_model))
    x = torch.tensor([tok("12+34=")["input_ids"]])
    with torch.inference_mode():
        assert torch.equal(model(x).logits, ref(x).logits)


def test_revision_may_be_a_branch_or_a_commit(offline):
    assert loading.resolve(f"{REPO}@main") == loading.resolve(REPO)
    assert loading.resolve(f"{REPO}@{COMMIT}") == loading.resolve(REPO)
    assert loading.hub_revision(f"{REPO}@{COMMIT}") == COMMIT


def test_offline_without_the_model_says_so_and_how_to_fetch_it(offline):
    with pytest.raises(FileNotFoundError) as e:
        loading.resolve("tiny-org/not-downloaded")
    msg = str(e.value)
    assert "not in the cache" in msg and str(offline) in msg and "HF_HUB_OFFLINE" in msg
    assert "hf download tiny-org/not-downloaded" in msg and "huggingface-cli download" in msg
    with pytest.raises(FileNotFoundError, match=r"hf download tiny-org/tiny-llama --revision v9"):
        loading.resolve(f"{REPO}@v9")  # a revision that was never fetched


def test_a_local_directory_wins_over_a_hub_id_of_the_same_spelling(offline, tiny_model, tmp_path, monkeypatch):
    import shutil

    shutil.copytree(tiny_model, tmp_path / REPO)
    monkeypatch.chdir(tmp_path)
    assert loading.resolve(REPO) == REPO
    assert loading.hub_revision(REPO) is None
    assert loading.hub_revision("builtin:tiny") is None


def test_a_missing_local_path_is_not_taken_for_a_hub_id(offline):
    for spec in ("./nowhere", "runs/x/iter_001/checkpoint", "/abs/missing", "weights/model.gguf"):
        with pytest.raises(FileNotFoundError, match="no such directory or file"):
            loading.resolve(spec)


def test_probe_cli_fails_clearly_on_a_hub_id_that_is_not_cached(offline, capsys):
    from selftaught import cli

    rc = cli.main(["probe", "--model", "tiny-org/not-downloaded", "--task", "arithmetic", "--n", "2"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "not in the cache" in err and "hf download tiny-org/not-downloaded" in err


def test_probe_cli_runs_on_a_hub_id_with_real_hf_home_and_offline_variables(hf_home, tmp_path):
    """The environment variables themselves (a fresh process: huggingface_hub reads them at import)."""
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "SELFTAUGHT_CACHE": str(tmp_path / "cache")}
    env.pop("HF_HUB_CACHE", None), env.pop("SELFTAUGHT_HARDWARE", None)
    out = tmp_path / "probe.json"
    proc = subprocess.run([sys.executable, "-m", "selftaught.cli", "probe", "--model", REPO, "--task", "arithmetic",
                           "--n", "3", "--max-new-tokens", "6", "--json", str(out), "task.eval_digits=[1,2]"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    r = json.loads(out.read_text())
    assert r["model"] == REPO and r["revision"] == COMMIT and r["n"] == 3
    assert r["hardware"].startswith("cpu, float32")
    assert COMMIT in proc.stdout


def test_a_run_on_a_hub_id_records_the_resolved_commit(offline, tmp_path):
    """The commit a `model: org/name` resolved to is in the run's metrics (provenance
    next to eval/checkpoint_hash), here for the iteration-0 evaluation."""
    import json

    from selftaught import config, loop

    cfg = config.load(None, [f"model={REPO}", "iterations=0", "task.eval_digits=[1,2]", "task.eval_per_group=2",
                             "eval.max_new_tokens=8", "gate.natural_ppl_examples=0", f"out_dir={tmp_path}", "name=hub"])
    root = loop.run(cfg).root
    m = json.loads((root / "metrics.jsonl").read_text().splitlines()[0])
    assert m["model/hub_revision"] == COMMIT and m["eval/checkpoint_hash"]
