-- The counter $key of catalog_state (no row when it was never set).
SELECT value FROM catalog_state WHERE key = $key;
