"""SQL over a result store: one DuckDB view per table of its cells.

A sweep's store has the views ``steps`` and ``episodes``; a phase diagram's, ``phase``;
each kind declares its tables (:mod:`~swalab.experiments.kinds`). Only committed cells
(``cells/<key>/``) are read, so a query during a run, or after a crash, sees whole cells
only. A store with no finished cell yet gives empty views with the full schema, so the
same query works before and after.

A query only reads, and only the store: the connection can reach no file outside the
store's ``cells/`` (DuckDB's ``enable_external_access`` off, ``allowed_directories`` the
cells), installs and loads no extension, and its settings are locked; statements other
than ``SELECT`` (and ``EXPLAIN``) are refused before they run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from swalab.experiments.kinds import get_kind
from swalab.experiments.store import ResultStore


def connect(root: str | Path) -> Any:
    """An in-memory DuckDB connection with one view per table of the store's kind.

    Raises:
        FileNotFoundError: ``root`` holds no manifest (not a result directory).
    """
    import duckdb

    store = ResultStore(root)
    if store.manifest() is None:
        raise FileNotFoundError(f"{root}: not a swalab result directory (no manifest.json)")
    con = duckdb.connect()
    for name, schema in get_kind(store.kind()).tables.items():
        files = [str(p) for p in store.table_files(name)]
        if files:
            listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            # union_by_name: cells stored by an older swalab lack newer columns (read as NULL)
            con.execute(
                f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{listing}], union_by_name=true)"
            )
        elif schema is not None:
            empty = pa.Table.from_pylist([], schema=schema)
            con.register(f"_{name}_empty", empty)
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM _{name}_empty")
    _sandbox(con, store.cells_dir)
    return con


def _sandbox(con: Any, cells: Path) -> None:
    """Let the connection read the store's cells and nothing else, for good."""
    quoted = "'" + str(cells.resolve()).replace("'", "''") + "/'"
    con.execute(f"SET allowed_directories=[{quoted}]")
    for setting in (
        "enable_external_access=false",
        "autoinstall_known_extensions=false",
        "autoload_known_extensions=false",
        "lock_configuration=true",
    ):
        con.execute(f"SET {setting}")


#: Statements a query may hold: it reads.
READ_ONLY = ("SELECT", "EXPLAIN")


def query(root: str | Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run ``sql`` over the store; return column names and rows.

    Raises:
        ValueError: The SQL is invalid, refers to something that does not exist, writes,
            or reaches outside the store.
    """
    import duckdb

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise ValueError(f"query failed: {str(exc).splitlines()[0]}") from None
    for statement in statements:
        if statement.type.name not in READ_ONLY:
            verb = (statement.query.split() or [statement.type.name])[0].upper()
            raise ValueError(
                f"query refused: {verb} is not a read; a query only reads the store (SELECT …)"
            )
    con = connect(root)
    try:
        cur = con.execute(sql)
    except duckdb.Error as exc:
        raise ValueError(f"query failed: {str(exc).splitlines()[0]}") from None
    if cur.description is None:
        return [], []
    return [d[0] for d in cur.description], cur.fetchall()
