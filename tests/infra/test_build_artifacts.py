"""The function artifact builder's pure parts, offline: requirement and source selection, content hash,
reproducible zip, cache. The one networked step (pip_installer) is replaced by a fake that lays out a package
the way `pip install --target` does; the real sizes are measured with `tide build-artifacts` (README)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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

    sizes = {
        "ingest": ba.LAMBDA_ZIP_LIMIT_BYTES + 1,
        "drift": 90 * 2**20,
        "traffic": 90 * 2**20,
        "quality": 240 * 2**20,
    }

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


def test_a_function_ships_the_modules_of_other_functions_it_imports_and_no_more(repo: Path) -> None:
    """quality reads captures with the drift check's decoders and labels through the ingest gate's commit
    manifests: those modules travel in its zip (a missing one would fail only once deployed); the rest of
    drift and ingest (great-expectations) does not."""
    names = {name for name, _ in ba.select_sources(repo, "quality")}
    assert {"functions/quality/handler.py", "functions/quality/templates/report.html.j2"} <= names
    assert {"functions/drift/__init__.py", "functions/drift/captures.py", "functions/drift/check.py",
            "functions/drift/state.py", "functions/drift/storage.py", "functions/ingest/__init__.py",
            "functions/ingest/commit.py"} <= names  # fmt: skip
    # ... with their packages' data files (pyproject's package-data): drift's report templates load at run time.
    assert {"functions/drift/templates/report.html.j2", "functions/drift/templates/bars.svg.j2"} <= names
    assert not [n for n in names if n.startswith(("functions/traffic/", "jobs/", "infra/", "serving/"))]
    assert not {"functions/ingest/handler.py", "functions/ingest/validation.py", "functions/drift/handler.py"} & names
    # drift's own artifact is unchanged by this: it imports no other function.
    assert not [n for n, _ in ba.select_sources(repo, "drift") if n.startswith("functions/ingest/")]


def test_a_new_import_of_another_functions_module_joins_the_artifact(repo: Path) -> None:
    before = {name for name, _ in ba.select_sources(repo, "traffic")}
    handler = repo / "functions" / "traffic" / "handler.py"
    handler.write_text(handler.read_text() + "\n\ndef _later():\n    from functions.drift import stats\n")
    after = {name for name, _ in ba.select_sources(repo, "traffic")}
    templates = {"functions/drift/templates/bars.svg.j2", "functions/drift/templates/report.html.j2"}
    assert after - before == {"functions/drift/__init__.py", "functions/drift/stats.py", *templates}


def _installed_closure(requirements: Sequence[str]) -> list[importlib.metadata.Distribution]:
    """The distributions `pip install` would put in the zip for these requirements, as installed in this
    environment (with their extras and markers evaluated here)."""
    found: dict[str, set[str]] = {}
    dists: dict[str, importlib.metadata.Distribution] = {}
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in found and set(req.extras) <= found[name]:
            continue
        found[name] = found.get(name, set()) | set(req.extras)
        dists[name] = importlib.metadata.distribution(req.name)
        for dep in map(Requirement, dists[name].requires or []):
            if dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in ("", *found[name])):
                todo.append(Requirement(f"{dep.name}[{','.join(dep.extras)}]"))
    return list(dists.values())


def local_pip(requirements: Sequence[str], constraints: Path, target: Path) -> None:
    """`pip install --target` from this environment's installed distributions (offline; the real build downloads
    the same pins as Linux wheels for CPython 3.12)."""
    for dist in _installed_closure(requirements):
        for file in dist.files or []:
            source = Path(str(dist.locate_file(file)))
            if ".." not in file.parts and source.is_file():
                (target / file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target / file)


@pytest.mark.slow
def test_the_quality_artifact_imports_its_handler_from_the_zip_alone_without_torch_or_dask(tmp_path: Path) -> None:
    """The real build of the quality function (its extra's wheels + its sources), unpacked: a fresh interpreter
    without site-packages imports the handler from it, so every module the handler imports is in the zip (the
    project's and the wheels'), and neither torch nor dask is there or imported."""
    artifact = ba.build("quality", REPO, tmp_path / "cache", installer=local_pip, enforce_zip_limit=False)
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(artifact.path) as archive:
        names = archive.namelist()
        archive.extractall(unpacked)
    tops = {n.split("/", 1)[0] for n in names}
    assert {"functions", "schemas", "pyarrow", "numpy", "jinja2", "aws_lambda_powertools", "boto3"} <= tops
    assert not {t for t in tops if t.startswith(("torch", "dask", "pandas", "great_expectations", "scipy"))}
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import functions.quality.handler; "
        "import functions.quality.report as r; r._template(); "  # the template is found inside the package too
        "import functions.drift.report as d; d._templates().get_template('report.html.j2'); "  # and drift's
        "print(sorted(m for m in ('torch', 'dask', 'pandas', 'scipy') if m in sys.modules))"
    )
    env = {"AWS_DEFAULT_REGION": "us-east-1", "PATH": os.environ.get("PATH", ""), "POWERTOOLS_TRACE_DISABLED": "1"}
    # -S: no site-packages, -I: no PYTHONPATH or user site; only the stdlib and the unpacked zip are importable.
    out = subprocess.run([sys.executable, "-S", "-I", "-c", code, str(unpacked)], capture_output=True, text=True,
                         env=env, cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
