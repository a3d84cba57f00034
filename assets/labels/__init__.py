"""manual_labels and the labeling app: human 1-5 quality labels for the rating pool."""
