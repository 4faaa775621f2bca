"""Kafka adapters: the embedded broker, the outbound relay, the Faust worker and the public envelopes."""
