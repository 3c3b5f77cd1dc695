"""SageMaker's torchrun driver runs this script on every node with the hyperparameters as arguments
(`--config s3://...`); the training image has tidewater installed, so it only hands over to the worker."""

import sys

from jobs.train.worker import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
