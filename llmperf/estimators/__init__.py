"""Estimators: parameters, FLOPs/bytes per op, memory, latency, throughput and cost."""
