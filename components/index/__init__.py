"""Embeddings, the versioned FAISS index of reviews, and emotion-aware retrieval."""
