"""The errors a metadata operation raises when the database (or the disk under it) fails for a
moment: what background loops catch, log and retry instead of dying."""

from __future__ import annotations

import sqlite3
import sys

from sqlalchemy.exc import SQLAlchemyError


def database_errors() -> tuple[type[BaseException], ...]:
    """``OSError``, SQLAlchemy's errors and the DB-API drivers' own (raw connections raise those
    unwrapped). psycopg is named only once something imported it: a registry on SQLite never
    does, and importing it just to name its error would cost every worker ~9 MiB. Evaluated at
    the ``except``, so a driver loaded later is caught too."""
    errors: tuple[type[BaseException], ...] = (OSError, SQLAlchemyError, sqlite3.Error)
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None:
        errors += (psycopg.Error,)
    return errors
