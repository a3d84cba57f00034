-- How many posts the run looks for an embedding for: new ones, and waiting ones.
SELECT count(*) FROM todo;
