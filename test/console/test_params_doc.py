"""docs/parameters.md matches the parameters the code declares."""

from __future__ import annotations

from ros_harness import REPO_ROOT

from nc_safety.console.params_doc import parameters_markdown


def test_parameters_doc_up_to_date() -> None:
    assert (REPO_ROOT / "docs" / "parameters.md").read_text() == parameters_markdown(), (
        "run `nc-safety params > docs/parameters.md`"
    )
