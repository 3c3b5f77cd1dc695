"""Pulumi entry point (Pulumi.yaml: `main: infra/`): compose the stack and export its outputs."""

import sys
from pathlib import Path

# Pulumi runs this file with infra/ as the working directory; the repository root holds the packages it imports.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.program import compose, export

export(compose())
