"""`hgmamba info`: matmul MACs (Table I's count) and the scan's MACs as separate numbers."""

from __future__ import annotations

import json

import pytest

from hgmamba_cli.app import main
from hgmamba_core.model import build_model
from hgmamba_core.model.complexity import count_macs
from hgmamba_core.model.variants import PAPER_COUNTS


def _info_json(capsys, *args: str) -> dict:
    with pytest.raises(SystemExit) as e:
        main(["info", "--json", *args])
    assert e.value.code == 0
    return json.loads(capsys.readouterr().out)


def test_json_macs_are_matmul_macs_within_10_percent_of_table_1(capsys):
    out = _info_json(capsys, "--variant", "all")
    assert set(out) == {"xs", "s", "b"}
    for name, row in out.items():
        assert {"params", "macs", "scan_macs", "T", "N", "D"} <= set(row)
        paper = PAPER_COUNTS[name]["macs"]
        assert abs(row["macs"] / paper - 1) <= 0.10, (name, row["macs"], paper)
        assert row["paper_macs"] == int(paper)
        # The scan is a sizeable extra cost, but reported beside the matmuls, not inside them.
        assert 0.05 < row["scan_macs"] / row["macs"] < 0.2, (name, row)


def test_macs_exclude_the_scan(capsys):
    """`macs` + `scan_macs` is the whole count; with the scan added XS would be ~23 % over."""
    row = _info_json(capsys, "--variant", "xs")["xs"]
    full = count_macs(build_model("xs"))
    assert row["macs"] == full.matmul == full.counted
    assert row["scan_macs"] == full.scan
    assert row["macs"] + row["scan_macs"] == full.total
    assert full.total / PAPER_COUNTS["xs"]["macs"] - 1 > 0.10


def test_table_shows_both_columns_and_the_note(capsys):
    with pytest.raises(SystemExit) as e:
        main(["info", "--variant", "xs", "--no-fps"])
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "GMACs" in text and "scan GMACs" in text
    assert "1.24" in text and "+9%" in text  # matmul MACs vs Table I's 1.14 G
    assert "not added in" in text
