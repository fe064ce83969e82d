"""MLflow tracking and the model registry: the only package that imports mlflow."""
