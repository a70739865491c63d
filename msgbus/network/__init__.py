"""Broker networks: topology model, ActiveMQ configuration and local broker processes."""
