"""Running one trial: claim, heartbeat, evaluate in a sandbox child, record the outcome.

``run.py`` holds ``run_trial`` (the lifecycle of one delivery), ``sandbox.py`` the supervisor
of the evaluation child and ``_child.py`` the child itself; ``payload.py`` signs and verifies
the pickled objective. Nothing here knows Celery, Spark or the coordinator: every runner and
the Celery worker call into it.
"""
