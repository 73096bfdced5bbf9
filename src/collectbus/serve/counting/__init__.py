"""Counters that count each stored row once and never go down, even across restarts.

:mod:`~collectbus.serve.counting.watermark` says how far an id-ordered table
can be read without missing a row committed late;
:mod:`~collectbus.serve.counting.tally` counts a table's rows past that
watermark into per-group counts and duration histograms;
:mod:`~collectbus.serve.counting.aggtrack` turns the successive states of the
aggregates (which can shrink) into counters and histograms that only grow;
:mod:`~collectbus.serve.counting.saved` keeps both in the store, so that a
restarted server continues them. The metric sources of
:mod:`collectbus.serve.metrics` export what they count.
"""
