"""TorchServe packaging, handler and client."""
