"""The deployed stack's outputs, as `tide` reads them: no name or ARN is copied by hand between steps.

After each `pulumi up`, write the outputs once:

    pulumi stack output --json > .tide/stacks/dev.json

and hand the file to the commands that act on the deployed stack (`tide train --stack-outputs`, `tide deploy
--stack-outputs`, or TIDE_STACK_OUTPUTS). Each command asks for the outputs it needs with `require`, which names
the stage that produces a missing one, so a step run too early says what to deploy first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from schemas.naming import STAGES, Names, NamingError

ENV_VAR: Final = "TIDE_STACK_OUTPUTS"
# Output -> the first stage that exports it (infra/program.py); what `require` tells the user to deploy.
PRODUCED_BY: Final[dict[str, str]] = {
    "buckets": "lake",
    "model_name": "lake",
    "training_image_repository": "lake",
    "training_role_arn": "platform",
    "k8s_training_job": "platform",
    "k8s_serving_image": "platform",
    "retraining_queue_url": "platform",
    "endpoint_name": "serving",
    "endpoint_role_arn": "serving",
    "endpoint_image": "serving",
    "endpoint_instance_type": "serving",
    "capture_destination": "serving",
    "variant_alarms": "serving",
    "k8s_inference_service": "serving",
}


class StackOutputsError(ValueError):
    """The outputs file is missing, unreadable, or lacks an output the command needs (the message says which)."""


class StackOutputs:
    def __init__(self, values: dict[str, Any], source: str) -> None:
        self.values = values
        self.source = source
        try:
            self.names = Names(str(values["project"]), str(values["stack"]))
        except KeyError as err:
            missing = err.args[0]
            raise StackOutputsError(f"{source}: no {missing!r} output; is this `pulumi stack output --json`?") from None
        except NamingError as err:
            raise StackOutputsError(f"{source}: {err}") from None
        stage = values.get("stage")
        if stage not in STAGES:
            raise StackOutputsError(f"{source}: output 'stage' is {stage!r}, not one of {', '.join(STAGES)}")
        self.stage: str = stage

    @classmethod
    def load(cls, path: str | Path) -> StackOutputs:
        file = Path(path)
        try:
            values = json.loads(file.read_text())
        except OSError as err:
            raise StackOutputsError(
                f"cannot read stack outputs {file}: {err.strerror or err} (write it with "
                "`pulumi stack output --json > FILE` after `pulumi up`)"
            ) from None
        except json.JSONDecodeError as err:
            raise StackOutputsError(f"{file} is not JSON ({err.msg} at line {err.lineno})") from None
        if not isinstance(values, dict):
            raise StackOutputsError(f"{file} holds {type(values).__name__}, not the JSON object of stack outputs")
        return cls(values, str(file))

    def require(self, key: str) -> Any:
        value = self.values.get(key)
        if value is None or value == "":
            stage = PRODUCED_BY.get(key)
            if stage is None:
                hint = ""
            elif STAGES.index(stage) > STAGES.index(self.stage):
                hint = (
                    f"; it comes with stage {stage} (this file is from stage {self.stage}): "
                    f"`pulumi config set stage {stage} && pulumi up`, then write the outputs again"
                )
            else:
                hint = f" (stage {stage} exports it on its target: is the file from this stack's last `pulumi up`?)"
            raise StackOutputsError(f"{self.source} has no output {key!r}{hint}")
        return value

    def bucket(self, zone: str) -> str:
        buckets = self.require("buckets")
        if not isinstance(buckets, dict) or zone not in buckets:
            raise StackOutputsError(f"{self.source}: output 'buckets' has no {zone!r} zone")
        return str(buckets[zone])

    @property
    def model_name(self) -> str:
        return str(self.require("model_name"))
