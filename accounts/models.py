from piccolo.columns import BigInt, Boolean, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table as Model


class User(Model, tablename="account"):
    id: Serial
    # A login is an e-mail address or a chosen name: many residents have no e-mail.
    login = Varchar(length=254, unique=True)
    display_name = Varchar(length=80)
    email = Varchar(length=254, null=True, default=None)
    phone = Varchar(length=32, null=True, default=None)
    password_hash = Varchar(length=255)
    language = Varchar(length=5, default="fr")
    is_admin = Boolean(default=False)
    created_at = Timestamptz()
    # Consent to the privacy notice: when, and which facilitator collected it (if one did).
    consent_at = Timestamptz(null=True, default=None)
    consent_recorded_by = Integer(null=True, default=None)
    # TOTP: the secret encrypted (voix.crypto, "totp"); the last time step accepted, so that
    # no code is accepted twice.
    totp_secret = Text(null=True, default=None)
    totp_enabled_at = Timestamptz(null=True, default=None)
    totp_last_step = BigInt(null=True, default=None)


class Session(Model, tablename="login_session"):
    id: Serial
    # Only a hash of the cookie's token is stored: a database leak opens no session.
    token_hash = Varchar(length=64, unique=True)
    user = ForeignKey(User, null=False, on_delete=OnDelete.cascade)
    created_at = Timestamptz()
    last_seen_at = Timestamptz()
    # Set when this session proved a TOTP or recovery code: only then may it manage a table.
    verified_at = Timestamptz(null=True, default=None)
    # Opened with a login card: it ends if its holder comes to manage a table or gets a password.
    by_card = Boolean(default=False)


class RecoveryCode(Model, tablename="recovery_code"):
    id: Serial
    user = ForeignKey(User, null=False, on_delete=OnDelete.cascade)
    code_hash = Varchar(length=64, unique=True)  # keyed hash (voix.crypto, "recovery")
    used_at = Timestamptz(null=True, default=None)


class LoginCard(Model, tablename="login_card"):
    """A printed card whose code (and QR code) signs a resident in. Only its hash is kept."""

    id: Serial
    user = ForeignKey(User, null=False, on_delete=OnDelete.cascade)
    code_hash = Varchar(length=64, unique=True)  # keyed hash (voix.crypto, "card")
    issued_by = ForeignKey(User, null=True, on_delete=OnDelete.set_null)
    issued_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)
    reason = Varchar(length=200, default="")  # why it was reprinted, shown to its holder


class Throttle(Model, tablename="throttle"):
    """Failed attempts per key (an account, a client) in the current window, shared by workers."""

    id: Serial
    key = Varchar(length=200, unique=True)
    failures = Integer(default=0)
    window_started_at = Timestamptz()
