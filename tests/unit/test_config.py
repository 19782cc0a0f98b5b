import pytest

from selftaught import config


def test_default_recipe_validates_and_round_trips(tmp_path):
    cfg = config.load()
    assert cfg.method.type == "star" and cfg.task.type == "arithmetic"
    p = tmp_path / "r.yaml"
    p.write_text(config.to_yaml(cfg))
    assert config.load(p) == cfg


def test_overrides_are_typed():
    cfg = config.load(None, ["trainer.lr=1e-4", "iterations=2", "task.pool_digits=[1,5]", "method.rationalize=false"])
    assert cfg.trainer.lr == 1e-4 and cfg.iterations == 2
    assert tuple(cfg.task.pool_digits) == (1, 5) and cfg.method.rationalize is False


def test_config_is_frozen():
    cfg = config.load()
    with pytest.raises(Exception):
        cfg.trainer.lr = 3.0


def test_errors_name_file_line_and_field(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\ntask:\n  type: arithmetic\n  pool_size: many\nbackend: hf\nmethod: star\ntrainer: sft\n")
    with pytest.raises(config.ConfigError) as e:
        config.load(p)
    msg = str(e.value)
    assert str(p) in msg and "line 4" in msg and "task.pool_size" in msg


def test_unknown_key_and_unknown_type(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("task: arithmetic\nbackend: hf\nmethod: {type: nope}\ntrainer: sft\nitertions: 3\n")
    with pytest.raises(config.ConfigError) as e:
        config.load(p)
    msg = str(e.value)
    assert "unknown method type 'nope'" in msg and "star" in msg
    assert "itertions" in msg and "line 5" in msg


def test_missing_file_and_bad_override():
    with pytest.raises(config.ConfigError, match="no such recipe"):
        config.load("/nonexistent/recipe.yaml")
    with pytest.raises(config.ConfigError, match="key=value"):
        config.load(None, ["trainer.lr"])
