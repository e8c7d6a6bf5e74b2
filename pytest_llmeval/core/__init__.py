"""The run core: datasets, the suite plan a marker makes, the concurrent runner that calls
the app, the per-case recorder, and the collation of case results into suite outcomes.

Imports the gate, scorers, providers and prompts; never pytest, the glue or the outputs.
"""
