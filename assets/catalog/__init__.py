"""The scored catalog in DuckDB: posts, heads, scores, and the SQL users run over them."""
