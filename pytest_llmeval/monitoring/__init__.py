"""Production-side monitoring: run history and quality trends (:mod:`.history`, :mod:`.trends`),
shadow / blue-green comparison of logged traffic (:mod:`.shadow`), cost from request logs
(:mod:`.cost`), and the log reader they share (:mod:`.logs`).

Imports neither pytest nor the glue; SQLAlchemy, Alembic, pyarrow and matplotlib are
imported inside the functions that use them (extras ``history``, ``parquet``, ``plot``).
"""
