"""The review analysis chain and the one pipeline from a face image to an answer."""
