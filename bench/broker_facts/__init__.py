"""Broker facts: measurements of the embedded Tansu broker with confluent-kafka clients.

Run it as `.venv/bin/python -m bench.broker_facts --help` (see __main__.py)."""
