"""normalized_scores: booru popularity turned into a per-site, per-cohort percentile."""
