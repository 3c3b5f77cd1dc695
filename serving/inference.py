"""A trained model loaded for serving: raw request -> validated columns -> encoded inputs -> scores, in batches.

Every serving path goes through `Predictor`: SageMaker's container (`sagemaker_entry`, shipped as
`code/inference.py`), the HTTP predictor (`server`) and the rehearsal. torch + numpy + stdlib only.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from serving.encoding import FeatureEncoder
from serving.net import TabularNet
from serving.payload import Batch, Limits, Predictions, decode, encode
from serving.spec import SPEC_FILE, WEIGHTS_FILE, ModelSpec

BATCH_ROWS = 4096  # rows per forward pass: bounds the activations' memory for a large request


@dataclass
class Predictor:
    spec: ModelSpec
    net: TabularNet
    limits: Limits

    @classmethod
    def load(cls, model_dir: str | Path, limits: Limits | None = None) -> Predictor:
        """The model in a folder holding `model.pt` and `serving.json` (an unpacked model.tar.gz)."""
        folder = Path(model_dir)
        missing = [name for name in (WEIGHTS_FILE, SPEC_FILE) if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(f"{folder} has no {' or '.join(missing)}: not a Tidewater model folder")
        spec = ModelSpec.from_json((folder / SPEC_FILE).read_bytes())
        with warnings.catch_warnings():  # quantised tensors: torch warns about their deprecated storage API
            warnings.simplefilter("ignore", UserWarning)
            saved = torch.load(io.BytesIO((folder / WEIGHTS_FILE).read_bytes()), weights_only=True)
            net = TabularNet.from_saved(saved, spec.weights)
        return cls(spec, net, limits or Limits())

    def __post_init__(self) -> None:
        self._encoder = FeatureEncoder(self.spec.features)

    def decode(self, body: bytes | str, content_type: str | None) -> Batch:
        return decode(body, content_type, self.spec.features, self.limits)

    def scores(self, batch: Batch) -> np.ndarray:
        cats, nums = self._encoder.encode(batch.columns, batch.rows)
        out = np.empty(batch.rows, dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, batch.rows, BATCH_ROWS):
                stop = start + BATCH_ROWS
                logits = self.net(torch.from_numpy(cats[start:stop]), torch.from_numpy(nums[start:stop]))
                out[start:stop] = torch.sigmoid(logits).numpy()
        return out

    def predict(self, batch: Batch) -> Predictions:
        scores = self.scores(batch)
        labels = (scores >= self.spec.threshold).astype(int).tolist()
        return Predictions(scores.tolist(), labels, self.spec.version)

    def handle(self, body: bytes | str, content_type: str | None, accept: str | None) -> tuple[bytes, str]:
        """One request end to end: `(response body, content type)`, or RequestError for a client mistake."""
        return encode(self.predict(self.decode(body, content_type)), accept)
