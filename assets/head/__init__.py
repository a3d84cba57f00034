"""The aesthetic head: metrics and cross-validation folds for score predictions."""
