"""The local backing services: an Apache Kafka broker and a MongoDB-wire server on 127.0.0.1.

Used by `gpu-analytics stack ...`, by `make dev` and by the test fixtures, so a laptop, CI and
every integration test run against the same real processes (`stack.stack.LocalStack`).

Nothing is imported here, so `stack.paths` and `stack.process`, which every tool uses, load
without the broker's and the database's client libraries.
"""
