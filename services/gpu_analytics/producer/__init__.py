"""The producer service: GPU telemetry (NVML or a synthetic fleet) and token usage into Kafka.

service.py         run_producer(): wiring, the wait for Kafka, send loop, SIGTERM flush
sources.py         which source runs (auto | nvml | synthetic) and the event type they share
nvml.py            real GPUs through nvidia-ml-py, probing each call once per GPU
synthetic.py       a seedable fleet of real GPU models serving LLMs
schedule.py        PRODUCER_RATE on an absolute schedule (no drift)
publisher.py       BatchPublisher: batches per topic-partition, handed to the idempotent
                   producer (gpu_analytics.kafka builds, starts and replaces it)
metrics.py         Prometheus counters and the :9100 /metrics + /healthz server
ids.py             event ids (UUID4)
podresources/      which pod holds each GPU (the kubelet's PodResources API)
otlp_tokens.py     token usage as OpenTelemetry GenAI spans (PRODUCER_TOKEN_TRANSPORT=otlp)
"""
