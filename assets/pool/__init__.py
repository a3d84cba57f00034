"""rating_pool: a reproducible, stratified, append-only sample of posts to rate by hand."""
