"""The settings of the plain confluent-kafka clients (streams/kafka.py) that delivery depends on."""

import opengym_streams.kafka


def captured_producer_config(monkeypatch, **overrides) -> dict:
    seen = {}
    monkeypatch.setattr(opengym_streams.kafka, "Producer", lambda config: seen.update(config) or object())
    opengym_streams.kafka.producer(**overrides)
    return seen


def test_the_producer_is_idempotent_with_one_request_in_flight(monkeypatch):
    """With two requests in flight, librdkafka reports an earlier refused request delivered when a later
    one succeeds; a broker without state for the producer on a new partition stores the later one."""
    config = captured_producer_config(monkeypatch)
    assert config["enable.idempotence"] is True and config["acks"] == "all"
    assert config["max.in.flight.requests.per.connection"] == 1


def test_callers_keep_their_own_producer_overrides(monkeypatch):
    config = captured_producer_config(monkeypatch, **{"linger.ms": 20})
    assert config["linger.ms"] == 20 and config["max.in.flight.requests.per.connection"] == 1
