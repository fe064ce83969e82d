"""The web app: a Streamlit front end over the served endpoints (``emoreview app``).

A thin adapter like the CLI. The Photo, Ask and Sentiment tabs call TorchServe through the
project's client (:mod:`serving.client`, with the token); the Models tab reads the registry
through :mod:`registry`. No model is ever loaded in the app's process.
"""
