"""The checkable constitution of ``cai`` (methods/_constitution.py): the file format
with ``check:``/``name:``, each program check (each can fail), satisfaction
scores, the program's preference on a pair and the labels' agreement with it, and
the CAI metrics built on them (SL drafts vs revisions, RL label agreement)."""

import pytest

from selftaught.methods import _constitution as con
from selftaught.methods import cai

BLOCK = "critique: c{i}\nrevision: r{i}\nchoose: q{i}\n"


def write(tmp_path, text):
    p = tmp_path / "c.txt"
    p.write_text(text)
    return str(p)


# --- the file format ----------------------------------------------------------------

def test_shipped_checkable_constitution_parses_with_a_check_per_principle():
    ps = cai.load_principles("constitution_checkable")
    assert [p["name"] for p in ps] == ["format", "short", "impersonal"]
    assert [p["check"].kind for p in ps] == ["format", "max_words", "forbidden"]
    assert ps[1]["check"].limit == 20 and "let's" in ps[2]["check"].words and "I" in ps[2]["check"].words


def test_files_without_checks_read_as_before():
    ps = cai.load_principles("constitution")
    assert len(ps) >= 3 and all(set(p) == set(cai.FIELDS) for p in ps)  # no check, no name keys added
    assert cai.satisfaction(["anything"], ps) == {}  # nothing to check


def test_check_and_name_fields(tmp_path):
    text = (BLOCK.format(i=0) + "check: max_words 5\n\n" + BLOCK.format(i=1) + "check: forbidden foo, bar baz\n"
            "name: no_foo\n\n" + BLOCK.format(i=2))
    ps = cai.load_principles(write(tmp_path, text))
    assert ps[0]["name"] == "max_words" and ps[0]["check"] == con.Check("max_words", limit=5)
    assert ps[1]["name"] == "no_foo" and ps[1]["check"].words == ("foo", "bar baz")
    assert "check" not in ps[2] and "name" not in ps[2]
    assert con.checkable(ps) == ps[:2]


@pytest.mark.parametrize("spec", ["max_words", "max_words 0", "max_words ten", "forbidden", "forbidden , ,",
                                  "format answer", "length 5"])
def test_bad_check_names_file_and_line(tmp_path, spec):
    path = write(tmp_path, BLOCK.format(i=0) + "\n" + BLOCK.format(i=1) + f"check: {spec}\n")
    with pytest.raises(ValueError, match=r"c.txt, line 8: bad check"):
        cai.load_principles(path)


def test_bad_blocks_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"line 1: `name:` is for a principle with a `check:`"):
        cai.load_principles(write(tmp_path, BLOCK.format(i=0) + "name: x\n"))
    twice = BLOCK.format(i=0) + "check: format\n\n" + BLOCK.format(i=1) + "check: format\n"
    with pytest.raises(ValueError, match="share a name"):
        cai.load_principles(write(tmp_path, twice))
    with pytest.raises(ValueError, match=r"line 4: expected `critique:`, `revision:`, `choose:`, `check:` or `name:`"):
        cai.load_principles(write(tmp_path, BLOCK.format(i=0) + "chek: format\n"))


# --- the checks -----------------------------------------------------------------------

@pytest.mark.parametrize("text, ok", [
    ("1 + 5 = 6\nAnswer: 6", True), ("Answer: 6", True), ("The answer is: 6\n\n", True), ("**Final answer:** 6", True),
    ("The answer is 6.", False),  # no colon: not the requested line
    ("Answer: 6\nHope that helps.", False),  # the answer line is not the last one
    ("Answer:", False), ("", False), (None, False), ("6", False),
])
def test_format_check(text, ok):
    assert con.parse_check("format")(text) is ok


def test_max_words_check_boundary():
    check = con.parse_check("max_words 3")
    assert check("one two three") and check("one\ntwo  three ")
    assert not check("one two three four")


def test_forbidden_check_matches_whole_words_in_any_case():
    check = con.parse_check("forbidden I, we, let's")
    assert check("It is 6. Answer: 6")  # "I" inside "It" is not the word
    assert check("Twelve, weird. Answer: 12")
    assert not check("WE add them.") and not check("So i add them") and not check("Let's add: 6")
    assert not check("I'm adding")  # "I" before an apostrophe is the word


# --- satisfaction, program preference, label agreement ---------------------------------

def principles():
    return [{"name": "format", "check": con.parse_check("format"), **dict.fromkeys(cai.FIELDS, "x")},
            {"name": "short", "check": con.parse_check("max_words 4"), **dict.fromkeys(cai.FIELDS, "x")},
            dict.fromkeys(cai.FIELDS, "unchecked")]


def test_satisfaction_per_principle_and_all():
    texts = ["Answer: 6", "We add them and get six.\nAnswer: 6", "six", "one two three four five"]
    m = cai.satisfaction(texts, principles(), "p")
    assert m == {"p/format": 0.5, "p/short": 0.5, "p/all": 0.25, "p_n": 4}


def test_program_preference_on_a_pair():
    fmt, short, free = principles()
    assert con.program_preference("Answer: 6", "6", fmt) == "first"
    assert con.program_preference("6", "Answer: 6", fmt) == "second"
    assert con.program_preference("Answer: 6", "Answer: 7", fmt) is None  # both pass
    assert con.program_preference("6", "7", fmt) is None  # neither
    assert con.program_preference("Answer: 6", "6", free) is None  # no check, no preference


def test_label_agreement_counts_only_labeled_decisive_pairs():
    fmt, short, free = principles()
    pairs = [("Answer: 6", "6", fmt, "first"),  # agrees
             ("6", "Answer: 6", fmt, "first"),  # disagrees
             ("a b", "a b c d e", short, "first"),  # agrees
             ("a b", "a b c d e", short, "inconsistent"),  # no label: left out
             ("Answer: 6", "Answer: 7", fmt, "second"),  # program has no preference: left out
             ("Answer: 6", "6", free, "second")]  # unchecked principle: left out
    assert con.label_agreement(pairs) == (pytest.approx(2 / 3), 3)
    assert con.label_agreement(pairs[3:]) == (None, 0)


# --- the CAI metrics on hand-made rows -------------------------------------------------

def test_rl_metrics_report_label_agreement_with_the_program():
    def pair(n, a, b, label, raw, principle_id):
        return [{"sample_id": f"s{n}{x}", "problem_id": f"p{n}", "prompt": "q", "completion": text, "correct": True,
                 "label": label, "label_raw": raw, "principle_id": principle_id} for x, text in (("a", a), ("b", b))]

    rows = [*pair(0, "Answer: 6", "six", "first", "A)", 0),  # kept, agrees with the program
            *pair(1, "Answer: 6", "six", "second", "B", 0),  # kept, disagrees
            *pair(2, "a b c d e f", "Answer: 2", "inconsistent", "A", 1),  # not kept; first order says A: disagrees
            *pair(3, "x", "y", "first", "A", 2)]  # unchecked principle
    rows, train = cai.rl_pairs(rows)
    m = cai.rl_metrics(rows, train, principles())
    assert m["select/pairs"] == 3
    assert m["cai/label_program_agreement"] == 0.5 and m["cai/label_program_n"] == 2
    assert m["cai/label_program_agreement_first_order"] == pytest.approx(1 / 3)
    assert m["cai/label_program_first_order_n"] == 3
    assert m["cai/satisfied/chosen/format"] == pytest.approx(1 / 3)  # "Answer: 6", "six", "x"
    assert m["cai/satisfied/rejected/format"] == pytest.approx(1 / 3)
    assert m["cai/satisfied/sample/short"] == 7 / 8 and m["cai/satisfied/sample_n"] == 8
    assert "cai/label_program_agreement" not in cai.rl_metrics(rows, train, cai.load_principles("constitution"))


def test_sl_metrics_compare_drafts_with_revisions():
    rows = [{"phase": "draft", "completion": "We get six, I think, after adding", "correct": False, "kept": False,
             "select_reason": "draft or intermediate revision", "draft": None},
            {"phase": "draft", "completion": "Answer: 6", "correct": True, "kept": False,
             "select_reason": "draft or intermediate revision", "draft": None},
            {"phase": "revise0", "completion": "Answer: 6", "correct": True, "kept": True,
             "select_reason": "final revision", "draft": "We get six, I think, after adding"},
            {"phase": "revise0", "completion": "6 is it", "correct": True, "kept": True,
             "select_reason": "final revision", "draft": "Answer: 6"}]
    m = cai.sl_metrics(rows, principles())
    assert m["cai/satisfied/draft/format"] == 0.5 and m["cai/satisfied/draft/short"] == 0.5
    assert m["cai/satisfied/revision/format"] == 0.5 and m["cai/satisfied/revision/short"] == 1.0
    assert m["cai/satisfied/draft/all"] == 0.5 and m["cai/satisfied/revision/all"] == 0.5
    assert m["cai/revision_changed_frac"] == 1.0


def test_feedback_base_labels_with_the_starting_model():
    from selftaught.iteration import Iteration

    it = Iteration(2, None, None, None, None, "/runs/x/base", "/runs/x/iter_001/checkpoint", "h1", "/runs/x/iter_002/c")
    judge = cai.feedback_model(it)
    assert judge.model == "/runs/x/base" and judge.model_hash != "h1" and judge.k == 2
    assert it.model == "/runs/x/iter_001/checkpoint"  # the policy is untouched
    assert cai.Config().feedback == "current"  # the default keeps earlier runs as they were
