"""Build each function's deployment artifact: a reproducible zip of its code plus Linux wheels of its extra.

A function's artifact holds `functions/<name>/`, `functions/common/`, `schemas/`, the modules of other functions
that its code imports (found by reading the imports, e.g. quality's use of functions/drift/captures.py; never a
whole other function), and the wheels of the
project's core dependencies plus its own `fn-<name>` extra, pinned by constraints.txt, for the Lambda runtime
(manylinux x86_64 up to glibc 2.34, CPython 3.12) — never torch or dask. The zip is byte-for-byte reproducible (sorted
entries, fixed timestamps and modes, no bytecode, no machine-specific install records) and cached under the
sha256 of everything that goes into it, so an unchanged function is neither rebuilt nor redeployed.

The pure parts (requirement selection, source selection, content hash, deterministic zip, size check) take
plain data; the one impure step, installing wheels, is the injected `Installer` (`pip_installer` in real use).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import click

from schemas.naming import FUNCTIONS

LAMBDA_PYTHON: Final = "3.12"
# The python3.12 runtime runs on Amazon Linux 2023 (glibc 2.34). pip matches --platform tags exactly (it does
# not widen manylinux_2_34 to older glibc), so every accepted tag is named: numpy 2.4 ships manylinux_2_28 only.
LAMBDA_PLATFORMS: Final = ("manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64")
# Lambda's limit for a zip function, unzipped, layers included: 250 MB (AWS quotas page).
LAMBDA_ZIP_LIMIT_BYTES: Final = 250 * 1024 * 1024
_ZIP_EPOCH: Final = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
# Never shipped: bytecode (the runtime compiles), console scripts (their shebang names this machine's python)
# and pip's per-install records (they hash those scripts, so they differ between machines).
_EXCLUDED_DIRS: Final = frozenset({"__pycache__"})
_EXCLUDED_SUFFIXES: Final = (".pyc", ".pyo")
_EXCLUDED_NAMES: Final = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json", "Dockerfile"})

Installer = Callable[[Sequence[str], Path, Path], None]
"""Installs the given requirements, constrained by the given constraints file, into the target folder."""


class ArtifactError(RuntimeError):
    """An artifact cannot be built as asked (unknown function, missing sources, over the zip limit)."""


@dataclass(frozen=True)
class Artifact:
    function: str
    path: Path
    content_hash: str  # sha256 of the inputs: the cache key
    zip_sha256: str  # sha256 of the zip bytes
    unzipped_bytes: int

    @property
    def fits_lambda_zip(self) -> bool:
        return self.unzipped_bytes <= LAMBDA_ZIP_LIMIT_BYTES


def function_requirements(pyproject: Mapping[str, Any], function: str) -> tuple[str, ...]:
    """The core dependencies plus the function's own extra: nothing from other roles."""
    if function not in FUNCTIONS:
        raise ArtifactError(f"unknown function {function!r}; functions are {', '.join(FUNCTIONS)}")
    project = pyproject["project"]
    extra = f"fn-{function}"
    extras = project.get("optional-dependencies", {})
    if extra not in extras:
        raise ArtifactError(f"pyproject.toml has no extra {extra!r}")
    return tuple(sorted({*project.get("dependencies", []), *extras[extra]}))


def _included(relative: Path) -> bool:
    return (
        relative.parts[0] != "bin"
        and not any(part in _EXCLUDED_DIRS for part in relative.parts[:-1])
        and relative.name not in _EXCLUDED_NAMES
        and not relative.name.endswith(_EXCLUDED_SUFFIXES)
    )


def _tree(root: Path, base: Path) -> list[tuple[str, Path]]:
    files = []
    for path in root.rglob("*"):
        relative = path.relative_to(base)
        if path.is_file() and _included(relative):
            files.append((relative.as_posix(), path))
    return files


def _module_file(repo: Path, module: str) -> Path | None:
    """The file of a dotted module of this repository, or None (an attribute imported from a module)."""
    base = repo.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_functions_modules(source: str) -> set[str]:
    """Dotted names under `functions.` that a module's code imports, anywhere in it (lazy imports too). For
    `from functions.x import y`, both functions.x and functions.x.y (y may be a submodule)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {name for name in found if name.startswith("functions.")}


def shared_modules(repo: Path, own: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    """Modules of other functions that the given files import, transitively, with their packages' __init__.py."""
    done = {name for name, _ in own}
    todo = [path for name, path in own if name.endswith(".py")]
    extra: list[tuple[str, Path]] = []
    while todo:
        for module in sorted(_imported_functions_modules(todo.pop().read_text())):
            parts = module.split(".")
            for depth in range(2, len(parts) + 1):  # the module and every package above it
                path = _module_file(repo, ".".join(parts[:depth]))
                name = path.relative_to(repo).as_posix() if path else None
                if path is not None and name is not None and name not in done:
                    done.add(name)
                    extra.append((name, path))
                    todo.append(path)
    return extra


def select_sources(repo: Path, function: str) -> list[tuple[str, Path]]:
    """(archive name, file) for the function's own code, the shared function code, the schemas and the modules of
    other functions its code imports, sorted."""
    if function not in FUNCTIONS:
        raise ArtifactError(f"unknown function {function!r}; functions are {', '.join(FUNCTIONS)}")
    own = repo / "functions" / function
    if not (own / "handler.py").is_file():
        raise ArtifactError(f"{own / 'handler.py'} not found: the function has no handler yet")
    files = [("functions/__init__.py", repo / "functions" / "__init__.py")]
    for folder in (own, repo / "functions" / "common", repo / "schemas"):
        files.extend(_tree(folder, repo))
    shared = shared_modules(repo, files)
    return sorted([*files, *shared, *_package_data(repo, shared)])


def _package_data(repo: Path, modules: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    """The data files (pyproject's package-data: templates, suites) of the packages whose modules are shipped: a
    shared module may load them at run time (the drift report's templates)."""
    declared = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"].get("package-data", {})
    packages = {name.rsplit("/", 1)[0].replace("/", ".") for name, _ in modules}
    files: list[tuple[str, Path]] = []
    for package in sorted(packages & set(declared)):
        folder = repo / package.replace(".", "/")
        for pattern in declared[package]:
            files.extend((p.relative_to(repo).as_posix(), p) for p in sorted(folder.glob(pattern)) if p.is_file())
    return files


def content_hash(
    function: str, requirements: Iterable[str], constraints: bytes, sources: Iterable[tuple[str, Path]]
) -> str:
    """sha256 over every input of the artifact; equal inputs give the same key on any machine."""
    digest = hashlib.sha256()
    for part in (function, LAMBDA_PYTHON, *LAMBDA_PLATFORMS, *sorted(requirements)):
        digest.update(part.encode() + b"\0")
    digest.update(hashlib.sha256(constraints).digest())
    for name, path in sorted(sources):
        digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def write_zip(files: Iterable[tuple[str, Path]], dest: Path) -> int:
    """Write a reproducible zip (sorted names, fixed time and modes); return the unzipped size in bytes."""
    entries = sorted(files)
    names = [name for name, _ in entries]
    if len(names) != len(set(names)):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        raise ArtifactError(f"two files map to the same archive name: {', '.join(duplicates[:5])}")
    total = 0
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name, path in entries:
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            executable = os.access(path, os.X_OK) and path.suffix in ("", ".so")
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = path.read_bytes()
            total += len(data)
            archive.writestr(info, data, compresslevel=6)
    return total


def unzipped_size(path: Path) -> int:
    with zipfile.ZipFile(path) as archive:
        return sum(info.file_size for info in archive.infolist())


def pip_installer(requirements: Sequence[str], constraints: Path, target: Path) -> None:
    """Install manylinux wheels for Lambda's CPython into `target` (binary only: nothing compiles here)."""
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check",
        "--no-warn-conflicts", "--target", str(target),
        *(arg for tag in LAMBDA_PLATFORMS for arg in ("--platform", tag)),
        "--python-version", LAMBDA_PYTHON, "--implementation", "cp", "--only-binary=:all:",
        "-c", str(constraints), *requirements,
    ]  # fmt: skip
    subprocess.run(command, check=True)


def build(
    function: str,
    repo: Path,
    cache_dir: Path,
    installer: Installer = pip_installer,
    *,
    enforce_zip_limit: bool = True,
) -> Artifact:
    """Build (or reuse from the cache) the function's zip; over Lambda's zip limit is an ArtifactError."""
    pyproject = tomllib.loads((repo / "pyproject.toml").read_text())
    requirements = function_requirements(pyproject, function)
    constraints = repo / "constraints.txt"
    sources = select_sources(repo, function)
    key = content_hash(function, requirements, constraints.read_bytes(), sources)
    dest = cache_dir / f"{function}-{key[:16]}.zip"
    if dest.exists():
        size = unzipped_size(dest)
    else:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"tide-{function}-") as tmp:
            site = Path(tmp) / "site"
            site.mkdir()
            installer(requirements, constraints, site)
            wheel_files = _tree(site, site)
            partial = Path(tmp) / dest.name
            size = write_zip([*wheel_files, *sources], partial)
            shutil.move(partial, dest)  # only complete zips ever carry the cache name
    artifact = Artifact(function, dest, key, hashlib.sha256(dest.read_bytes()).hexdigest(), size)
    if enforce_zip_limit and not artifact.fits_lambda_zip:
        raise ArtifactError(
            f"{function}: {size / 2**20:.1f} MiB unzipped exceeds Lambda's 250 MiB zip limit;"
            " deploy it as a container image (functions/<name>/Dockerfile)"
        )
    return artifact


@click.command("build-artifacts")
@click.option("--function", "functions", type=click.Choice(FUNCTIONS), multiple=True, help="Default: all of them.")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=Path(".tide/artifacts"))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per function instead of lines.")
def build_artifacts(functions: tuple[str, ...], cache: Path, as_json: bool) -> None:
    """Build each function's Lambda zip from Linux wheels of its extra; report its unzipped size.

    `pulumi up` builds the same zips (same cache); this command shows the sizes beforehand.
    """
    over, report = [], []
    for function in functions or FUNCTIONS:
        artifact = build(function, Path.cwd(), cache, enforce_zip_limit=False)
        verdict = "fits a zip" if artifact.fits_lambda_zip else "over the 250 MiB zip limit: ship it as an image"
        report.append({"function": function, "unzipped_bytes": artifact.unzipped_bytes, "path": str(artifact.path),
                       "zip_sha256": artifact.zip_sha256, "fits_lambda_zip": artifact.fits_lambda_zip})  # fmt: skip
        if not as_json:
            click.echo(f"{function}: {artifact.unzipped_bytes / 2**20:.1f} MiB unzipped, {artifact.path} ({verdict})")
        if not artifact.fits_lambda_zip:
            over.append(function)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    if over:
        raise click.ClickException(f"over Lambda's zip limit: {', '.join(over)}")
