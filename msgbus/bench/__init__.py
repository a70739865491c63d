"""Benchmark workloads: raw-socket STOMP baseline clients and broker comparisons."""
