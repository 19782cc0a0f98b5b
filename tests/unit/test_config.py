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


def test_same_config_tolerates_fields_added_since_the_run_started(tmp_path):
    import yaml

    from selftaught.store import RunDirError, RunStore

    cfg = config.load(None, ["iterations=2"])
    current = config.to_yaml(cfg)
    tree = yaml.safe_load(current)
    del tree["trainer"]["warmup_ratio"], tree["report_to"]  # as written by an older selftaught
    old = yaml.safe_dump(tree, sort_keys=False)
    assert old != current and config.same_config(old, current)
    tree["trainer"]["lr"] = 0.5  # a real change is still a different run
    changed = yaml.safe_dump(tree, sort_keys=False)
    assert not config.same_config(changed, current)
    assert not config.same_config("not: [valid", current)

    store = RunStore(tmp_path / "run")
    store.create_or_check(old)
    assert store.check(current, config.same_config) is True
    (tmp_path / "run" / "config.yaml").write_text(changed)
    with pytest.raises(RunDirError, match="different config"):
        store.check(current, config.same_config)


def test_every_command_a_recipe_documents_loads():
    """The ``#   selftaught run recipes/<r>.yaml k=v ...`` lines at the top of each recipe
    are commands users copy: each must name a recipe and overrides that validate."""
    import re
    import shlex
    from pathlib import Path

    recipes = Path(config.__file__).parent / "recipes"
    seen = 0
    for path in sorted(recipes.glob("*.yaml")):
        for line in path.read_text().splitlines():
            if not line.startswith("#") or "selftaught run recipes/" not in line:
                continue
            command = re.sub(r"\[(\S+=\S+)\]", r"\1", line.lstrip("#").split("  #")[0])  # [an optional override]
            words = shlex.split(command)
            recipe, overrides = words[2], [w for w in words[3:] if not w.startswith("-")]
            config.load(recipes / Path(recipe).name, overrides)
            seen += 1
    assert seen >= 10
