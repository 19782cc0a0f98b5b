"""Your own components by import path, your own verifier as a plain function, and
the recipe-editing overrides that go with them (``~key``, ``key=null``)."""

import json
import textwrap

import pytest

from selftaught import config, registry
from selftaught.records import Problem, Score
from selftaught.verifiers import callable as user

TASK_PLUGIN = '''
from selftaught.component import Component
from selftaught.tasks.arithmetic import Arithmetic, Config as ArithmeticConfig


class Config(ArithmeticConfig):
    type: str = "mine"
    label: str = "x"


class Doubled(Arithmetic):
    name = "doubled"


def build(cfg):
    return Doubled(cfg)
'''


def _file(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_file_plugin_absolute_and_relative(tmp_path, monkeypatch):
    _file(tmp_path, "my_task.py", TASK_PLUGIN)
    module = registry.load("task", f"{tmp_path}/my_task.py")
    cfg = module.Config(type=f"{tmp_path}/my_task.py", label="y", pool_size=10)
    assert module.build(cfg).name == "doubled" and cfg.label == "y"
    monkeypatch.chdir(tmp_path)
    assert registry.load("task", "./my_task.py") is module  # imported once, by absolute path
    assert registry.absolute("./my_task.py:Doubled") == f"{tmp_path.resolve()}/my_task.py:Doubled"
    # Name: a class called as Name(cfg), with the module's Config
    comp = registry.load("task", "./my_task.py:Doubled")
    assert comp.Config is module.Config and comp.build(module.Config(type="t")).name == "doubled"


def test_module_plugin_and_builtin_name_arg_forms(tmp_path, monkeypatch):
    pkg = tmp_path / "my_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    _file(pkg, "tasks.py", TASK_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert registry.is_import_path("my_pkg.tasks:Doubled") and registry.is_import_path("my_pkg:x")
    assert registry.load("task", "my_pkg.tasks:Doubled").Config.__module__ == "my_pkg.tasks"
    builtins = registry.available("task")
    assert not registry.is_import_path("reasoning_gym:chain_sum", builtins)  # the built-in name:arg form
    assert registry.load("task", "reasoning_gym:chain_sum").__name__ == "selftaught.tasks.reasoning_gym"
    assert "dataset" in builtins and "jsonl" in builtins


def test_import_failures_name_the_spec_and_the_error(tmp_path):
    _file(tmp_path, "broken.py", "import not_a_real_package_xyz\n")
    with pytest.raises(registry.PluginError, match=r"broken\.py:T`: importing .* failed: ModuleNotFoundError: .*not_a_real_package_xyz"):
        registry.load("task", f"{tmp_path}/broken.py:T")
    _file(tmp_path, "empty.py", "def helper(): pass\n")
    with pytest.raises(registry.PluginError, match=r"has no `Missing` \(it defines: helper\)"):
        registry.load("task", f"{tmp_path}/empty.py:Missing")
    with pytest.raises(registry.PluginError, match="no such file"):
        registry.load("task", f"{tmp_path}/nope.py:T")
    with pytest.raises(registry.PluginError, match="cannot import module `no_such_mod_abc.sub`"):
        registry.load("task", "no_such_mod_abc.sub:T")
    with pytest.raises(ValueError, match="unknown task type 'jsnl'.*import path"):
        registry.load("task", "jsnl")


def test_python_object_not_registered_says_what_to_pass():
    with pytest.raises(registry.PluginError, match=r"selftaught\.run\(RUN_DIR, verifier=\.\.\.\)"):
        registry.resolve_object("python:verifier.gone_fn")
    registry.register("task.Thing", obj := object())
    assert registry.load("task", "python:task.Thing").build(None) is obj


def test_overrides_drop_keys_and_make_file_specs_absolute(tmp_path, monkeypatch):
    tree = {"method": {"type": "star", "rationalize": True}, "task": {"type": "arithmetic"}}
    out = config.apply_overrides(tree, ["~method.rationalize", "task.pool_size=null", "task.seed_size=~", "iterations=2"])
    assert out == {"method": {"type": "star"}, "task": {"type": "arithmetic"}, "iterations": 2}
    assert tree["method"]["rationalize"] is True  # the caller's tree is not mutated
    monkeypatch.chdir(tmp_path)
    specs = config.absolute_specs({"task": {"type": "./t.py:T", "verifier": "./c.py:f"}, "method": "star",
                                   "backend": {"type": "ray", "backend": {"type": "hf"}}})
    assert specs["task"] == {"type": f"{tmp_path.resolve()}/t.py:T", "verifier": f"{tmp_path.resolve()}/c.py:f"}
    assert specs["method"] == "star" and specs["backend"]["backend"]["type"] == "hf"


def test_recipe_with_plugin_task_and_rft_switch(tmp_path, monkeypatch):
    _file(tmp_path, "my_task.py", TASK_PLUGIN)
    monkeypatch.chdir(tmp_path)
    cfg = config.load(None, ["task.type=./my_task.py:Doubled", "task.label=z", "method.type=rft", "~method.rationalize",
                             "~method.require_valid_steps", "~method.steps_growth"])
    assert cfg.task.type == f"{tmp_path.resolve()}/my_task.py:Doubled" and cfg.task.label == "z"
    assert cfg.method.type == "rft"
    again = config.load(None, []).model_copy()  # the default demo's config is untouched by all this
    assert again.task.type == "arithmetic" and "verifier" not in config.to_yaml(again)
    with pytest.raises(config.ConfigError, match=r"importing .*broken\.py failed"):
        _file(tmp_path, "broken.py", "raise RuntimeError('boom')\n")
        config.load(None, ["task.type=./broken.py:T"])


# --- verifiers as plain callables ---------------------------------------------------------------

P = Problem("p1", "What is 99 + 2?", "101", meta={})


def test_per_completion_callables_bool_float_score(tmp_path):
    checks = _file(tmp_path, "checks.py", '''
        from selftaught.records import Score

        def says_101(problem, completion):
            return problem.answer in completion

        def half(problem, completion):
            return 0.7 if "1" in completion else 0.2

        def scored(problem, completion):
            return Score(0.25, True, "x", "mine")
    ''')
    v = user.UserVerifier(f"{checks}:says_101")
    assert v(P, "it is 101").correct and not v(P, "it is 100").correct
    assert v.version.startswith("checks.py:says_101#") and not v.batched
    h = user.UserVerifier(f"{checks}:half", threshold=0.5)
    assert (h(P, "1").reward, h(P, "1").correct, h(P, "0").correct) == (0.7, True, False)
    assert user.UserVerifier(f"{checks}:scored")(P, "") == Score(0.25, True, "x", "mine")


def test_trl_style_reward_function_gets_keywords_and_columns():
    seen = {}

    def reward(prompts, completions, answer, **kwargs):
        seen.update(prompts=prompts, answer=answer, extra=sorted(kwargs))
        return [1.0 if a in c else 0.0 for c, a in zip(completions, answer)]

    v = user.UserVerifier(reward)
    scores = v.many([P, P], ["101", "no"], ["prompt a", "prompt b"])
    assert [s.correct for s in scores] == [True, False] and v.batched
    assert seen == {"prompts": ["prompt a", "prompt b"], "answer": ["101", "101"], "extra": ["group", "problem_id", "question"]}

    def only_completions(completions):  # no **kwargs: only what it names is passed
        return [len(c) / 10 for c in completions]

    assert user.UserVerifier(only_completions).many([P], ["12345"])[0].reward == 0.5
    with pytest.raises(user.VerifierError, match="returned 1 values for 2 completions"):
        user.UserVerifier(lambda completions: [1.0]).many([P, P], ["a", "b"])


def test_verifier_errors_name_the_spec():
    def bad(problem, completion):
        raise KeyError("boom")

    with pytest.raises(user.VerifierError, match=r"verifier `python:.*bad` raised KeyError"):
        user.UserVerifier(bad)(P, "x")
    with pytest.raises(user.VerifierError, match="returned str"):
        user.UserVerifier(lambda problem, completion: "yes")(P, "x")


def test_task_with_user_verifier_stamps_its_name(tmp_path):
    from selftaught.tasks import arithmetic

    checks = _file(tmp_path, "near.py", '''
        def off_by_one_ok(problem, completion):
            from selftaught.tasks.arithmetic import extract_answer
            got = extract_answer(completion)
            return got is not None and abs(int(got) - int(problem.answer)) <= 1
    ''')
    task = arithmetic.build(arithmetic.Config(verifier=f"{checks}:off_by_one_ok", pool_size=20, seed_size=20))
    p = task.eval_set()[0]
    plain = arithmetic.build(arithmetic.Config(pool_size=20, seed_size=20))
    wrong = "=" + str(int(p.answer) + 1)[::-1]
    assert task.verify(p, wrong).correct and not plain.verify(p, wrong).correct  # the verdict changed
    assert task.verify(p, wrong).answer == str(int(p.answer) + 1)  # answer column still filled
    assert task.name == "arithmetic" and task.verifier_version.startswith("near.py:off_by_one_ok#")
    assert task.alphabet == plain.alphabet and task.seed_set() == plain.seed_set()
    assert json.dumps(task.verifier_version)


def test_scorer_rewards_are_clipped_and_use_row_prompts():
    rows = [{"problem_id": "p1", "prompt": "P?", "completion": "101"}, {"problem_id": "p1", "prompt": "P?", "completion": "x"}]
    got = user.scorer_rewards(lambda prompts, completions: [3.0 if c == "101" else -1.0 for c in completions],
                              rows, lambda r: P)
    assert got == [1.0, 0.0]
