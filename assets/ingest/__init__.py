"""raw_posts: every site's metadata, read from its own formats into one schema."""
