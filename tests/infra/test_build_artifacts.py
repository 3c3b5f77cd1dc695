"""The function artifact builder's pure parts, offline: requirement and source selection, content hash,
reproducible zip, cache. The one networked step (pip_installer) is replaced by a fake that lays out a package
the way `pip install --target` does; the real sizes are measured with `tide build-artifacts` (README)."""

from __future__ import annotations

import json
import os
import shutil
import tomllib
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs import build_artifacts as ba
from schemas.naming import FUNCTIONS

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the local package sources, with a handler per function and the litter a checkout gathers."""
    root = tmp_path / "repo"
    shutil.copytree(REPO / "schemas", root / "schemas", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "functions", root / "functions", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "constraints.txt"):
        shutil.copy(REPO / name, root / name)
    for fn in FUNCTIONS:
        handler = root / "functions" / fn / "handler.py"
        if not handler.exists():
            handler.parent.mkdir(exist_ok=True)
            handler.write_text(f"def handler(event, context):\n    return {fn!r}\n")
    (root / "schemas" / "__pycache__").mkdir()
    (root / "schemas" / "__pycache__" / "naming.cpython-311.pyc").write_bytes(b"\0")
    return root


def fake_pip(calls: list[Sequence[str]]) -> ba.Installer:
    def install(requirements: Sequence[str], constraints: Path, target: Path) -> None:
        calls.append(requirements)
        (target / "pkg").mkdir()
        (target / "pkg" / "__init__.py").write_text("VALUE = 1\n")
        (target / "pkg" / "__pycache__").mkdir()
        (target / "pkg" / "__pycache__" / "x.pyc").write_bytes(b"\0")
        (target / "pkg-1.0.dist-info").mkdir()
        (target / "pkg-1.0.dist-info" / "METADATA").write_text("Name: pkg\nVersion: 1.0\n")
        (target / "pkg-1.0.dist-info" / "RECORD").write_text("machine-specific\n")
        (target / "bin").mkdir()
        (target / "bin" / "pkg").write_text("#!/this/machine/python\n")

    return install


def test_requirements_are_the_core_plus_the_functions_own_extra() -> None:
    core = set(PYPROJECT["project"]["dependencies"])
    for fn in FUNCTIONS:
        requirements = set(ba.function_requirements(PYPROJECT, fn))
        assert requirements == core | set(PYPROJECT["project"]["optional-dependencies"][f"fn-{fn}"])
        assert not any(r.startswith(("torch", "dask", "sagemaker", "pulumi", "click")) for r in requirements)
    assert any(r.startswith("great-expectations") for r in ba.function_requirements(PYPROJECT, "ingest"))
    assert not any(r.startswith("great-expectations") for r in ba.function_requirements(PYPROJECT, "drift"))


def test_unknown_function_or_missing_extra_is_refused() -> None:
    with pytest.raises(ba.ArtifactError, match="unknown function"):
        ba.function_requirements(PYPROJECT, "train")
    broken = {"project": {"dependencies": [], "optional-dependencies": {}}}
    with pytest.raises(ba.ArtifactError, match="no extra 'fn-drift'"):
        ba.function_requirements(broken, "drift")


def test_sources_are_the_function_the_shared_code_and_the_schemas(repo: Path) -> None:
    names = [name for name, _ in ba.select_sources(repo, "drift")]
    assert names == sorted(names)
    assert {"functions/__init__.py", "functions/drift/handler.py", "functions/common/events.py"} <= set(names)
    assert {"schemas/naming.py", "schemas/contract.py", "schemas/datasets/transactions/v1.yaml"} <= set(names)
    assert not [n for n in names if n.startswith(("functions/ingest/", "functions/traffic/", "jobs/", "infra/"))]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_a_function_without_a_handler_is_refused(repo: Path) -> None:
    (repo / "functions" / "traffic" / "handler.py").unlink()
    with pytest.raises(ba.ArtifactError, match="no handler"):
        ba.select_sources(repo, "traffic")


def test_the_content_hash_follows_every_input(repo: Path) -> None:
    sources = ba.select_sources(repo, "drift")
    constraints = (repo / "constraints.txt").read_bytes()
    requirements = ba.function_requirements(PYPROJECT, "drift")
    base = ba.content_hash("drift", requirements, constraints, sources)
    assert base == ba.content_hash("drift", tuple(reversed(requirements)), constraints, list(reversed(sources)))
    assert base != ba.content_hash("traffic", requirements, constraints, sources)
    assert base != ba.content_hash("drift", (*requirements, "scipy"), constraints, sources)
    assert base != ba.content_hash("drift", requirements, constraints + b"\nnumpy==2.0.0", sources)
    (repo / "schemas" / "naming.py").write_text((repo / "schemas" / "naming.py").read_text() + "\n# changed\n")
    assert base != ba.content_hash("drift", requirements, constraints, sources)


@settings(max_examples=25, deadline=None)
@given(
    files=st.dictionaries(
        st.from_regex(r"[a-z]{1,8}(/[a-z]{1,8}){0,2}\.(py|so|txt)", fullmatch=True), st.binary(max_size=200), max_size=8
    )
)
def test_zips_are_reproducible_and_hold_exactly_the_files(
    tmp_path_factory: pytest.TempPathFactory, files: dict
) -> None:
    tmp = tmp_path_factory.mktemp("zip")
    entries = []
    for i, (name, data) in enumerate(files.items()):
        path = tmp / "src" / f"{i}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (1_700_000_000 + i, 1_700_000_000 + i))
        entries.append((name, path))
    first, second = tmp / "a.zip", tmp / "b.zip"
    size = ba.write_zip(entries, first)
    for _, path in entries:  # touching the files must not change the zip
        os.utime(path, (1_800_000_000, 1_800_000_000))
    ba.write_zip(list(reversed(entries)), second)
    assert first.read_bytes() == second.read_bytes()
    assert size == sum(len(d) for d in files.values()) == ba.unzipped_size(first)
    with zipfile.ZipFile(first) as archive:
        assert archive.namelist() == sorted(files)
        assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in archive.infolist())
        assert {n: archive.read(n) for n in archive.namelist()} == files


def test_two_files_under_one_name_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("a")
    with pytest.raises(ba.ArtifactError, match="same archive name"):
        ba.write_zip([("x.py", tmp_path / "a"), ("x.py", tmp_path / "a")], tmp_path / "out.zip")


def test_build_ships_wheels_and_sources_without_machine_specific_files_and_caches(repo: Path, tmp_path: Path) -> None:
    calls: list[Sequence[str]] = []
    cache = tmp_path / "cache"
    artifact = ba.build("drift", repo, cache, installer=fake_pip(calls))
    with zipfile.ZipFile(artifact.path) as archive:
        names = set(archive.namelist())
    assert {"pkg/__init__.py", "pkg-1.0.dist-info/METADATA", "functions/drift/handler.py", "schemas/naming.py"} <= names
    assert not names & {"pkg-1.0.dist-info/RECORD", "bin/pkg", "pkg/__pycache__/x.pyc"}
    assert calls == [ba.function_requirements(PYPROJECT, "drift")]
    assert artifact.fits_lambda_zip and artifact.unzipped_bytes == ba.unzipped_size(artifact.path)

    again = ba.build("drift", repo, cache, installer=fake_pip(calls))
    assert again == artifact and len(calls) == 1  # same inputs: the cached zip, no install

    (repo / "functions" / "drift" / "handler.py").write_text("def handler(event, context):\n    return 2\n")
    changed = ba.build("drift", repo, cache, installer=fake_pip(calls))
    assert changed.path != artifact.path and changed.zip_sha256 != artifact.zip_sha256 and len(calls) == 2


def test_over_the_zip_limit_is_an_error_naming_the_way_out(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ba, "LAMBDA_ZIP_LIMIT_BYTES", 10)
    with pytest.raises(ba.ArtifactError, match="container image"):
        ba.build("drift", repo, tmp_path / "cache", installer=fake_pip([]))
    measured = ba.build("drift", repo, tmp_path / "cache", installer=fake_pip([]), enforce_zip_limit=False)
    assert not measured.fits_lambda_zip


def test_the_command_reports_sizes_and_fails_on_a_function_over_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    sizes = {"ingest": ba.LAMBDA_ZIP_LIMIT_BYTES + 1, "drift": 90 * 2**20, "traffic": 90 * 2**20}

    def measured(function: str, repo: Path, cache: Path, *, enforce_zip_limit: bool) -> ba.Artifact:
        assert not enforce_zip_limit  # the command measures; it does not stop at the first one over
        return ba.Artifact(function, cache / f"{function}.zip", "k", "z", sizes[function])

    monkeypatch.setattr(ba, "build", measured)
    result = CliRunner().invoke(ba.build_artifacts, ["--cache", str(tmp_path)])
    assert result.exit_code == 1
    assert "drift: 90.0 MiB unzipped" in result.output and "fits a zip" in result.output
    assert "ingest: 250.0 MiB unzipped" in result.output and "over Lambda's zip limit: ingest" in result.output
    ok = CliRunner().invoke(ba.build_artifacts, ["--function", "drift", "--cache", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    as_json = CliRunner().invoke(ba.build_artifacts, ["--function", "drift", "--cache", str(tmp_path), "--json"])
    assert as_json.exit_code == 0, as_json.output
    (drift,) = json.loads(as_json.output)
    assert (drift["function"], drift["unzipped_bytes"], drift["fits_lambda_zip"]) == ("drift", 90 * 2**20, True)
