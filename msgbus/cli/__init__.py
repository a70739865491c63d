"""The ``msgbus`` command line: the top layer, over publish / consume / store / broker."""
