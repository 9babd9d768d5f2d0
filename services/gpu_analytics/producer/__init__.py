"""The producer service: GPU telemetry (NVML or a synthetic fleet) and token usage into Kafka.

service.py         run_producer(): wiring, the wait for Kafka, send loop, SIGTERM flush
sources.py         which source runs (auto | nvml | synthetic) and the event type they share
nvml.py            real GPUs through nvidia-ml-py, probing each call once per GPU
synthetic.py       a seedable fleet of real GPU models serving LLMs
schedule.py        PRODUCER_RATE on an absolute schedule (no drift)
publisher.py       batches per topic-partition, handed to the idempotent producer
aiokafka_fixes.py  fast lz4, metadata-refresh backoff, de-duplicated aiokafka logs
metrics.py         Prometheus counters and the :9100 /metrics + /healthz server
ids.py             event ids (UUID4)
testing.py         the fake NVML and Kafka reads the tests use (not imported by the service)
"""
