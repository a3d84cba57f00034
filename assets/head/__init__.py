"""The aesthetic head: embeddings to quality in [0, 1], trained on manual labels, evaluated
by cross-validation beside its baselines, gated, versioned; LAION import; active learning."""
