"""``homecall central create-user``: make a staff account from the command line (the first
admin of a new installation, or any user later).

The password comes from ``--password-file``, else the ``HOMECALL_NEW_USER_PASSWORD``
environment variable, else a prompt that does not echo (asked twice). It is never printed or
logged. The database schema is brought up to date first.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from central.auth.service import ROLES, AccountError

PASSWORD_ENV = "HOMECALL_NEW_USER_PASSWORD"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("username")
    parser.add_argument("--role", choices=ROLES, default="admin",
                        help="the user's role (default admin)")
    parser.add_argument("--organisation", metavar="ORG_ID",
                        help="the organisation id (required for every role but admin; an "
                             "admin without one spans all organisations)")
    parser.add_argument("--password-file", type=Path,
                        help=f"read the password from this file (else ${PASSWORD_ENV}, "
                             "else a prompt)")
    parser.add_argument("--exist-ok", action="store_true",
                        help="succeed without change if the user name already exists")
    parser.add_argument("--db", default=None,
                        help="database URL or SQLite path (default: the settings' database)")


def _password(args: argparse.Namespace) -> str:
    if args.password_file is not None:
        try:
            return args.password_file.read_text().rstrip("\r\n")
        except OSError as err:
            raise AccountError(f"cannot read password file {args.password_file}: "
                               f"{err.strerror}") from err
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if not sys.stdin.isatty():
        raise AccountError(f"no password: use --password-file, ${PASSWORD_ENV} or a terminal")
    first = getpass.getpass(f"Password for {args.username}: ")
    if getpass.getpass("Again: ") != first:
        raise AccountError("the two passwords differ")
    return first


def run(args: argparse.Namespace) -> int:
    from central.auth.service import Accounts
    from central.db.engine import Database
    from central.db.migrate import upgrade
    from central.settings import CentralSettings
    from homecall.clock import SystemClock

    settings = CentralSettings()
    db = Database(args.db or settings.database_url)
    try:
        db.check()
        upgrade(db)
        accounts = Accounts(db, SystemClock())
        if args.exist_ok and any(u.username == args.username for u in accounts.list_users()):
            print(f"user {args.username} already exists")
            return 0
        user = accounts.create_user(args.username, _password(args), args.role,
                                    args.organisation)
    finally:
        db.dispose()
    where = user.organisation_id or "all organisations"
    print(f"created {user.role} {user.username} ({where}) in {db.describe()}")
    return 0
