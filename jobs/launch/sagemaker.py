"""SageMaker: a training job through the sagemaker SDK (v3 ModelTrainer) with its Torchrun distribution.

Every instance runs torchrun over sagemaker_entry/entry.py, which calls the same worker as the other
launchers; the config travels as the `config` hyperparameter (a URL in S3). SageMaker has no torchrun
--max-restarts: a failed job is retried by its RetryStrategy (internal errors) or resubmitted, and in both
cases the worker resumes from the newest complete checkpoint in the object store. The SDK session is injected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jobs.launch.base import JobSpec, Submitted, git_commit
from jobs.launch.staging import stage_config
from jobs.train.config import CODE_VERSION_ENV, TrainConfig

ENTRY_DIR = Path(__file__).parent / "sagemaker_entry"


class SageMakerTrainingJob:
    def __init__(self, session: Any, role: str, instance_type: str = "ml.m5.xlarge", volume_gb: int = 30) -> None:
        self.session = session  # sagemaker.core.helper.session_helper.Session
        self.role = role
        self.instance_type = instance_type
        self.volume_gb = volume_gb

    def trainer(self, config: TrainConfig, spec: JobSpec, config_url: str) -> Any:
        from sagemaker.train import ModelTrainer
        from sagemaker.train.configs import Compute, OutputDataConfig, SourceCode
        from sagemaker.train.distributed import Torchrun

        env = dict(spec.env)
        commit = git_commit()
        if commit and CODE_VERSION_ENV not in env:
            env[CODE_VERSION_ENV] = commit
        return ModelTrainer(
            training_image=spec.image,
            role=self.role,
            source_code=SourceCode(source_dir=str(ENTRY_DIR), entry_script="entry.py"),
            compute=Compute(
                instance_type=self.instance_type, instance_count=spec.nodes, volume_size_in_gb=self.volume_gb
            ),
            distributed=Torchrun(process_count_per_node=spec.procs_per_node),
            hyperparameters={"config": config_url},
            environment=env,
            sagemaker_session=self.session,
            base_job_name=spec.name,
            output_data_config=OutputDataConfig(s3_output_path=config.model_url),
        )

    def launch(self, config: TrainConfig, spec: JobSpec) -> Submitted:
        if not config.model_url.startswith("s3://"):
            raise ValueError(f"SageMaker training needs an s3:// output URL, got {config.output_url!r}")
        trainer = self.trainer(config, spec, stage_config(config))
        trainer.train(wait=False, logs=False)
        job = trainer._latest_training_job  # the SDK keeps the created TrainingJob here
        return Submitted("sagemaker", str(job.training_job_name), {"model_url": config.model_url})
