"""Reading tens of thousands of rows for an export: as the driver gives them (plain tuples), a batch at a
time from a server-side cursor on PostgreSQL. SQLAlchemy's result rows cost half of such a read (20,000
extensions), seconds for a million call legs."""

from .ext import db


def stream_rows(query, batch: int, name: str, filtered: bool = False):
    """The query's rows as plain tuples, `batch` at a time from the database. On the session's own connection:
    a page that reads while it holds one must not need a second (a pool of them runs dry when many pages
    render at once). `filtered`: the query matches a part of its table (see below)."""
    conn = db.session.connection()
    if conn.dialect.name != "postgresql":
        # Read at once: an open SQLite cursor holds its read lock, and writers would wait out a slow download.
        yield from conn.execute(query).tuples().all()
        return
    # Sorting a million call legs fits in memory with this instead of spilling to disk (this transaction only).
    conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
    if filtered:
        # The planner plans a cursor for its first rows: the index in the call's order, read from end to end
        # to find a day's calls (a second of the database's time for today's 30,000), where matching them
        # first and sorting those takes 0.3 s. Unfiltered, reading that index whole is the plan.
        conn.exec_driver_sql("SET LOCAL cursor_tuple_fraction = 1")
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    cursor = conn.connection.driver_connection.cursor(name=f"{name}_{id(query):x}")
    try:
        cursor.itersize = batch
        cursor.execute(str(compiled), compiled.params)
        while rows := cursor.fetchmany(batch):
            yield from rows
    finally:
        cursor.close()
