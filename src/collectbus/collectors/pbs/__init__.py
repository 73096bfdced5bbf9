"""PBS Professional / OpenPBS: jobs, nodes, queues and server through ``-F json``.

See ``README.md`` in this folder for the commands run, the configuration and
what each collection records.
"""
