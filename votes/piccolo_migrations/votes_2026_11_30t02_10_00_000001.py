"""Yes/no votes cast before votes had options: each gets its one option, its ballots their marks,
and a closed vote the result the counting rule gives (yes > no)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from voix.db import engine, index

ID = "2026-11-30T02:10:00:000001"
VERSION = "1.38.0"
DESCRIPTION = "options and marks for earlier votes, indexes"

_COUNT = "(SELECT COUNT(*) FROM ballot b WHERE b.vote = o.vote AND b.choice = '{}')"

STEPS = (
    """INSERT INTO vote_option (vote, position, proposal, label, theme, tally)
       SELECT v.id, 0, v.proposal,
              COALESCE((SELECT p.title FROM proposal p WHERE p.id = v.proposal), v.question),
              COALESCE((SELECT p.theme FROM proposal p WHERE p.id = v.proposal), ''), ''
       FROM vote v""",
    """UPDATE ballot SET marks =
          CASE choice WHEN 'yes' THEN '[0]' WHEN 'no' THEN '[1]' ELSE '[2]' END""",
    f"""UPDATE vote_option AS o SET
          tally = '[' || CAST({_COUNT.format("yes")} AS TEXT) || ','
                      || CAST({_COUNT.format("no")} AS TEXT) || ','
                      || CAST({_COUNT.format("abstain")} AS TEXT) || ']',
          rank = 1,
          adopted = ({_COUNT.format("yes")} > {_COUNT.format("no")})
       WHERE o.vote IN (SELECT id FROM vote WHERE status = 'closed')""",
    """UPDATE vote SET participants =
          (SELECT COUNT(*) FROM vote_participation p WHERE p.vote = vote.id)
       WHERE status = 'closed'""",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="votes", description=DESCRIPTION)

    async def earlier_votes() -> None:
        for step in STEPS:
            await engine().run_ddl(step)

    manager.add_raw(earlier_votes)
    manager.add_raw(index("vote_option", "vote", "position"))
    manager.add_raw(index("vote_option", "proposal"))
    # The ballot box reads a closed vote's ballots a page at a time, in one of these orders.
    manager.add_raw(index("ballot", "vote", "id"))
    manager.add_raw(index("ballot", "vote", "receipt", "id"))
    manager.add_raw(index("vote_decision", "proposal"))
    manager.add_raw(index("vote", "status", "closes_at"))
    return manager
