"""Helpers for the hostile-input tests (poison, chaos): every worker of the system, the observer included,
as real processes with a /metrics port each; the input topics each one reads, from the System; metrics
scraped; how far each consumer group has committed."""

from __future__ import annotations

import importlib
import socket
import threading
import urllib.request
from collections import Counter
from dataclasses import dataclass

from confluent_kafka import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from opengym_streams.component import Component
from opengym_streams.demo.supervisor import Supervisor, group_id
from opengym_streams.kafka import consumer
from opengym_streams.system import System, load
from opengym_streams.topic import Topic, topic_name


def components(system: System | None = None) -> dict[str, Component]:
    """Every component of the system (the observer included), built as its worker builds it."""
    system = system or load()
    return {spec.name: importlib.import_module(spec.module).build() for spec in system.components}


def input_topics(built: dict[str, Component]) -> dict[str, dict[str, Topic]]:
    """Contract name of every topic some worker reads -> {component: topic}: who reads what."""
    readers: dict[str, dict[str, Topic]] = {}
    for name, component in built.items():
        for agent in component.agents:
            for topic in agent.reads:
                readers.setdefault(topic.name, {})[name] = topic
    return readers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Workers:
    supervisor: Supervisor
    metrics_ports: dict[str, int]

    def metrics(self, component: str) -> dict[tuple[str, tuple], float]:
        """(sample name, sorted labels) -> value from the worker's /metrics."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_ports[component]}/metrics", timeout=5) as r:
            text = r.read().decode()
        found = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return found

    def counter(self, component: str, name: str, **labels: str) -> Counter:
        """Samples of ``name`` whose labels include ``labels``, by their full label set."""
        out = Counter()
        for (sample, have), value in self.metrics(component).items():
            if sample == name and all(dict(have).get(k) == v for k, v in labels.items()):
                out[have] += value
        return out


def start_every_worker(log_dir, prefix: str, env: dict[str, str], timeout: float = 240.0,
                       system: System | None = None) -> Workers:
    """Every component of the system, the observer too, each with a free metrics port (the observer's
    UI off: other people's observers may hold 6108)."""
    system = system or load()
    names = tuple(spec.name for spec in system.components)
    ports = {name: free_port() for name in names}
    per = {name: {"OPENGYM_METRICS_PORT": str(port)} for name, port in ports.items()}
    if system.observer is not None:
        per[system.observer.name]["OPENGYM_UI_PORT"] = "0"
    supervisor = Supervisor(log_dir, names, env={**env, "OPENGYM_TOPIC_PREFIX": prefix}, env_per_component=per)
    try:
        supervisor.start(timeout)
    except Exception:
        supervisor.stop()
        raise
    return Workers(supervisor, ports)


def committed(component: str, partitions: set[tuple[str, int]], prefix: str) -> dict[tuple[str, int], int]:
    """The component's consumer group's committed offset on each (runtime topic name, partition)."""
    client = consumer(group_id(component, prefix))
    try:
        result = client.committed([TopicPartition(t, p) for t, p in sorted(partitions)], timeout=10)
        return {(tp.topic, tp.partition): tp.offset for tp in result}
    finally:
        client.close()


def runtime_name(topic: Topic) -> str:
    return topic_name(topic)


class FirstBatches:
    """Polls workers' /metrics until each one watched ends a batch after the moment it is watched from
    (``watch(component, at)``, wall clock): ``seconds()`` is that batch's end minus ``at``. What the chaos
    and broker-restart tests report as recovery."""

    def __init__(self, workers: Workers):
        self.workers = workers
        self.since: dict[str, float] = {}
        self.first: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def watch(self, component: str, at: float) -> None:
        self.since[component] = at

    def _run(self) -> None:
        while not self._stop.is_set():
            for component, at in list(self.since.items()):
                if component in self.first:
                    continue
                try:
                    found = self.workers.counter(component, "opengym_last_event_timestamp_seconds")
                except OSError:
                    continue  # not serving yet
                if found and max(found.values()) > at:
                    self.first[component] = max(found.values())
            self._stop.wait(0.2)

    def seconds(self) -> dict[str, float | None]:
        return {c: (self.first[c] - at if c in self.first else None) for c, at in self.since.items()}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)

