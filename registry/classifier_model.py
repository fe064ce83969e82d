"""The MLflow pyfunc model of the emotion classifier (MLflow "models from code").

MLflow stores this file and the weights (a ``state_dict`` saved by
:func:`components.vision.model.save_weights`); loading runs this code and
``torch.load(weights_only=True)``: nothing is unpickled. Input: (N, 1, 48, 48) float32
faces in [0, 1]; output: (N, 7) probabilities in FER-2013 order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel, PythonModelContext


class EmotionClassifierModel(PythonModel):
    def load_context(self, context: Any) -> None:
        from components.vision.model import load_weights

        self.model = load_weights(context.artifacts["weights"]).eval()

    def predict(
        self,
        context: PythonModelContext,
        model_input: np.ndarray,
        params: dict[str, object] | None = None,
    ) -> np.ndarray:
        # An ndarray hint tells MLflow the input is a tensor: the logged tensor signature
        # (registry.models.classifier_signature) describes and validates its shape.
        import torch

        batch = torch.as_tensor(np.asarray(model_input, dtype=np.float32))
        with torch.inference_mode():
            return torch.softmax(self.model(batch), dim=1).numpy()


set_model(EmotionClassifierModel())
