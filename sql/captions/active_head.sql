-- The head whose scores the catalog view shows.
SELECT version FROM heads WHERE active LIMIT 1;
