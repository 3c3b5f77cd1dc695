from pathlib import Path

from click.testing import CliRunner

from jobs.cli import main


def test_help_lists_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "local" in result.output


def test_local_rehearsal_uploads_a_day_of_raw_data(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["local", "--workdir", str(tmp_path / "w"), "--rows-per-day", "500"])
    assert result.exit_code == 0, result.output
    assert "raw/transactions/2026/11/01/transactions-20261101.csv.gz" in result.output
    assert (tmp_path / "w").is_dir()
