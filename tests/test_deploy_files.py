"""Wiring checks for the deployment files: docker-compose.yml, workers/, deploy/.

Docker, Kubernetes, Slurm and systemd do not run here, so these tests parse the files and
check that they agree with each other and with the code: the environment variables the
worker reads, the service names and ports in URLs, and that every ``parzen worker`` command
line parses with the real CLI parser. Each check returns a list of problems, so the negative
tests at the end can feed it a broken copy and see it complain.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import io
import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate  # the `test` extra: Kubernetes' JSON schemas, offline
import pytest
import yaml  # the `test` extra

from parzen.cli._main import configure, parse_args
from parzen.exceptions import ConfigError
from parzen.execution import payload
from parzen.store.uri import parse_mongo_url

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "workers" / "Dockerfile"
K8S = REPO / "deploy" / "kubernetes"
UNIT = REPO / "deploy" / "systemd" / "parzen-worker.service"
SBATCH = REPO / "deploy" / "slurm" / "parzen-workers.sbatch"
DEMO = REPO / "examples" / "distributed_demo.py"
ENV_EXAMPLES = [REPO / "workers" / "worker.env.example",
                REPO / "deploy" / "systemd" / "worker.env.example"]
DEPLOY_FILES = [COMPOSE, DEMO, *ENV_EXAMPLES, *sorted((REPO / "workers").iterdir()),
                *sorted(p for p in (REPO / "deploy").rglob("*") if p.is_file())]

# The modules that read the worker's environment. There is no constant listing the names, so
# they are extracted from these modules' string literals rather than repeated here.
WORKER_ENV_MODULES = ("parzen.worker.app", "parzen.worker.runtime", "parzen.cli.worker",
                      "parzen.execution.payload")
COORDINATOR_ENV_MODULES = ("parzen.mongoexp", "parzen.execution.payload")
REQUIRED = {"PARZEN_MONGO_URL", "PARZEN_BROKER_URL", payload.SECRET_ENV}
DUMMY_SECRET = "0123456789abcdef0123456789abcdef"


# ---- helpers ---------------------------------------------------------------------------------

def _module_source(name: str) -> str:
    """A module's source, read without importing it (``parzen.worker.app`` reads the
    environment at import)."""
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None, name
    return Path(spec.origin).read_text()


def _env_literals(text: str) -> set[str]:
    return set(re.findall(r"[\"'](PARZEN_[A-Z0-9_]+)[\"']", text))


def _environ_reads(text: str) -> set[str]:
    """Names a script reads with ``os.environ.get("X")`` / ``os.environ["X"]``."""
    return set(re.findall(r"os\.environ(?:\.get\(|\[)\s*[\"']([A-Z0-9_]+)[\"']", text))


WORKER_ENV = set().union(*(_env_literals(_module_source(m)) for m in WORKER_ENV_MODULES))
WORKER_ENV |= {payload.SECRET_ENV, payload.SECRET_FILE_ENV}
COORDINATOR_ENV = (set().union(*(_env_literals(_module_source(m))
                                 for m in COORDINATOR_ENV_MODULES))
                   | _environ_reads(DEMO.read_text()))


class MissingVariable(Exception):
    """``${VAR:?message}`` with VAR unset, as docker compose (and the shell) refuse it."""


_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}"
                  r"|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose-style (and shell-style) ``$VAR``, ``${VAR:-default}``, ``${VAR:?error}``."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1) or m.group(4), m.group(2) or "", m.group(3) or ""
        val = env.get(name)
        unset = val is None or (op.startswith(":") and val == "")
        if op.endswith("-"):
            return arg if unset else str(val)
        if op.endswith("?"):
            if unset:
                raise MissingVariable(f"{name}: {arg}")
            return str(val)
        return val or ""

    return _VAR.sub(sub, value)


def worker_cli_problems(argv: list[str], where: str) -> list[str]:
    """Problems with ``argv`` as a ``parzen worker`` command line (empty if it parses)."""
    if len(argv) < 2 or Path(argv[0]).name != "parzen" or argv[1] != "worker":
        return [f"{where}: {argv!r} is not a `parzen worker ...` command"]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = parse_args(argv[1:])
    except SystemExit:
        return [f"{where}: {shlex.join(argv)!r} does not parse: {err.getvalue().strip()}"]
    if args.command != "worker" or (args.concurrency is not None and args.concurrency < 1):
        return [f"{where}: {shlex.join(argv)!r}: bad command or --concurrency"]
    # A command line is readable by every local user (ps): URLs, which carry passwords, come
    # from the environment or from files.
    return [f"{where}: {option} puts a URL on the command line, where `ps` shows its password "
            f"to every local user; set {env} or pass {option}-file FILE"
            for option, env, value in (("--mongo", "PARZEN_MONGO_URL", args.mongo),
                                       ("--broker", "PARZEN_BROKER_URL", args.broker))
            if value]


def _parse_worker(argv: list[str]) -> Any:
    assert not worker_cli_problems(argv, "test")
    return parse_args(argv[1:])


def _env_file_keys(path: Path) -> set[str]:
    keys = set()
    for line in path.read_text().splitlines():
        m = re.match(r"#?([A-Z][A-Z0-9_]*)=", line.strip())  # `#KEY=` is an optional one
        if m:
            keys.add(m.group(1))
    return keys


def _seconds(value: Any) -> float:
    """``30``, ``"30s"``, ``"1m30s"``, ``"2min"`` as seconds."""
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    units = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]+)", text)
    assert parts, f"cannot read a duration from {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # `parzen worker`'s defaults come from the environment; keep the developer's out.
    for name in list(os.environ):
        if name.startswith("PARZEN_"):
            monkeypatch.delenv(name)
    yield


# ---- docker-compose.yml ----------------------------------------------------------------------

def load_compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    raw = yaml.safe_load(COMPOSE.read_text())
    doc: dict[str, Any] = interpolate(raw, {"PARZEN_SECRET": DUMMY_SECRET} if env is None
                                      else env)
    return doc


def _environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _container_port(service: Mapping[str, Any], default: int) -> set[int]:
    ports = {int(str(p).rsplit(":", 1)[-1].split("/")[0]) for p in service.get("ports", [])}
    return ports or {default}


def compose_problems(doc: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    services = doc.get("services", {})
    missing = {"mongo", "redis", "worker", "coordinator"} - set(services)
    if missing:
        return [f"compose: missing services {sorted(missing)}"]
    mongo, redis, worker, coord = (services[s] for s in ("mongo", "redis", "worker",
                                                          "coordinator"))
    if not str(mongo.get("image", "")).startswith("mongo:7"):
        problems.append("compose: mongo must use the official mongo:7 image")
    mongo_check = " ".join(map(str, mongo.get("healthcheck", {}).get("test", [])))
    if "mongosh" not in mongo_check or "ping" not in mongo_check:
        problems.append("compose: mongo healthcheck must ping with mongosh")
    volumes = [str(v).split(":", 1)[0] for v in mongo.get("volumes", [])]
    if not any(v in (doc.get("volumes") or {}) for v in volumes):
        problems.append("compose: mongo needs a named volume for /data/db")
    if not str(redis.get("image", "")).startswith("redis:7"):
        problems.append("compose: redis must use redis:7")
    if "redis-cli" not in redis.get("healthcheck", {}).get("test", []):
        problems.append("compose: redis healthcheck must run redis-cli ping")
    for name in ("mongo", "redis"):
        for port in services[name].get("ports", []):
            if not str(port).startswith("127.0.0.1:"):
                problems.append(f"compose: {name} port {port!r} is not bound to 127.0.0.1")

    # worker: scalable, built from workers/Dockerfile, same image as the coordinator
    if "container_name" in worker or worker.get("ports"):
        problems.append("compose: worker must have no container_name and no host ports, "
                        "or `--scale worker=N` fails")
    build = worker.get("build") or {}
    if build.get("dockerfile") != "workers/Dockerfile" or (
            (COMPOSE.parent / build.get("context", "")).resolve() != REPO):
        problems.append("compose: worker must build workers/Dockerfile with the repo as context")
    if worker.get("image") != coord.get("image") or worker.get("build") != coord.get("build"):
        problems.append("compose: worker and coordinator must use the same image and build")
    problems += worker_cli_problems([str(a) for a in worker.get("command", [])],
                                    "compose worker command")
    if _seconds(worker.get("stop_grace_period", "10s")) < 10:
        problems.append("compose: worker stop_grace_period must be >= 10s")

    # environment: exactly names the code reads, URLs at the compose services
    for name, svc, known in (("worker", worker, WORKER_ENV),
                             ("coordinator", coord, COORDINATOR_ENV)):
        env = _environment(svc)
        unknown = set(env) - known
        if unknown:
            problems.append(f"compose: {name} sets {sorted(unknown)}, which nothing reads")
        if not REQUIRED <= set(env):
            problems.append(f"compose: {name} lacks {sorted(REQUIRED - set(env))}")
            continue
        mongo_url = urlsplit(env["PARZEN_MONGO_URL"])
        try:
            parse_mongo_url(env["PARZEN_MONGO_URL"])
        except ConfigError as exc:
            problems.append(f"compose: {name}: {exc}")
        if mongo_url.hostname != "mongo" or (mongo_url.port or 27017) not in _container_port(
                mongo, 27017):
            problems.append(f"compose: {name} PARZEN_MONGO_URL does not point at mongo:27017")
        broker = urlsplit(env["PARZEN_BROKER_URL"])
        if broker.scheme != "redis" or broker.hostname != "redis" or (
                broker.port or 6379) not in _container_port(redis, 6379):
            problems.append(f"compose: {name} PARZEN_BROKER_URL does not point at redis:6379")
        deps = svc.get("depends_on") or {}
        for dep in ("mongo", "redis"):
            if not isinstance(deps, dict) or (deps.get(dep) or {}).get(
                    "condition") != "service_healthy":
                problems.append(f"compose: {name} must depend on {dep} with service_healthy")
    if "worker" not in (coord.get("depends_on") or {}):
        problems.append("compose: coordinator must depend on worker")

    if not (coord.get("healthcheck") or {}).get("disable"):
        problems.append("compose: the coordinator runs the worker image, whose HEALTHCHECK "
                        "watches a worker's health file: disable it there")
    if "demo" not in (coord.get("profiles") or []):
        problems.append("compose: coordinator must be in the demo profile (as documented), "
                        "so `docker compose up` starts only the cluster")
    cmd = [str(a) for a in coord.get("command", [])]
    if cmd[:1] != ["python"] or len(cmd) < 2 or not (REPO / cmd[1]).is_file():
        problems.append(f"compose: coordinator command {cmd!r} does not run a repo script")
    return problems


def test_compose_wiring() -> None:
    problems = compose_problems(load_compose())
    assert not problems, "\n".join(problems)


def test_compose_requires_the_signing_key_with_a_clear_message() -> None:
    with pytest.raises(MissingVariable, match=r"PARZEN_SECRET: .*\.env"):
        load_compose({})
    doc = load_compose({"PARZEN_SECRET": DUMMY_SECRET, "PARZEN_CONCURRENCY": "5"})
    assert _parse_worker(doc["services"]["worker"]["command"]).concurrency == 5
    assert _environment(doc["services"]["worker"])["PARZEN_SECRET"] == DUMMY_SECRET


def test_compose_build_args_exist_in_the_dockerfile() -> None:
    args = set(load_compose()["services"]["worker"]["build"].get("args") or {})
    declared = {rest.split("=", 1)[0] for instr, rest in dockerfile() if instr == "ARG"}
    assert args <= declared


# ---- workers/Dockerfile ----------------------------------------------------------------------

def dockerfile(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        instr, _, rest = full.partition(" ")
        out.append((instr.upper(), rest.strip()))
    return out


def dockerfile_problems(instrs: list[tuple[str, str]]) -> list[str]:
    problems: list[str] = []
    froms = [rest for instr, rest in instrs if instr == "FROM"]
    if froms != ["python:3.11-slim"]:
        problems.append(f"Dockerfile: base must be python:3.11-slim, got {froms}")
    copies: dict[str, str] = {}
    for instr, rest in instrs:
        if instr == "COPY":
            parts = [p for p in rest.split() if not p.startswith("--")]
            for src in parts[:-1]:
                copies[src] = parts[-1]
                if not (REPO / src).exists():
                    problems.append(f"Dockerfile: COPY {src}: not in the repository")
    dest = copies.get("pyproject.toml", "").rstrip("/")
    runs = " && ".join(rest for instr, rest in instrs if instr == "RUN")
    if not dest or not re.search(rf"pip install (?:-\S+ )*{re.escape(dest)}/?(\s|$)", runs):
        problems.append("Dockerfile: must `pip install` the directory holding pyproject.toml")
    if copies.get("src", "").rstrip("/") != f"{dest}/src":
        problems.append("Dockerfile: src/ must be copied next to pyproject.toml")
    if "examples" not in copies:
        problems.append("Dockerfile: examples/ (the compose coordinator's script) not copied")
    users = [rest for instr, rest in instrs if instr == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("Dockerfile: must end as a non-root USER")
    if ("STOPSIGNAL", "SIGTERM") not in instrs:
        problems.append("Dockerfile: STOPSIGNAL SIGTERM missing")
    exec_form: dict[str, list[str]] = {}
    for instr in ("ENTRYPOINT", "CMD"):
        found = [rest for i, rest in instrs if i == instr]
        try:
            exec_form[instr] = json.loads(found[-1]) if found else []
        except json.JSONDecodeError:
            problems.append(f"Dockerfile: {instr} must be exec form (a JSON array)")
            exec_form[instr] = []
    argv = exec_form["ENTRYPOINT"] + exec_form["CMD"]
    if argv[:1] and Path(argv[0]).name == "tini":
        argv = argv[argv.index("--") + 1:] if "--" in argv else argv[1:]
    problems += worker_cli_problems(argv, "Dockerfile ENTRYPOINT+CMD")
    # the health check reads the file the worker keeps (ENV PARZEN_HEALTH_FILE)
    envs = dict(rest.split("=", 1) for instr, rest in instrs if instr == "ENV" and "=" in rest
                and " " not in rest.split("=", 1)[0])
    checks = [rest for instr, rest in instrs if instr == "HEALTHCHECK"]
    if not checks or "PARZEN_HEALTH_FILE" not in envs:
        problems.append("Dockerfile: HEALTHCHECK with `parzen health` on ENV PARZEN_HEALTH_FILE")
    else:
        cmd = checks[-1].split(" CMD ", 1)[-1].strip()
        try:
            check_argv = json.loads(cmd)
        except json.JSONDecodeError:
            check_argv = []
        problems += health_probe_problems([str(a) for a in check_argv],
                                          envs["PARZEN_HEALTH_FILE"], "Dockerfile HEALTHCHECK")
    return problems


def test_dockerfile_installs_parzen_and_runs_the_worker() -> None:
    problems = dockerfile_problems(dockerfile())
    assert not problems, "\n".join(problems)


# ---- deploy/kubernetes -----------------------------------------------------------------------

def k8s_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _cpu(value: Any) -> float:
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


K8S_README = K8S / "README.md"


def secret_keys_from_readme(text: str) -> dict[str, str]:
    """``kubectl create secret generic parzen-worker --from-file=...`` in ``text``: the
    Secret's keys, each with the file it is made from."""
    text = re.sub(r"\\\n\s*", " ", text)
    m = re.search(r"kubectl create secret generic parzen-worker ([^\n]*)", text)
    assert m, "no `kubectl create secret generic parzen-worker` in the README"
    keys = {}
    for token in shlex.split(m.group(1), comments=True):
        if token.startswith("--from-file="):
            spec = token.split("=", 1)[1]
            key, named, path = spec.partition("=")  # KEY=PATH, or PATH (key: its name)
            keys[key if named else Path(spec).name] = path if named else spec
    return keys


def _probe_argv(probe: Mapping[str, Any] | None) -> list[str]:
    return [str(a) for a in ((probe or {}).get("exec") or {}).get("command", [])]


def health_probe_problems(argv: list[str], health_file: str, where: str) -> list[str]:
    """``argv`` must be ``parzen health FILE [--max-age S]`` on the worker's health file."""
    if argv[:2] != ["parzen", "health"]:
        return [f"{where}: {argv!r} is not `parzen health FILE`"]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = parse_args(argv[1:])
    except SystemExit:
        return [f"{where}: {shlex.join(argv)!r} does not parse: {err.getvalue().strip()}"]
    if args.file != health_file:
        return [f"{where}: reads {args.file}, but the worker writes {health_file!r}"]
    return []


def k8s_problems(docs: list[dict[str, Any]], image: str,
                 secret_keys: Mapping[str, str]) -> list[str]:
    """Problems of the manifests ``docs``; ``secret_keys`` are the keys of the Secret the
    README makes (it is not a manifest: the key stays out of git, in a file the coordinator
    reads too)."""
    problems: list[str] = []
    by_kind: dict[tuple[str, str], dict[str, Any]] = {}
    for d in docs:
        if not {"apiVersion", "kind", "metadata"} <= set(d):
            problems.append(f"k8s: a document lacks apiVersion/kind/metadata: {d!r:.80}")
            continue
        by_kind[(d["kind"], d["metadata"]["name"])] = d
    if any(kind == "Secret" for kind, _ in by_kind):
        problems.append("k8s: no Secret manifest: the README makes it from files, so the key "
                        "is not in git and the coordinator reads the same file")

    def keys(kind: str, name: str) -> set[str] | None:
        d = by_kind.get((kind, name))
        return None if d is None else set(d.get("data") or {}) | set(d.get("stringData") or {})

    deployments = [d for (kind, _), d in by_kind.items() if kind == "Deployment"]
    if len(deployments) != 1:
        return problems + [f"k8s: expected one Deployment, found {len(deployments)}"]
    dep = deployments[0]
    spec, pod = dep["spec"], dep["spec"]["template"]["spec"]
    if not spec.get("replicas", 0) >= 1:
        problems.append("k8s: replicas must be >= 1")
    labels = dep["spec"]["template"]["metadata"].get("labels", {})
    if not spec["selector"]["matchLabels"].items() <= labels.items():
        problems.append("k8s: selector does not match the pod template's labels")
    if pod.get("terminationGracePeriodSeconds", 30) < 10:
        problems.append("k8s: terminationGracePeriodSeconds must be >= 10")
    security = pod.get("securityContext") or {}
    if not security.get("runAsNonRoot"):
        problems.append("k8s: set runAsNonRoot")
    # Secret volumes: name -> {path in the volume: the Secret's key}
    secret_files: dict[str, dict[str, str]] = {}
    for v in pod.get("volumes", []):
        secret = v.get("secret")
        if secret is None:
            continue
        if secret.get("secretName") != "parzen-worker":
            problems.append(f"k8s volume {v['name']}: Secret {secret.get('secretName')!r} is "
                            "not the README's parzen-worker")
        items = {i["path"]: i["key"] for i in secret.get("items", [])}
        for key in set(items.values()) - set(secret_keys):
            problems.append(f"k8s volume {v['name']}: key {key!r} is not one the README's "
                            f"kubectl create secret makes ({sorted(secret_keys)})")
        mode = secret.get("defaultMode", 0o644)
        if mode & 0o007:
            problems.append(f"k8s volume {v['name']}: defaultMode {mode:o} lets others read "
                            "the key")
        if not mode & 0o040 or not security.get("fsGroup"):
            problems.append(f"k8s volume {v['name']}: the non-root worker cannot read the "
                            "files: set fsGroup and a group-readable defaultMode (0440)")
        secret_files[v["name"]] = items
    for c in pod["containers"]:
        where = f"k8s container {c['name']!r}"
        if c.get("image") != image:
            problems.append(f"{where}: image {c.get('image')!r} != compose's {image!r}")
        argv = [str(a) for a in c.get("command", []) + c.get("args", [])]
        problems += worker_cli_problems(argv, where)
        res = c.get("resources") or {}
        for part in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(res.get(part) or {}):
                problems.append(f"{where}: resources.{part} needs cpu and memory")
        args = None if worker_cli_problems(argv, where) else _parse_worker(argv)
        if args is not None and "cpu" in (res.get("limits") or {}):
            if (args.concurrency or 0) > _cpu(res["limits"]["cpu"]):
                problems.append(f"{where}: --concurrency exceeds the CPU limit")
        # the files the Secret's volume provides, at their paths in this container
        mounted: dict[str, str] = {}
        for m in c.get("volumeMounts", []):
            for path, key in secret_files.get(m["name"], {}).items():
                mounted[f"{m['mountPath'].rstrip('/')}/{path}"] = key
                if not m.get("readOnly"):
                    problems.append(f"{where}: mount the Secret readOnly")
        env_names: dict[str, str] = {}
        for e in c.get("env", []):
            ref = (e.get("valueFrom") or {})
            for kind, key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                if key in ref:
                    have = keys(kind, ref[key]["name"]) if kind == "ConfigMap" \
                        else set(secret_keys)
                    if have is None or ref[key]["key"] not in have:
                        problems.append(f"{where}: {e['name']} refers to {kind} "
                                        f"{ref[key]['name']}/{ref[key]['key']}, which is not "
                                        "defined")
            env_names[e["name"]] = str(e.get("value", ""))
        for src in c.get("envFrom", []):
            if "configMapRef" in src:
                have = keys("ConfigMap", src["configMapRef"]["name"])
                if have is None:
                    problems.append(f"{where}: envFrom ConfigMap "
                                    f"{src['configMapRef']['name']} missing")
                for k in have or ():
                    env_names.setdefault(k, "")
        unknown = set(env_names) - WORKER_ENV
        if unknown:
            problems.append(f"{where}: sets {sorted(unknown)}, which the worker does not read")
        for name in (payload.SECRET_ENV, "PARZEN_MONGO_URL", "PARZEN_BROKER_URL"):
            if env_names.get(name):
                problems.append(f"{where}: {name} has a value in the manifest; it belongs in "
                                "the Secret's files")
        # the worker gets its key and its two URLs from the Secret's files
        wanted = {"the signing key": env_names.get(payload.SECRET_FILE_ENV),
                  "the MongoDB URL": args.mongo_file if args else None,
                  "the broker URL": args.broker_file if args else None}
        for what, path in wanted.items():
            if path not in mounted:
                problems.append(f"{where}: {what} must be a file of the Secret's volume, "
                                f"got {path!r} (mounted: {sorted(mounted)})")
        # probes: parzen health on the file the worker keeps
        health_file = args.health_file if args else ""
        if not health_file:
            problems.append(f"{where}: start the worker with --health-file for the probes")
        ages = {}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            pargv = _probe_argv(c.get(probe))
            problems += health_probe_problems(pargv, health_file, f"{where} {probe}")
            if (c.get(probe) or {}).get("timeoutSeconds", 1) < 2:
                problems.append(f"{where} {probe}: timeoutSeconds must be >= 2 (a Python "
                                "start on a busy node)")
            if not health_probe_problems(pargv, health_file, ""):
                ages[probe] = parse_args(pargv[1:]).max_age
        if ages.get("livenessProbe", 0) < 5 * ages.get("readinessProbe", 1e9):
            problems.append(f"{where}: the liveness probe's --max-age must be well above the "
                            "readiness probe's (a broker blip must not restart workers)")
    for (kind, name), d in by_kind.items():
        if kind == "ConfigMap":
            data = {**(d.get("data") or {})}
            if set(data) - WORKER_ENV:
                problems.append(f"k8s {kind} {name}: unknown keys {sorted(set(data) - WORKER_ENV)}")
    return problems


def test_kubernetes_manifests() -> None:
    problems = k8s_problems(k8s_docs(), load_compose()["services"]["worker"]["image"],
                            secret_keys_from_readme(K8S_README.read_text()))
    assert not problems, "\n".join(problems)


def test_the_coordinator_reads_the_key_file_the_secret_is_made_from() -> None:
    text = K8S_README.read_text()
    keys = secret_keys_from_readme(text)
    assert set(keys) == {"signing-key", "mongo-url", "broker-url"}
    # the README makes each file, then points the coordinator at the same signing key
    for path in keys.values():
        assert re.search(rf"> {re.escape(path)}\n", text), f"the README never writes {path}"
    made_in = re.search(r"mkdir -p (\S+) && cd \1", text)
    assert made_in is not None
    assert f"export {payload.SECRET_FILE_ENV}={made_in.group(1)}/{keys['signing-key']}" in text
    assert "token_hex(32)" in text  # a key long enough for payload.load_secret
    # no way to a key that exists only in the cluster
    assert "--from-literal=PARZEN_SECRET" not in text


def test_readme_says_where_mongodb_and_redis_come_from() -> None:
    text = K8S_README.read_text()
    assert "## MongoDB and Redis" in text and "port-forward" in text


# ---- schemas: the manifests and the compose file as Kubernetes and compose read them ---------

def _k8s_versions() -> list[str]:
    """The oldest and newest Kubernetes versions whose schemas kubernetes-validate ships."""
    root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    found = sorted({tuple(int(x) for x in re.findall(r"\d+", p.name)[:3])
                    for p in root.glob("v*-local-strict")})
    assert found, f"no schemas in {root}"
    return [".".join(map(str, v)) for v in (found[0], found[-1])]


def k8s_schema_problems(docs: list[dict[str, Any]]) -> list[str]:
    problems = []
    for version in _k8s_versions():
        for d in docs:
            try:
                kubernetes_validate.validate(d, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(str(p) for p in exc.path)
                problems.append(f"k8s {d.get('kind')} {d.get('metadata', {}).get('name')} "
                                f"(Kubernetes {version}): {where}: {exc.message}")
    return problems


def test_kubernetes_manifests_match_the_kubernetes_schemas() -> None:
    problems = k8s_schema_problems(k8s_docs())
    assert not problems, "\n".join(problems)
    # the schemas catch what the wiring checks above do not look at
    for mutate, complaint in [
            (lambda c: c["readinessProbe"]["exec"].update(comand=["parzen"]), "comand"),
            (lambda c: c["resources"]["limits"].update(cpu={"cores": 2}), "cpu"),
            (lambda c: c.update(imagePullPolicy=["Always"]), "imagePullPolicy")]:
        docs = copy.deepcopy(k8s_docs())
        mutate(next(d for d in docs if d["kind"] == "Deployment")[
            "spec"]["template"]["spec"]["containers"][0])
        problems = k8s_schema_problems(docs)
        assert any(complaint in p for p in problems), (complaint, problems)


def compose_schema_problems(doc: Mapping[str, Any]) -> list[str]:
    # check-jsonschema ships the compose spec's schema (the `test` extra, Python >= 3.11)
    builtin = pytest.importorskip("check_jsonschema.builtin_schemas")
    schema = builtin.get_builtin_schema("vendor.compose-spec")
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"compose: {'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(doc)]


def test_compose_file_matches_the_compose_spec() -> None:
    assert compose_schema_problems(load_compose()) == []
    doc = copy.deepcopy(load_compose())
    doc["services"]["worker"]["stop_grace_periode"] = "30s"
    doc["services"]["redis"]["healthcheck"]["test"] = {"cmd": "redis-cli ping"}
    problems = compose_schema_problems(doc)
    assert any("stop_grace_periode" in p for p in problems), problems
    assert any("healthcheck.test" in p for p in problems), problems


# ---- deploy/systemd, deploy/slurm, env examples ---------------------------------------------

def unit_settings(path: Path = UNIT) -> dict[str, str]:
    """``Section.Key -> value`` (the last one wins, as systemd does for these keys)."""
    out: dict[str, str] = {}
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out[f"{section}.{key.strip()}"] = value.strip()
    return out


def unit_problems(s: Mapping[str, str]) -> list[str]:
    problems: list[str] = []
    argv = shlex.split(s.get("Service.ExecStart", "").lstrip("-@+!:"))
    if argv[:1] != ["/opt/parzen/venv/bin/parzen"]:
        problems.append(f"systemd: ExecStart must run /opt/parzen/venv/bin/parzen: {argv!r}")
    problems += worker_cli_problems(argv, "systemd ExecStart")
    expected = {"Service.KillSignal": "SIGTERM", "Service.Restart": "on-failure",
                "Service.KillMode": "mixed"}
    for key, value in expected.items():
        if s.get(key) != value:
            problems.append(f"systemd: {key} must be {value}, got {s.get(key)!r}")
    if not s.get("Service.EnvironmentFile"):
        problems.append("systemd: EnvironmentFile= missing")
    if s.get("Service.User", "root") in ("root", "0"):
        problems.append("systemd: User= must be a non-root user")
    if _seconds(s.get("Service.TimeoutStopSec", "0")) < 10:
        problems.append("systemd: TimeoutStopSec must be >= 10")
    return problems


def test_systemd_unit() -> None:
    problems = unit_problems(unit_settings())
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", ENV_EXAMPLES, ids=lambda p: str(p.relative_to(REPO)))
def test_env_examples_use_the_names_the_worker_reads(path: Path) -> None:
    keys = _env_file_keys(path)
    assert keys <= WORKER_ENV, sorted(keys - WORKER_ENV)
    assert REQUIRED <= keys
    assert WORKER_ENV <= keys, f"undocumented in {path.name}: {sorted(WORKER_ENV - keys)}"


def run_sbatch(tmp: Path, **env: str) -> tuple[list[str], dict[str, str]]:
    """Run the sbatch script in bash as Slurm would start it, with a stub ``srun`` that
    prints what it was given instead of starting the worker: the worker's command line (the
    venv's ``parzen`` onwards) and the PARZEN_* variables it would see."""
    venv_bin = tmp / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "parzen").write_text("#!/bin/sh\nexit 0\n")
    stubs = tmp / "stubs"
    stubs.mkdir()
    (stubs / "srun").write_text('#!/bin/bash\nprintf "arg %s\\n" "$@"\n'
                                'env | grep "^PARZEN_" | sed "s/^/env /"\n')
    for f in (venv_bin / "parzen", stubs / "srun"):
        f.chmod(0o755)
    env_file = tmp / "worker.env"
    env_file.write_text("# a comment\nPARZEN_MONGO_URL=mongodb://u:p@db:27017/x?a=1&b=2\n"
                        "PARZEN_BROKER_URL=redis://q:6379/0\nPARZEN_SECRET_FILE=/k\n")
    run_env = {"PATH": f"{stubs}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp),
               "WORKER_ENV_FILE": str(env_file), "WORKER_VENV": str(tmp / "venv"),
               "SLURM_CPUS_PER_TASK": "7", "SLURM_ARRAY_JOB_ID": "1",
               "SLURM_ARRAY_TASK_ID": "2", **env}
    done = subprocess.run(["bash", str(SBATCH)], env=run_env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    args = [line[4:] for line in lines if line.startswith("arg ")]
    start = next(i for i, a in enumerate(args) if Path(a).name == "parzen")
    seen = dict(line[4:].split("=", 1) for line in lines if line.startswith("env "))
    return ["parzen", *args[start + 1:]], seen


def test_sbatch_script(tmp_path: Path) -> None:
    text = SBATCH.read_text()
    directives = dict(re.findall(r"^#SBATCH\s+--([a-z-]+)=(\S+)", text, re.M))
    assert re.fullmatch(r"\d+-\d+(%\d+)?", directives.get("array", "")), directives
    assert directives.get("signal", "").split("@")[0].split(":")[-1] in ("TERM", "15")
    assert "cpus-per-task" in directives
    argv, env = run_sbatch(tmp_path)
    assert not worker_cli_problems(argv, "sbatch")
    args = _parse_worker(argv)
    assert args.concurrency == 7  # follows --cpus-per-task
    assert args.name == "slurm-1_2"
    # the env file is read literally ('&' and '?' in the URL), and reaches the worker
    assert env["PARZEN_MONGO_URL"] == "mongodb://u:p@db:27017/x?a=1&b=2"
    assert env["PARZEN_SECRET_FILE"] == "/k"
    assert re.search(r"\bsrun\b", text) and "WORKER_ENV_FILE" in text


@pytest.mark.parametrize(("env", "concurrency"), [
    ({"SLURM_GPUS_ON_NODE": "1"}, 1),  # --gres=gpu:1: one objective on the GPU
    ({"SLURM_GPUS_ON_NODE": "0"}, 7),
    ({"SLURM_GPUS_ON_NODE": "1", "WORKER_CONCURRENCY": "2"}, 2),
    ({"WORKER_CONCURRENCY": "3"}, 3),
])
def test_sbatch_runs_one_trial_per_task_with_a_gpu(tmp_path: Path, env: dict[str, str],
                                                   concurrency: int) -> None:
    argv, _ = run_sbatch(tmp_path, **env)
    assert _parse_worker(argv).concurrency == concurrency


def test_the_sbatch_gres_line_says_what_it_does_to_concurrency() -> None:
    lines = SBATCH.read_text().splitlines()
    gres = next(i for i, line in enumerate(lines) if "--gres=gpu" in line
                and line.startswith("##SBATCH"))
    comment = " ".join(lines[max(0, gres - 3):gres])
    assert "--concurrency 1" in comment, comment


# ---- documentation ---------------------------------------------------------------------------

def test_deploy_files_name_only_variables_the_code_reads() -> None:
    known = WORKER_ENV | COORDINATOR_ENV
    for path in DEPLOY_FILES:
        unknown = set(re.findall(r"\bPARZEN_[A-Z0-9_]*[A-Z0-9]", path.read_text())) - known
        assert not unknown, f"{path.relative_to(REPO)} names {sorted(unknown)}"


# Where `parzen worker` command lines are shown to people: none may put a URL on it.
WORKER_DOCS = [REPO / "README.md", REPO / "SECURITY.md", REPO / "docs" / "cli.md",
               *(p for p in DEPLOY_FILES if p.suffix in (".md", ".py", ".sbatch", ".service"))]
_URL_OPTION = re.compile(r"parzen\"?\s+worker\b[^\n]*?\s(--mongo|--broker)[\s=]+\S*://")


def docs_url_problems(text: str, where: str) -> list[str]:
    """``parzen worker`` lines of ``text`` that pass a URL as ``--mongo``/``--broker``."""
    text = re.sub(r"\\\n\s*", " ", text)  # join continued shell lines
    return [f"{where}: {m.group(1)} URL on a `parzen worker` command line: {m.group(0)!r}"
            for m in _URL_OPTION.finditer(text)]


def test_worker_examples_keep_urls_off_the_command_line() -> None:
    problems = [p for path in WORKER_DOCS
                for p in docs_url_problems(path.read_text(), str(path.relative_to(REPO)))]
    worker_parser = argparse.ArgumentParser()
    configure("worker")(worker_parser)
    epilog = worker_parser.epilog or ""
    problems += docs_url_problems(epilog, "parzen worker --help")
    assert "--mongo-file" in epilog and "--broker-file" in epilog
    assert not problems, "\n".join(problems)
    assert docs_url_problems("  parzen worker --concurrency 2 \\\n    --mongo mongodb://db/x",
                             "example")  # the check catches one


def test_worker_readme_documents_every_variable_and_the_image() -> None:
    readme = (REPO / "workers" / "README.md").read_text()
    assert {"PARZEN_MONGO_URL", "PARZEN_BROKER_URL", "PARZEN_SECRET"} <= WORKER_ENV  # extractor
    assert not {n for n in WORKER_ENV if f"`{n}`" not in readme}
    image = load_compose()["services"]["worker"]["image"]
    for doc in (readme, (K8S / "README.md").read_text()):
        assert image in doc


# ---- the checks catch mistakes ---------------------------------------------------------------

def _mutate_compose(how: str) -> dict[str, Any]:
    doc = copy.deepcopy(load_compose())
    worker = doc["services"]["worker"]
    env = worker["environment"] = dict(worker["environment"])
    if how == "misspelled env":
        env["PARZEN_BROKER_URI"] = env.pop("PARZEN_BROKER_URL")
    elif how == "wrong host":
        env["PARZEN_MONGO_URL"] = "mongodb://mongodb:27017/parzen"
    elif how == "container_name":
        worker["container_name"] = "parzen-worker"
    elif how == "host port":
        worker["ports"] = ["8080:8080"]
    elif how == "bad flag":
        worker["command"] = ["parzen", "worker", "--concurency", "2"]
    elif how == "url on the command line":
        worker["command"] = ["parzen", "worker", "--broker", "redis://:pw@redis:6379/0"]
    elif how == "started, not healthy":
        worker["depends_on"] = {"mongo": {"condition": "service_started"},
                                "redis": {"condition": "service_healthy"}}
    elif how == "public redis":
        doc["services"]["redis"]["ports"] = ["6379:6379"]
    return doc


@pytest.mark.parametrize(("how", "complaint"), [
    ("misspelled env", "['PARZEN_BROKER_URI'], which nothing reads"),
    ("wrong host", "does not point at mongo:27017"),
    ("container_name", "no container_name"),
    ("host port", "no host ports"),
    ("bad flag", "unrecognized arguments: --concurency"),
    ("url on the command line", "--broker puts a URL on the command line"),
    ("started, not healthy", "depend on mongo with service_healthy"),
    ("public redis", "not bound to 127.0.0.1"),
])
def test_compose_checks_catch(how: str, complaint: str) -> None:
    problems = compose_problems(_mutate_compose(how))
    assert any(complaint in p for p in problems), problems


def _mutate_k8s(how: str) -> list[dict[str, Any]]:
    docs = copy.deepcopy(k8s_docs())
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    if how == "unknown secret key":
        pod["volumes"][0]["secret"]["items"][0]["key"] = "PARZEN_SECRET"
    elif how == "key as a value":
        container["env"].append({"name": "PARZEN_SECRET", "value": "0" * 64})
    elif how == "url file not mounted":
        args = container["args"]
        args[args.index("--mongo-file") + 1] = "/etc/parzen/mongo-url"
    elif how == "probe on another file":
        container["livenessProbe"]["exec"]["command"][2] = "/tmp/other"
    elif how == "no fsGroup":
        del pod["securityContext"]["fsGroup"]
    elif how == "secret manifest":
        docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "parzen-worker"},
                     "stringData": {"signing-key": "CHANGE-ME"}})
    elif how == "liveness as strict as readiness":
        container["livenessProbe"]["exec"]["command"][-1] = "30"
    return docs


@pytest.mark.parametrize(("how", "complaint"), [
    ("unknown secret key", "is not one the README's kubectl create secret makes"),
    ("key as a value", "PARZEN_SECRET has a value in the manifest"),
    ("url file not mounted", "the MongoDB URL must be a file of the Secret's volume"),
    ("probe on another file", "reads /tmp/other, but the worker writes"),
    ("no fsGroup", "the non-root worker cannot read the files"),
    ("secret manifest", "no Secret manifest"),
    ("liveness as strict as readiness", "must be well above"),
])
def test_k8s_checks_catch(how: str, complaint: str) -> None:
    image = load_compose()["services"]["worker"]["image"]
    problems = k8s_problems(_mutate_k8s(how), image,
                            secret_keys_from_readme(K8S_README.read_text()))
    assert any(complaint in p for p in problems), problems


def test_k8s_and_unit_checks_catch() -> None:
    keys = secret_keys_from_readme(K8S_README.read_text())
    assert any("image" in p for p in k8s_problems(k8s_docs(), "other/image:1", keys))
    s = dict(unit_settings())
    s["Service.ExecStart"] = "/opt/parzen/venv/bin/parzen worker --mongo"
    assert any("does not parse" in p for p in unit_problems(s))
    bad_cmd = [(i, '["parzen", "wroker"]' if i == "CMD" else r) for i, r in dockerfile()]
    assert any("not a `parzen worker" in p for p in dockerfile_problems(bad_cmd))
    no_check = [(i, r) for i, r in dockerfile() if i != "HEALTHCHECK"]
    assert any("HEALTHCHECK" in p for p in dockerfile_problems(no_check))
    other = [(i, r.replace('"/tmp/parzen-health"', '"/tmp/x"') if i == "HEALTHCHECK" else r)
             for i, r in dockerfile()]
    assert any("reads /tmp/x" in p for p in dockerfile_problems(other))
