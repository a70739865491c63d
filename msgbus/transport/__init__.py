"""The transport layer: sockets, TLS, heart-beats and failover over the sans-IO codec.

Import from the submodules (``msgbus.transport.connection``, ``.failover``, ``.url``,
``.backoff``): ``msgbus.config`` needs ``url`` while ``connection`` needs the config,
so this package root stays empty to keep that import order free of cycles.
"""
