"""The README's CPU scores block is written from the committed submissions, never by hand."""

from __future__ import annotations

import json
import shutil

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
