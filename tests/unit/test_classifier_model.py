"""The MLflow pyfunc model of the classifier is declared the way MLflow expects."""

from __future__ import annotations

import importlib
import sys
import warnings


def test_the_pyfunc_model_has_the_type_hints_mlflow_asks_for() -> None:
    import mlflow.pyfunc  # noqa: F401  (MLflow's own import-time warnings are not ours)

    sys.modules.pop("registry.classifier_model", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module("registry.classifier_model")
    assert [str(w.message) for w in caught] == []
    assert module.EmotionClassifierModel
