"""The contract's great-expectations suite, built once per process and evaluated on every file's Arrow table.

The suite is GE's (schemas.expectations.build_suite); each file is checked against it with vectorised Arrow
compute (functions.ingest.arrow_checks), which reports what GE's COMPLETE result format would, without a
pandas copy or GE's per-file overhead. The parity of the two is a test.

Cold start: the function loads each suite from its GE JSON form stored in functions/ingest/suites/ (written by
`python -m functions.ingest.validation`, kept equal to build_suite's output by a test), so importing the
handler does not import great-expectations (seconds); a contract without a stored suite builds it with GE.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from functions.ingest.arrow_checks import evaluate, suite_configs
from schemas.contract import CONTRACTS_DIR, Contract, load_contract
from schemas.expectations import ValidationSummary, build_suite

SUITES_DIR = Path(__file__).parent / "suites"
ROW_SAMPLE = 20  # row numbers kept per failed expectation in summaries (a 1M-row file must not bloat them)


@dataclass(frozen=True)
class Validator:
    contract: Contract
    suite: dict[str, Any]  # the GE ExpectationSuite's JSON form
    configs: list[dict[str, Any]]  # its expectations as plain data, what each file is checked against

    @classmethod
    def for_dataset(cls, dataset: str) -> Validator:
        contract = load_contract(dataset)
        stored = stored_suite_path(contract)
        suite: dict[str, Any] = (
            json.loads(stored.read_text()) if stored.is_file() else build_suite(contract).to_json_dict()
        )
        return cls(contract, suite, suite_configs(suite))

    def warm_up(self) -> None:
        """Validate an empty table once, so lazy imports (Arrow compute kernels) happen at init, not per file."""
        self.validate(self.contract.arrow_schema().empty_table())

    def validate(self, table: pa.Table) -> tuple[ValidationSummary, float]:
        start = time.perf_counter()
        summary = evaluate(self.contract, self.configs, table, self.contract.ref)
        return summary, time.perf_counter() - start


def stored_suite_path(contract: Contract) -> Path:
    return SUITES_DIR / f"{contract.dataset}.v{contract.version}.json"


def suite_json(contract: Contract) -> str:
    return json.dumps(build_suite(contract).to_json_dict(), indent=2, sort_keys=True) + "\n"


def write_stored_suites() -> list[Path]:
    """Store the GE suite of every dataset's newest contract (run after changing a contract or GE)."""
    SUITES_DIR.mkdir(exist_ok=True)
    written = []
    for dataset in known_datasets():
        contract = load_contract(dataset)
        path = stored_suite_path(contract)
        path.write_text(suite_json(contract))
        written.append(path)
    return written


def known_datasets() -> list[str]:
    return sorted(p.name for p in CONTRACTS_DIR.iterdir() if p.is_dir() and any(p.glob("v*.yaml")))


def load_validators(datasets: list[str] | None = None, warm: bool = True) -> dict[str, Validator]:
    validators = {name: Validator.for_dataset(name) for name in (datasets or known_datasets())}
    if warm:
        for validator in validators.values():
            validator.warm_up()
    return validators


def summary_doc(summary: ValidationSummary) -> dict[str, Any]:
    return {
        "contract": summary.contract,
        "success": summary.success,
        "row_count": summary.row_count,
        "failed_expectations": [
            {
                "expectation": f.expectation,
                "column": f.column,
                "unexpected_count": f.unexpected_count,
                "unexpected_rows": f.unexpected_rows[:ROW_SAMPLE],
                "sample_values": f.sample_values,
            }
            for f in summary.failed
        ],
    }


if __name__ == "__main__":
    for path in write_stored_suites():
        print(path)
