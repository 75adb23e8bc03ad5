"""Names ``make lint``'s dead-code check (vulture) reports as unused, and why each stays.

vulture reads this file as code that uses the names below; nothing imports or runs it.
Functions registered by a decorator (the CLI's ``@command``, Celery's ``@signals.*.connect``,
``@pytest.fixture``, ``@pytest.hookimpl``) are skipped through ``ignore_decorators`` in
pyproject.toml instead. vulture matches by name only, so keep this list short.
"""
# ruff: noqa
# mypy: ignore-errors

# ---- used by code outside parzen --------------------------------------------------------
# hyperopt's API, kept name for name (tests/compat/test_hyperopt_api.py checks the shapes)
JOB_VALID_STATES  # parzen.trials: hyperopt.base.JOB_VALID_STATES
_.asynchronous  # Trials / ParallelTrials / MongoTrials: read by hyperopt-style drivers
bandit  # Trials.losses/statuses/average_best_error(bandit=None): hyperopt's signatures
allow_trials_fmin  # fmin(..., allow_trials_fmin=True): hyperopt's signature
_.memo_from_config  # Domain.memo_from_config
status_colors  # plotting.main_plot_history(..., status_colors=None)
colorize_best  # plotting.main_plot_vars(..., colorize_best=None, ...)
fontsize
arrange_by_loss
main_plot_histogram  # plotting: hyperopt.plotting's names
main_plot_1D_attachment
_.true_loss_variance  # Domain: hyperopt.base.Domain's readers and helpers
_.new_result
_.short_str
_.define_pure  # pyll.scope: hyperopt.pyll's ways to define and manage user functions
_.define_if_new
_.define_info
_.undefine
_.import_
_.named_args  # pyll Apply: hyperopt.pyll.Apply.named_args
_.postfix  # progress: tqdm reads the bar's postfix (hyperopt's progress callbacks set it)
postfix
# Python, argparse, Celery, kombu, mockupdb and mongomock read what these set
__getattr__  # parzen.worker.app: module __getattr__ (PEP 562) for `celery -A ...`
_.__class__  # parzen/__init__.py: the package's module object becomes a _Package
_.formatter_class  # argparse.ArgumentParser.formatter_class
_.accept_content  # tests/faults/test_security.py: Celery's app.conf.accept_content
_.unacked_restore_interval  # tests/support/hooked_worker.py: kombu's redis Channel
_.unacked_restore_throttle
_._iter_documents  # tests/support/wire_server.py: patched into mongomock and mockupdb
_._accept_loop
_._address
# pytest reads these
pytestmark
# bench/chaos.py: a field of the JSON report (dataclasses.asdict)
_.retried
