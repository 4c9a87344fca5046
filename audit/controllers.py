"""The audit journal of an organisation, for its coordinators."""

from __future__ import annotations

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.response import Template

from audit import services
from tables import services as tables
from voix.i18n import N_
from voix.permissions import Principal, require
from voix.web import Slug, page

ACTIONS = {
    "legal.updated": N_("Legal page changed"),
    "vote.opened": N_("Vote opened"),
    "vote.closed": N_("Vote closed"),
    "proposal.decided": N_("Decision recorded"),
    "brief.published": N_("Position document published"),
    "brief.draft_created": N_("Position document started"),
    "brief.draft_saved": N_("Position document draft saved"),
    "institution.added": N_("Institution added"),
    "institution.changed": N_("Institution changed"),
    "institution.archived": N_("Institution archived"),
    "institution.restored": N_("Institution restored"),
    "photo.publication_allowed": N_("Photo allowed in documents for institutions"),
    "photo.publication_withdrawn": N_("Photo withdrawn from documents for institutions"),
    "response.recorded": N_("Institution's answer recorded"),
    "table.answer_delay": N_("Delay for institutions' answers changed"),
    "totp.enabled": N_("Two-step sign-in turned on"),
    "totp.reset": N_("Two-step sign-in removed"),
    "resident.registered": N_("Resident registered"),
    "card.issued": N_("Login card issued"),
    "card.reprinted": N_("Login card reprinted"),
    "card.revoked": N_("Login card revoked"),
    "account.erased": N_("Account erased"),
    "role.changed": N_("Role changed"),
    "proposal.status": N_("Proposal status changed"),
    "proposal.merged": N_("Proposals merged"),
    "moderation.hidden": N_("Hidden by moderation"),
    "moderation.shown": N_("Shown again after moderation"),
    "proposal.recorded_on_behalf": N_("Proposal recorded on a resident's behalf"),
    "support.recorded_on_behalf": N_("Support recorded on a resident's behalf"),
    "support.withdrawn_on_behalf": N_("Support withdrawn on a resident's behalf"),
    "comment.recorded_on_behalf": N_("Comment recorded on a resident's behalf"),
    "meeting.scheduled": N_("Meeting scheduled"),
    "organisation.licence": N_("Open-data licence changed"),
    "meeting.opened": N_("Meeting started"),
    "meeting.entered_after_the_fact": N_("Meeting entered after the fact"),
    "meeting.closed": N_("Meeting closed"),
    "meeting.reopened": N_("Meeting reopened after closing"),
    "meeting.cancelled": N_("Meeting cancelled"),
    "minutes.published": N_("Minutes published"),
    "content.translated": N_("Translation saved"),
    "channels.changed": N_("Notification channels changed"),
    "channels.recorded_on_behalf": N_("Notification channels recorded on a resident's behalf"),
    "rsvp.recorded_on_behalf": N_("Answer to a meeting recorded on a resident's behalf"),
    "notification.message": N_("Message sent to a table's members"),
    "notification.retry": N_("Notification sent again by a coordinator"),
}


@get("/organisations/{slug:str}/audit", name="audit")
async def journal(request: Request, principal: NamedDependency[Principal], slug: Slug) -> Template:
    organisation = await tables.get_organisation(slug)
    require(principal, "audit.read", tables.organisation_scope(organisation["id"]))
    return page(
        request,
        "audit/journal.html",
        organisation=organisation,
        entries=await services.for_organisation(organisation["id"]),
        actions=ACTIONS,
    )


ROUTES = [journal]
