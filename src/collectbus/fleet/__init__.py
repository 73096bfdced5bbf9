"""A fleet: agents publish their collections to NATS JetStream, ``collectbus
ingest`` writes them into one store.

- :mod:`~collectbus.fleet.envelope`: one collection as one message, its
  subject (``<prefix>.<cluster>.<source>.<host>``), its id and its versioned
  MessagePack payload, and back;
- :mod:`~collectbus.fleet.connect`: the connection options of ``[sink.nats]``
  (credentials and TLS from files), the stream;
- :mod:`~collectbus.fleet.publisher`: the agent's bus subscriber, with its
  bounded buffer while NATS cannot be reached;
- :mod:`~collectbus.fleet.ingest`: the durable pull consumer that writes
  batches into the store and acknowledges them once committed.

nats-py is asyncio; each of these runs its client in one event loop
(the publisher in a thread of its own), and imports it only when it starts.
See docs/architecture.md, "A fleet".
"""
