"""SparkTrials' parts that need no Spark: the missing-extra error, hyperopt's argument
rules, Spark's errors in one line, and the driver's authenticated link."""

from __future__ import annotations

import dataclasses
import multiprocessing
import queue
import sys

import pytest

from parzen.backends import SparkBackend
from parzen.coordinator import RunSettings
from parzen.exceptions import ConfigError
from parzen.runners.spark import driver_paths, run_settings
from parzen.runners.spark._job import is_cancellation, spark_failure
from parzen.runners.spark._link import Link, Listener
from parzen.runners.spark._task import _connect
from parzen.runners.spark._wire import Hello, SlotSpec
from parzen.spark import SparkTrials


def test_without_pyspark_spark_trials_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark -> ImportError
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(ConfigError, match=r"pip install 'parzen\[spark\]'"):
        SparkTrials(parallelism=2)


def test_hyperopts_argument_checks_come_first():
    with pytest.raises(ConfigError, match="timeout argument should be None or a positive "
                                          "value. Given value: -1"):
        SparkTrials(parallelism=4, timeout=-1)
    with pytest.raises(ConfigError, match="Given value: True"):
        SparkTrials(parallelism=4, timeout=True)
    with pytest.raises(ConfigError, match="loss_threshold argument should be None or a "
                                          "numeric value"):
        SparkTrials(loss_threshold="low")
    with pytest.raises(ConfigError, match="parallelism"):
        SparkTrials(parallelism=2.5)


def _backend(**kw):
    base = dict(parallelism=4, session=None, timeout=None, loss_threshold=None,
                trial_timeout=None, max_attempts=3, max_payload_bytes=1000)
    return SparkBackend(**{**base, **kw})


def _settings(**kw):
    return dataclasses.replace(RunSettings(max_evals=10, timeout=None, loss_threshold=None,
                                           max_queue_len=1, early_stop_fn=None), **kw)


def test_spark_trials_timeout_wins_and_fmins_loss_threshold_wins(caplog):
    s = run_settings(_backend(timeout=5.0, loss_threshold=0.1), _settings())
    assert (s.timeout, s.loss_threshold) == (5.0, 0.1)
    s = run_settings(_backend(timeout=5.0, loss_threshold=0.1),
                     _settings(timeout=60.0, loss_threshold=0.5))
    assert (s.timeout, s.loss_threshold) == (5.0, 0.5)
    assert "SparkTrials' applies" in caplog.text
    s = run_settings(_backend(), _settings(timeout=60.0))
    assert s.timeout == 60.0 and s.loss_threshold is None


def test_parallelism_above_max_evals_warns(caplog):
    run_settings(_backend(parallelism=24), _settings(max_evals=5))
    assert "SparkTrials(parallelism=24) is more than max_evals=5" in caplog.text
    caplog.clear()
    run_settings(_backend(parallelism=4), _settings(max_evals=5))
    assert caplog.text == ""


def test_sparks_errors_are_told_in_one_line():
    java = ("An error occurred while calling z:org.apache.spark.api.python.PythonRDD."
            "collectAndServe.\n: org.apache.spark.SparkException: Job aborted due to stage "
            "failure: Task 0 in stage 1.0 failed 1 times, most recent failure: Lost task 0.0 "
            "in stage 1.0 (TID 1) (localhost executor driver): org.apache.spark.SparkException"
            ": Python worker exited unexpectedly (crashed).\n\tat org.apache.spark.api.python"
            ".BasePythonRunner.foo(PythonRunner.scala:1136)\nCaused by: java.io.EOFException")
    line = spark_failure(RuntimeError(java))
    assert line.startswith("Lost task 0.0 in stage 1.0")
    assert "Python worker exited unexpectedly (crashed)" in line and "\n" not in line
    python = ("An exception was thrown from the Python worker:\nTraceback (most recent call "
              "last):\n  File \"x.py\", line 1, in f\n    connect()\nDriverUnreachable: "
              "parzen's Spark task on h cannot reach the driver")
    assert spark_failure(RuntimeError(python)).startswith("DriverUnreachable: parzen's")
    cancelled = spark_failure(RuntimeError(
        "An error occurred while calling z:x.\n: org.apache.spark.SparkException: "
        "[SPARK_JOB_CANCELLED] Job 2 cancelled part of cancelled job group g SQLSTATE: XXKDA"
        "\n\tat org.apache.spark.errors.SparkCoreErrors$.sparkJobCancelled"))
    assert is_cancellation(cancelled) and not is_cancellation(line)
    assert len(spark_failure(RuntimeError("x" * 5000))) == 400


def test_only_a_task_holding_the_runs_key_gets_a_link(caplog):
    arrivals: list[queue.Queue[Link]] = [queue.Queue()]
    key = b"k" * 32
    listener = Listener("127.0.0.1", key, arrivals)
    try:
        wrong = SlotSpec(("127.0.0.1", listener.port), b"w" * 32, 0, 1, "run")
        with pytest.raises(multiprocessing.AuthenticationError):
            _connect(wrong)
        right = SlotSpec(("127.0.0.1", listener.port), key, 0, 1, "run")
        conn = _connect(right)
        conn.send(Hello(0, 1, "host", 123, "3.11.7", "0.1.0", 0))
        link = arrivals[0].get(timeout=10)
        assert (link.hello.host, link.hello.pid) == ("host", 123)
        assert arrivals[0].empty()
        link.stop()  # the task's end reads the link's end
        assert conn.poll(5)
        with pytest.raises(EOFError):
            conn.recv()
        conn.close()
        assert link.wait_ended(5)
    finally:
        listener.close()
    assert "refused a connection" in caplog.text


def test_the_drivers_own_directories_travel_not_its_python_installation():
    paths = driver_paths()
    assert paths[0]  # the working directory first
    assert not any("site-packages" in p or p.startswith(sys.prefix) for p in paths[1:])
