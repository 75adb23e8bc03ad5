"""One local Spark for every Spark test: a session-scoped ``local[4]`` SparkSession, so the
JVM starts once (15-40 s on the 2-core test machine, depending on its load).

The executors' Python is this interpreter (``PYSPARK_PYTHON``), and Spark, like
SparkTrials' own link, listens on 127.0.0.1 only. Without pyspark or Java the tests skip,
except under ``CI=true`` (``tests.support.services.require_service``).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.services import require_service

SLOTS = 4  # local[4]: four task slots on two cores; the trials mostly sleep


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """The shared SparkSession (``local[4]``)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        require_service(False, "pyspark (pip install -e '.[dev]', which brings parzen[spark])")
        raise
    require_service(shutil.which("java") is not None or bool(os.environ.get("JAVA_HOME")),
                    "Java 17 (apt-get install openjdk-17-jre-headless)")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    # pyspark replaces the SIGINT handler with its own (cancel every job, then
    # KeyboardInterrupt); the rest of the suite gets Python's back afterwards.
    sigint = signal.getsignal(signal.SIGINT)
    session = (SparkSession.builder.master(f"local[{SLOTS}]").appName("parzen-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.driver.host", "127.0.0.1")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()
        signal.signal(signal.SIGINT, sigint)
