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
