"""The process collector (``processes``): the top N processes by CPU % and by RSS.

See ``collector.py`` for what it reads and when, ``parse.py`` for the files'
formats, and this folder's README.md for its configuration.
"""
