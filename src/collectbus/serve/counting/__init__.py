"""Counters that count each stored row once and never go down, even across restarts.

:mod:`~collectbus.serve.counting.tally` counts a table's rows past a
watermark into per-group counts and duration histograms, reading what
:mod:`collectbus.pendingids` (the watermark the aggregates use too) says is
new, so that a row committed late is neither missed nor counted twice;
:mod:`~collectbus.serve.counting.aggtrack` turns the successive states of the
aggregates (which can shrink) into counters and histograms that only grow;
:mod:`~collectbus.serve.counting.saved` keeps both in the store, so that a
restarted server continues them. The metric sources of
:mod:`collectbus.serve.metrics` export what they count.
"""
