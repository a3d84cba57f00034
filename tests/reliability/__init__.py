"""Reliability (issue 9): what a run killed at any moment, two runs at once, a garbage dump
and a user's mistakes do to scoretag. `make test` runs these with the rest of tests/.

SIGKILL (test_kill_*.py; tests/reliability/killable.py runs a stage in its own process and
holds it at a named point, so the kill lands exactly there):
- test_kill_embeddings: killed after some shards, the rerun embeds only what was left, keeps
  the committed shards byte for byte, drops the dead writer's temporary file, and gives the
  vectors of an uninterrupted run.
- test_kill_scoring: killed inside the scoring transaction, readers see none of the run's
  scores and the head's cursor has not moved; killed after it committed (the write-ahead log
  not yet checkpointed), they see all of them. While it writes, a reader is refused with the
  file and the writing process named. Either way the rerun finishes and its scores (post_key,
  head_version, score, percentile) equal an uninterrupted run's.
- test_kill_scoring (retention): a retention stopped between its statements leaves the four
  tables it deletes from as they were.
- test_kill_export: `scoretag export` killed with every shard in place but no manifest yet:
  readers find no export, and the rerun's shards and manifest equal an uninterrupted export's.
  A kill while shards are still being staged, over a previous export, is
  tests/captions/test_shards.py::test_a_killed_export_leaves_the_previous_one_whole.

Two runs at once (test_concurrent_runs.py):
- on one Dagster instance the `duckdb` pool holds the second run's catalog step until the
  first's ends (the second is told not to wait for DuckDB's lock, so only the pool can save it);
- on separate instances (or beside `scoretag query`) the second waits for DuckDB's lock and
  then scores nothing twice, or, past [catalog] lock_timeout_s, fails naming the catalog and
  the process writing it;
- every step whose code opens the catalog is in the `duckdb` pool (the instance gives that
  pool one slot: tests/orchestration/test_profile.py).

A garbage dump (test_garbage_dump.py): `scoretag ingest` of a dump that is 70% garbage stops
at the quarantine threshold, says how much could not be read and why, shows no stack trace,
and leaves every later stage's files and the catalog byte for byte as they were.

Clear errors (test_user_errors.py): an unknown site, a missing file, a wrong profile, a
malformed config (syntax, unknown key, wrong type, not UTF-8, a folder), and a head made for
another backbone (refused by `scoretag head activate` and by scored_catalog) each end the
command with a message that says what is wrong and what to do, and no traceback.
"""
