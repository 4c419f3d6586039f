"""SQL over a result store: DuckDB views ``steps`` and ``episodes`` over the cell files.

Only committed cells (``cells/<key>/``) are read, so a query during a run, or after a
crash, sees whole cells only. A store with no finished cell yet gives empty views with the
full schema, so the same query works before and after.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from swalab.experiments.store import EPISODE_SCHEMA, STEP_SCHEMA, ResultStore


def connect(root: str | Path) -> Any:
    """An in-memory DuckDB connection with the views ``steps`` and ``episodes``.

    Raises:
        FileNotFoundError: ``root`` holds no manifest (not a result directory).
    """
    import duckdb

    store = ResultStore(root)
    if store.manifest() is None:
        raise FileNotFoundError(f"{root}: not a swalab result directory (no manifest.json)")
    con = duckdb.connect()
    for name, schema in (("steps", STEP_SCHEMA), ("episodes", EPISODE_SCHEMA)):
        files = sorted(str(p) for p in store.cells_dir.glob(f"*/{name}.parquet"))
        if files:
            listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            # union_by_name: cells stored by an older swalab lack newer columns (read as NULL)
            con.execute(
                f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{listing}], union_by_name=true)"
            )
        else:
            empty = pa.Table.from_pylist([], schema=schema)
            con.register(f"_{name}_empty", empty)
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM _{name}_empty")
    return con


def query(root: str | Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run ``sql`` over the store; return column names and rows.

    Raises:
        ValueError: The SQL is invalid or refers to something that does not exist.
    """
    import duckdb

    con = connect(root)
    try:
        cur = con.execute(sql)
    except duckdb.Error as exc:
        raise ValueError(f"query failed: {str(exc).splitlines()[0]}") from None
    if cur.description is None:
        return [], []
    return [d[0] for d in cur.description], cur.fetchall()
