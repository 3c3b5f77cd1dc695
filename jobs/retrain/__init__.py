"""`tide retrain`: the deployed consumer of the retraining queue (drift -> train -> challenger -> rollout)."""
