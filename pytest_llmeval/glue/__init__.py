"""The pytest glue: options and ini keys, the eval session (collection, fixtures, the
makereport wrapper, gate reports, terminal summary) and xdist scheduling.

The only layer (with plugin.py and hookspecs.py) that imports pytest; it may import every
other layer, and no other layer imports it.
"""
