"""Kafka for both services: the idempotent producer they share, built, started and replaced one
way (producer.py), and the aiokafka adjustments it runs with (fixes.py)."""
