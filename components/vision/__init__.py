"""Facial emotion recognition: FER-2013 data, faces, ResNet-50 training and prediction."""
