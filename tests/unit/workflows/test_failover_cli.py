"""`hapair failover`: --test and --to are exclusive; the CLI says so with exit 2."""

from pathlib import Path

import pytest

from hapair.cli.main import main


@pytest.mark.parametrize("args", [[], ["--test", "--to", "node2"]])
def test_failover_needs_exactly_one_mode(tmp_path: Path, args: list[str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    inv = tmp_path / "inventory.yaml"
    inv.write_text("{}\n")
    with pytest.raises(SystemExit) as exc:
        main(["failover", "-i", str(inv), *args])
    assert exc.value.code == 2
    assert "either --test" in capsys.readouterr().err
