"""Test harnesses shared across the suite, imported as ``tests.support.<module>``.

- ``services``: ``require_service``, the one skip-locally / fail-under-CI rule, and the Redis
  the integration tests share.
- ``mongo``: the wire-protocol Mongo test server as fixtures, and throwaway databases.
- ``wire_server``: that server (a test double, not MongoDB); also runnable alone.
- ``cluster``: ``parzen worker`` processes for multi-process tests.
- ``faults``: the fault-injection harness built on ``cluster`` (private ``redis-server``,
  killable workers and coordinators).
- ``objectives``, ``fault_objectives``: objectives that worker processes import by name.
- ``hooked_worker``, ``coordinator_proc``: child processes, run as
  ``python -m tests.support.<name>``.
- ``race_worker``: the process target of the store's claim-race test.
- ``cli``: the CLI tests' space, objective, in-process runner and experiment builders.
- ``bench``: imports the scripts of ``bench/`` (a folder of scripts, not a package).
"""
