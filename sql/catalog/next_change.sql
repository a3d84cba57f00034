-- Take the next change number (inside the caller's transaction) and return it.
UPDATE catalog_state SET value = value + 1 WHERE key = 'change_seq';

SELECT value FROM catalog_state WHERE key = 'change_seq';
