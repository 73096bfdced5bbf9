"""Collectors: the sources of the bus. See :mod:`collectbus.collectors.base`."""
