"""Bad input to `selftaught run` exits non-zero with a clear message and writes nothing."""

from selftaught.cli import main


def test_missing_model_path_writes_nothing(tmp_path, capsys):
    code = main(["run", f"out_dir={tmp_path}", "name=r", "model=/nonexistent/model-dir"])
    assert code == 2
    assert "/nonexistent/model-dir" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_unknown_component_and_key(tmp_path, capsys):
    assert main(["run", f"out_dir={tmp_path}", "method.type=nope"]) == 2
    assert "unknown method type 'nope'" in capsys.readouterr().err
    assert main(["validate", "trainer.lrr=1"]) == 2
    assert "trainer.lrr" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_resume_refuses_overrides_and_foreign_dirs(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    assert main(["run", str(tmp_path / "x")]) == 2
    assert "not a selftaught run" in capsys.readouterr().err


def test_ls_lists_components(capsys):
    assert main(["ls"]) == 0
    out = capsys.readouterr().out
    assert "arithmetic" in out and "star" in out and "sft" in out and "hf" in out


def test_probe_with_a_reasoning_gym_typo_names_the_field_and_the_fix(capsys):
    from selftaught import cli

    assert cli.main(["probe", "--model", "builtin:tiny", "--task", "reasoning_gym:basic_arithmeticc"]) == 2
    err = capsys.readouterr().err
    assert "`task.type`: unknown dataset 'basic_arithmeticc'" in err and "did you mean reasoning_gym:basic_arithmetic" in err
    assert "pydantic" not in err and "validation error for" not in err


def test_an_interrupted_train_leaves_no_scratch_dir(tmp_path):
    """The trainer's temp folder is removed when the process exits early (here: a child
    that raises mid-stage), not left behind as an empty selftaught-sft-* dir."""
    import subprocess
    import sys

    code = ("import os, tempfile; tempfile.tempdir = os.environ['T']\n"
            "from selftaught.trainers import scratch_dir\n"
            "print(scratch_dir('sft'), flush=True)\nraise KeyboardInterrupt")
    proc = subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ, "T": str(tmp_path)},
                          capture_output=True, text=True)
    made = proc.stdout.strip()
    assert made.startswith(str(tmp_path / "selftaught-sft-")) and proc.returncode != 0
    assert not list(tmp_path.glob("selftaught-sft-*"))
