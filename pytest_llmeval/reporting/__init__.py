"""The outputs of a run: the JSON report and its schema, the Markdown summary, the
terminal summary lines and the merge of shard reports.

Reads suite outcomes from the core and verdicts from the gate; never imports pytest or
the glue.
"""
