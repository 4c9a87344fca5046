"""Recording sensitive acts, in the same transaction as the act itself, and reading them."""

from __future__ import annotations

from typing import Any

from audit.models import AuditEntry
from voix.permissions import Principal, Scope

PAGE_SIZE = 100


async def record(
    who: Principal, action: str, scope: Scope | None = None, subject: str = "", **details: Any
) -> None:
    await AuditEntry.insert(
        AuditEntry(
            actor=who.user_id,
            actor_name=who.display_name,
            action=action,
            organisation_id=scope.organisation_id if scope else None,
            table_id=scope.table_id if scope else None,
            subject=subject,
            details=details,
        )
    )


async def for_organisation(organisation_id: int) -> list[dict[str, Any]]:
    return await (
        AuditEntry.select(
            AuditEntry.at,
            AuditEntry.actor_name,
            AuditEntry.action,
            AuditEntry.table_id,
            AuditEntry.subject,
            AuditEntry.details,
        )
        .where(AuditEntry.organisation_id == organisation_id)
        .order_by(AuditEntry.at, ascending=False)
        .limit(PAGE_SIZE)
        .output(load_json=True)
    )
