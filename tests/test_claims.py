"""coursekit.claims: a statement is shown only when its condition holds."""
import json

import pytest
import torch

from coursekit import claims
from coursekit.checks import CourseKitError


def test_a_claim_that_holds_is_shown_recorded_and_returned(capsys):
    before = len(claims.made())
    text = claims.claim(torch.tensor(True), "PGD lowers the accuracy more than FGSM: 3% vs 41%.")
    assert text == "PGD lowers the accuracy more than FGSM: 3% vs 41%."
    assert "3% vs 41%" in capsys.readouterr().out      # no IPython kernel here: printed
    record = claims.made()[-1]
    assert len(claims.made()) == before + 1 and record["holds"] is True
    assert "budgets" in record["mode"]


def test_a_contradicted_claim_stops_the_notebook_and_quotes_the_statement():
    with pytest.raises(claims.ClaimError, match="the digit flips at eps = 0.2") as error:
        claims.claim(False, "the digit flips at eps = 0.2")
    assert isinstance(error.value, AssertionError)       # nbgrader and pytest see a failed check
    assert claims.made()[-1]["holds"] is False


def test_claims_are_logged_per_notebook_when_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSEKIT_CLAIMS_LOG", str(tmp_path))
    monkeypatch.setenv("COURSEKIT_NOTEBOOK", "01_adversarial_examples")
    claims.claim(1 < 2, "one is less than two", show=False)
    rows = [json.loads(line) for line in (tmp_path / "claims.jsonl").read_text().splitlines()]
    assert rows == [{"statement": "one is less than two", "mode": rows[0]["mode"], "holds": True,
                     "notebook": "01_adversarial_examples"}]


def test_a_claim_without_a_statement_is_refused():
    with pytest.raises(CourseKitError, match="needs its statement"):
        claims.claim(True, "  ")


def test_mode_label_names_the_budgets_and_the_digits(offline, monkeypatch):
    monkeypatch.setenv("COURSEKIT_FAST", "1")
    assert claims.mode_label() == "fast budgets, embedded digits"
