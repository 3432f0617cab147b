"""Scoring: one shared, explainable model (fit + engagement + buying signals).

The sync engine uses only what is exported here:

    model = default_model()                       # or load_model(path)
    s = score(model, contact, engagements, now)   # pure; `now` is an argument
    stage = next_stage(model, current, lead_status, s)  # None = leave the CRM alone
"""

from scoring.loader import DEFAULT_MODEL_PATH, default_model, dump_model, load_model, loads_model
from scoring.policy import next_stage
from scoring.schema import ModelError, ScoringModel
from scoring.scorer import Reason, Score, score

__all__ = [
    "DEFAULT_MODEL_PATH",
    "ModelError",
    "Reason",
    "Score",
    "ScoringModel",
    "default_model",
    "dump_model",
    "load_model",
    "loads_model",
    "next_stage",
    "score",
]
