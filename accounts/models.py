from piccolo.columns import Boolean, ForeignKey, Serial, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table as Model


class User(Model, tablename="account"):
    id: Serial
    # A login is an e-mail address or a chosen name: many residents have no e-mail.
    login = Varchar(length=254, unique=True)
    display_name = Varchar(length=80)
    email = Varchar(length=254, null=True, default=None)
    password_hash = Varchar(length=255)
    language = Varchar(length=5, default="fr")
    is_admin = Boolean(default=False)
    created_at = Timestamptz()


class Session(Model, tablename="login_session"):
    id: Serial
    # Only a hash of the cookie's token is stored: a database leak opens no session.
    token_hash = Varchar(length=64, unique=True)
    user = ForeignKey(User, null=False, on_delete=OnDelete.cascade)
    created_at = Timestamptz()
    last_seen_at = Timestamptz()
