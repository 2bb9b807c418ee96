"""The routing configuration view on the real broker: the newest valid document on pay.config wins,
invalid ones are kept out and reported, and listeners hear each change once."""
from __future__ import annotations

import dataclasses
import uuid

import yaml

from infra import kafka, topics
from infra.settings import REPO_ROOT, Settings
from paycenter.supervisor import wait_for
from processors.routing.config_doc import parse_document
from streams.views.config import ConfigView


def test_config_view_newest_valid_document_wins_and_invalid_ones_are_kept_out(services: Settings):
    """ConfigView alone on the real broker, on a topic of its own."""
    settings = dataclasses.replace(services, topic_prefix=f"cv{uuid.uuid4().hex[:6]}.")
    topics.provision(settings, specs={"pay.config": topics.get("pay.config")})
    demo = (REPO_ROOT / "infra" / "routing.demo.yaml").read_text()
    fallback = parse_document(demo, "file:demo")
    empty = ConfigView(settings, fallback)
    assert empty.load_initial(timeout_s=10) is fallback  # nothing published: the file
    empty.stop()

    data = yaml.safe_load(demo)
    del data["channels"]["gamma"]
    smaller = yaml.safe_dump(data)
    p = kafka.producer(settings)
    topic = settings.topic("pay.config")
    for value in (demo, "channels: {}", smaller, None, "- not a config"):
        p.produce(topic, key=b"routing", value=None if value is None else value.encode())
    p.produce(topic, key=b"other", value=b"ignored: other documents may share the topic")
    p.flush(10)
    view = ConfigView(settings, fallback)
    try:
        doc = view.load_initial(timeout_s=10)
        assert doc.digest == parse_document(smaller, "x").digest and doc.source == f"{topic}@2"
        assert [r["source"] for r in view.rejected] == [f"{topic}@1", f"{topic}@4"]
        seen = []
        view.listen(seen.append)
        view.start()
        p.produce(topic, key=b"routing", value=demo.encode())
        p.produce(topic, key=b"routing", value=demo.encode())  # the same configuration again: no second swap
        p.produce(topic, key=b"routing", value=b"business_lines: {}")
        p.flush(10)
        wait_for(lambda: len(view.rejected) == 3, 20, "the third invalid document")
        assert [d.digest for d in seen] == [fallback.digest] and view.current.digest == fallback.digest
    finally:
        view.stop()
