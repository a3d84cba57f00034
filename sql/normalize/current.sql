-- A full run: every winner is a current post (`current`, what the groups are scored from).
ALTER TABLE winners RENAME TO current;
