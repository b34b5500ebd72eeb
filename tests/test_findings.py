"""The README's CPU scores block is written from the committed submissions, never by hand."""

from __future__ import annotations

import json
import shutil

import pytest

from leaderboard import ROOT, findings


def test_the_readme_block_is_what_the_submissions_say():
    readme = findings.README.read_text("utf-8")
    assert findings.current_block(readme) == findings.scores_block(), (
        "the README's CPU scores differ from the submissions: run `python -m leaderboard.findings`"
    )


def test_the_block_follows_the_json(tmp_path):
    """Change one figure in a copy of a submission: the block changes with it."""
    folder = tmp_path / "submissions"
    folder.mkdir()
    for name in findings.MODELS.values():
        shutil.copy(ROOT / "submissions" / name, folder / name)
    before = findings.scores_block(folder)
    path = folder / findings.MODELS["SmolLM2-135M"]
    data = json.loads(path.read_text())
    for by_method in data["results"]["results"].values():
        by_method["patch"]["whole_answer"]["acc"] = 0.5
    data["results"]["intervals"]["average"]["patch - prompt"] = [-0.91, 0.92]
    path.write_text(json.dumps(data))
    after = findings.scores_block(folder)
    assert before != after
    [whole] = [line for line in after.splitlines() if line.startswith("| whole answer, exactly")]
    assert whole.split(" | ")[2] == ".50"  # SmolLM2 patch
    assert "patch - prompt" in after and "[-.91, .92] on the first token" in after


def test_the_readme_findings_table_is_what_the_json_says():
    readme = findings.README.read_text("utf-8")
    got = findings.current_block(readme, findings.FINDINGS_BEGIN, findings.FINDINGS_END)
    assert got == findings.findings_block(), (
        "the README's paper findings differ from docs/ and the submissions: run "
        "`python -m leaderboard.findings`"
    )


def _noise_docs(root, model, s0: float, s1: float, s2: float) -> None:
    folder = root / model.docs / "analysis"
    folder.mkdir(parents=True)
    result = {"average": {"0": s0, "1": s1, "2": s2}}
    (folder / "noise.json").write_text(json.dumps({"result": result}))


def test_a_verdict_follows_its_rule(tmp_path):
    """Typos: a clean instruction near 0 is not testable; one that keeps its accuracy under
    two swaps reproduces the paper; one that loses it does not. Claims without files: not run."""
    small, kept = findings.claims.MODELS
    _noise_docs(tmp_path, small, 0.02, 0.0, 0.0)
    _noise_docs(tmp_path, kept, 0.40, 0.38, 0.36)
    rows = {r["claim"]: r["by_model"] for r in findings.claims.verdicts(tmp_path)}
    typos = rows["instruction vectors survive typos"]
    assert typos[small.label] == ("s=0 .02 / s=1 .00 / s=2 .00", findings.claims.UNTESTABLE)
    assert typos[kept.label] == ("s=0 .40 / s=1 .38 / s=2 .36", findings.claims.YES)
    (tmp_path / kept.docs / "analysis" / "noise.json").write_text(
        json.dumps({"result": {"average": {"0": 0.40, "1": 0.1, "2": 0.1}}})
    )
    rows = {r["claim"]: r["by_model"] for r in findings.claims.verdicts(tmp_path)}
    assert rows["instruction vectors survive typos"][kept.label][1] == findings.claims.NO
    phases = rows["three phases at the task token: input, task, answer"][small.label]
    assert phases == (
        f"not run ({small.docs}/analysis/logit-lens.json)",
        findings.claims.UNTESTABLE,
    )
    block = findings.findings_block(tmp_path)
    assert "SmolLM2-135M: not testable here; Gemma 3 270M: does not reproduce" in block


def test_a_stale_file_is_an_error_that_says_to_regenerate(tmp_path):
    model = findings.claims.MODELS[0]
    folder = tmp_path / model.docs / "analysis"
    folder.mkdir(parents=True)
    (folder / "noise.json").write_text(json.dumps({"result": {"acc": {}}}))  # no "average"
    with pytest.raises(ValueError, match="regenerate docs/smollm2-135m/analysis"):
        findings.claims.verdicts(tmp_path)


def test_an_interval_decides_a_difference():
    claims = findings.claims
    assert claims.by_interval([0.01, 0.05]) == claims.YES
    assert claims.by_interval([-0.05, -0.01]) == claims.NO
    assert claims.by_interval([-0.01, 0.05]) == claims.UNSURE
