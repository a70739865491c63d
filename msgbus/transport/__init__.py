"""The transport layer: sockets, TLS, heart-beats and failover over the sans-IO codec.

Import from the submodules (``msgbus.transport.connection``, ``.failover``, ``.url``,
``.settings``, ``.backoff``, ``.reconnect``).
"""
