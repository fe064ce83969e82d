"""Review-text models: summarizers, sentiment scorers and the emotion tagger."""
