-- Set the counter $key of catalog_state to $value.
INSERT OR REPLACE INTO catalog_state VALUES ($key, $value);
