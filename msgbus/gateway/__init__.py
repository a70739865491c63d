"""``msgbus gateway``: an ARGO AMS-compatible REST gateway in front of the brokers
(``service``: topics, subscriptions, publish, pull, acknowledge over STOMP; ``app``:
the HTTP API; ``authn``: X.509 logins). Needs the ``gateway`` extra."""
