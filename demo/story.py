"""The demo's story as data: who signs in, what the page calls things, and every word
an operator wrote during the incidents (titles, updates, the postmortem).

Plain values only. Texts are ``str.format`` templates; ``demo.seed`` fills them in:
``{start}``, ``{fixed}``, ``{tN}`` (the time N minutes after the start, HH:MM UTC),
``{date}`` ("March 1"), ``{window}`` (minutes), ``{shard}`` (a shard's public name) and
the postmortem's measured counts.
"""

from dataclasses import dataclass

# --- The cast --------------------------------------------------------------------------

OPERATOR_USERNAME = "operator"
OPERATOR_PASSWORD = "operator-demo-password"  # noqa: S105 - the documented demo login
OPERATOR_EMAIL = "operator@example.com"


@dataclass(frozen=True)
class DemoPerson:
    username: str
    email: str
    password: str
    first_name: str
    # (tailnet slug, role) pairs; the slugs are the pinned tailnets of demo.fleet.
    memberships: tuple[tuple[str, str], ...]
    note: str


PEOPLE = (
    DemoPerson(
        "alice",
        "alice@acme.com",
        "alice-demo-password",
        "Alice",
        (("acme-com", "owner"),),
        "owner of acme.com (on US East 3 for the whole 24-minute repair)",
    ),
    DemoPerson(
        "bob",
        "bob@globex.com",
        "bob-demo-password",
        "Bob",
        (("globex-com", "member"),),
        "member of globex.com (migrated off US East 3 mid-repair)",
    ),
    DemoPerson(
        "carol",
        "carol@example.net",
        "carol-demo-password",
        "Carol",
        (),
        "no tailnet: invite her from alice's members page",
    ),
)


# --- The page's components ---------------------------------------------------------------

GROUP_NAME = "Coordination service"
GROUP_DESCRIPTION = (
    "Every tailnet lives on one coordination shard: a message bus that distributes keys, "
    "network maps and ACLs to its devices. When a shard has trouble, existing connections "
    "keep working; logging in, approving devices and changing ACLs may fail for the "
    "tailnets on it."
)
COORDINATION_NAME = "Coordination service ({region})"
COORDINATION_DESCRIPTION = (
    "The coordination shards in {region}: keys, network maps and ACL "
    "changes for the tailnets placed there."
)

# (slug, name, kind, position, description) of the components outside the group.
STANDALONE_COMPONENTS = (
    (
        "admin-console",
        "Admin console",
        "admin_console",
        10,
        "The web console for managing machines, users, ACLs and settings.",
    ),
    (
        "login",
        "Login",
        "login",
        11,
        "Signing in and authenticating new devices through your identity provider.",
    ),
    (
        "derp-relays",
        "DERP relays",
        "derp",
        12,
        "Encrypted relays that carry traffic when devices can't connect directly. "
        "Not involved in logins or ACL changes.",
    ),
    (
        "api",
        "API",
        "api",
        13,
        "The public REST API for automation: devices, keys, ACLs.",
    ),
)


# --- The incidents ---------------------------------------------------------------------

WORKS = (
    "**What still works:** existing connections. Devices that are already connected can "
    "still reach each other, directly or through DERP relays.\n\n"
    "**What may fail:** logging in, approving devices, changing ACLs and adding or "
    "removing nodes, for tailnets on {shard}. Please don't restart Tailscale on affected "
    "devices until this is resolved: a restarted client needs the coordination service "
    "to rejoin the network."
)
WORKS_SLOW = (
    "**What still works:** everything. Existing connections are not affected, and "
    "logging in, approving devices and changing ACLs still succeed, only more slowly."
)
YOUR_TAILNET = (
    "Tailnets on other shards were not affected. Sign in and open your tailnet's page to "
    "see whether your tailnet was affected, and for exactly how long."
)


@dataclass(frozen=True)
class Outage:
    """One of the nine short partial outages. Offsets are minutes after the start."""

    days_ago: int
    at: tuple[int, int]
    shard: str
    levels: tuple[tuple[int, str], ...]  # (offset, level) changes, the first at 0
    detected: int
    identified: int
    fixed: int  # the shard is healthy again: windows close, status "monitoring"
    resolved: int
    source: str
    title: str
    investigating: str
    identified_text: str
    monitoring: str
    resolved_text: str
    admin_console: bool = False
    progress: tuple[int, str] | None = None
    # (offset, to shards, how many, a pinned tailnet to move first)
    migrate: tuple[int, tuple[str, ...], int, str | None] | None = None


OUTAGES = (
    Outage(
        days_ago=36,
        at=(9, 14),
        shard="usw2",
        levels=((0, "partial"),),
        detected=3,
        identified=11,
        fixed=18,
        resolved=31,
        source="probe",
        title="Some logins and ACL changes failing on US West 2",
        investigating=(
            "Our probes show about a third of control-plane requests failing on "
            "coordination shard **US West 2** since {start} UTC. Tailnets on that shard may "
            "be unable to log in, approve new devices or change ACLs; retrying sometimes "
            "works."
        ),
        identified_text=(
            "A routine deploy to US West 2 at {start} UTC shipped a database connection "
            "pool much smaller than intended, so requests queue and time out under normal "
            "load. We're rolling the deploy back."
        ),
        monitoring=(
            "The rollback finished at {fixed} UTC and control-plane requests on US West 2 "
            "are succeeding again. We're monitoring."
        ),
        resolved_text=(
            "From {start} to {fixed} UTC ({window} minutes), some control-plane requests "
            "failed for tailnets on US West 2. Existing connections were not affected. The "
            "deploy pipeline now checks the connection pool size, so this configuration "
            "can't ship again."
        ),
    ),
    Outage(
        days_ago=33,
        at=(17, 42),
        shard="euc2",
        levels=((0, "degraded"), (6, "partial")),
        detected=9,
        identified=16,
        fixed=27,
        resolved=41,
        source="reports",
        admin_console=True,
        title="Slow and failing admin console actions for some tailnets in EU Central",
        investigating=(
            "Several customers have reported that the admin console is slow and that "
            "approving devices fails. The affected tailnets are on coordination shard "
            "**EU Central 2**, where control-plane requests have been slow since {start} UTC "
            "and some have been failing since {t6} UTC."
        ),
        identified_text=(
            "One very large tailnet on EU Central 2 is generating a burst of network map "
            "updates, and fanning them out saturates the shard's message bus. We're "
            "rate-limiting the burst and adding capacity to the shard."
        ),
        monitoring=(
            "Capacity was added at {fixed} UTC; latency and error rates on EU Central 2 are "
            "back to normal, and the admin console is responsive again. We're monitoring."
        ),
        resolved_text=(
            "Tailnets on EU Central 2 saw slow control-plane requests from {start} UTC and "
            "intermittent failures from {t6} to {fixed} UTC. Existing connections kept "
            "working throughout. We're changing how updates of very large tailnets are "
            "batched, so that one tailnet can't saturate a shard."
        ),
    ),
    Outage(
        days_ago=29,
        at=(3, 5),
        shard="apse3",
        levels=((0, "outage"),),
        detected=2,
        identified=7,
        fixed=12,
        resolved=22,
        source="probe",
        title="Coordination shard AP Southeast 3 unavailable",
        investigating=(
            "Coordination shard **AP Southeast 3** stopped answering at {start} UTC. "
            "Tailnets on that shard can't log in, approve devices or change ACLs right now."
        ),
        identified_text=(
            "The shard's primary process crashed, and the standby didn't take over "
            "automatically because the failover watchdog didn't consider the primary dead "
            "yet. We're promoting the standby by hand."
        ),
        monitoring=(
            "The standby was promoted at {fixed} UTC and AP Southeast 3 is answering "
            "normally. We're monitoring."
        ),
        resolved_text=(
            "Tailnets on AP Southeast 3 couldn't use the control plane for {window} minutes "
            "(from {start} to {fixed} UTC). Existing connections kept working. We've tightened the "
            "failover watchdog so a crashed primary is replaced within seconds, and we're "
            "still investigating the crash itself."
        ),
    ),
    Outage(
        days_ago=26,
        at=(13, 27),
        shard="euc2",
        levels=((0, "partial"),),
        detected=3,
        identified=12,
        fixed=34,
        resolved=52,
        source="probe",
        title="Some control-plane requests failing on EU Central 2",
        investigating=(
            "Our probes show some control-plane requests failing on coordination shard "
            "**EU Central 2** since {start} UTC."
        ),
        identified_text=(
            "EU Central 2 is overloaded by message-bus fan-out again, the same cause as the "
            "incident a week ago. We're pausing non-urgent background work on the shard to "
            "shed load."
        ),
        monitoring=(
            "Background work is paused and EU Central 2 has answered normally since {fixed} "
            "UTC. We're monitoring."
        ),
        resolved_text=(
            "From {start} to {fixed} UTC some control-plane requests failed for tailnets on "
            "EU Central 2; existing connections were not affected. Since this shard has now "
            "been overloaded twice, we'll live-migrate part of its tailnets to other EU "
            "Central shards over the next few days. Live migrations are seamless: devices "
            "stay connected while their tailnet moves."
        ),
    ),
    Outage(
        days_ago=21,
        at=(20, 51),
        shard="use4",
        levels=((0, "degraded"), (9, "partial"), (58, "degraded")),
        detected=4,
        identified=19,
        fixed=63,
        resolved=75,
        source="probe",
        admin_console=True,
        title="Degraded coordination service for some tailnets in US East",
        investigating=(
            "Control-plane requests on coordination shard **US East 4** have been slow since "
            "{start} UTC. Tailnets on that shard may see slow logins and device approvals, "
            "and ACL changes may take longer than usual to reach devices."
        ),
        identified_text=(
            "Since {t9} UTC some requests on US East 4 are failing, not just slow. The "
            "storage volume behind the shard's log is responding slowly, so writes stall. "
            "We're failing over to a healthy volume; meanwhile we'll live-migrate some "
            "tailnets to other US East shards."
        ),
        progress=(
            23,
            "We've live-migrated some tailnets off US East 4 to healthy shards; for them "
            "the problem ended when they moved, at {t22} UTC. The storage failover for "
            "the rest is in progress.",
        ),
        migrate=(22, ("use5", "use2"), 3, "umbrella.io"),
        monitoring=(
            "US East 4 moved to a healthy volume at {t58} UTC: failures stopped at once, and "
            "latency was back to normal by {fixed} UTC. We're monitoring."
        ),
        resolved_text=(
            "Tailnets on US East 4 saw slow control-plane requests from {start} UTC and "
            "failing requests from {t9} to {t58} UTC (49 minutes); tailnets we migrated to "
            "other shards during the incident were affected only until they moved. Existing "
            "connections kept working. This took longer than it should have: we're adding "
            "automatic failover for slow storage, so it doesn't wait for a human."
        ),
    ),
    Outage(
        days_ago=17,
        at=(6, 33),
        shard="usw5",
        levels=((0, "partial"),),
        detected=2,
        identified=8,
        fixed=14,
        resolved=25,
        source="probe",
        title="Logins failing for some tailnets in US West",
        investigating=(
            "Our probes show control-plane requests failing on coordination shard "
            "**US West 5** since {start} UTC. Some tailnets on that shard can't log in or "
            "approve devices."
        ),
        identified_text=(
            "An internal TLS certificate between US West 5 and one of its database proxies "
            "expired at {start} UTC, so connections through that proxy are refused. We're "
            "rotating the certificate."
        ),
        monitoring=(
            "The certificate was rotated at {fixed} UTC and requests are succeeding again. "
            "We're monitoring."
        ),
        resolved_text=(
            "From {start} to {fixed} UTC some control-plane requests failed for tailnets on "
            "US West 5; existing connections kept working. Certificates like this one now "
            "alert 14 days before they expire, and we've checked every shard for the same "
            "gap."
        ),
    ),
    Outage(
        days_ago=12,
        at=(15, 8),
        shard="use1",
        levels=((0, "degraded"),),
        detected=5,
        identified=13,
        fixed=21,
        resolved=38,
        source="reports",
        title="Slow logins and ACL changes for some tailnets in US East",
        investigating=(
            "We've had reports of slow logins and of ACL changes taking a long time to reach "
            "devices. Control-plane requests on coordination shard **US East 1** take "
            "several seconds instead of milliseconds. Nothing is failing, but it is slow."
        ),
        identified_text=(
            "Another workload on the same host is competing with US East 1 for CPU. We're "
            "moving the shard to a dedicated host; the move is live and won't disconnect "
            "anyone."
        ),
        monitoring=(
            "US East 1 has been on its dedicated host since {fixed} UTC and latency is back "
            "to normal. We're monitoring."
        ),
        resolved_text=(
            "From {start} to {fixed} UTC control-plane requests for tailnets on US East 1 "
            "were slow, but they succeeded. Existing connections were not affected. "
            "Coordination shards now only run on dedicated hosts."
        ),
    ),
    Outage(
        days_ago=7,
        at=(11, 46),
        shard="apse1",
        levels=((0, "partial"), (9, "outage"), (16, "partial")),
        detected=2,
        identified=6,
        fixed=22,
        resolved=35,
        source="probe",
        title="Coordination outage for some tailnets in AP Southeast",
        investigating=(
            "Our probes show control-plane requests failing on coordination shard "
            "**AP Southeast 1** since {start} UTC. Some tailnets on that shard can't log in, "
            "approve devices or change ACLs."
        ),
        identified_text=(
            "A configuration change to the load balancer in front of AP Southeast 1 sends "
            "part of its traffic to an address that doesn't answer. We're reverting it."
        ),
        progress=(
            17,
            "The revert made things worse before it made them better: from {t9} to {t16} "
            "UTC AP Southeast 1 was unreachable. Since {t16} UTC most requests succeed "
            "again; the revert is still rolling out.",
        ),
        monitoring=(
            "The revert completed at {fixed} UTC and AP Southeast 1 is answering normally. "
            "We're monitoring."
        ),
        resolved_text=(
            "Tailnets on AP Southeast 1 saw failing control-plane requests from {start} to "
            "{fixed} UTC, and no control plane at all from {t9} to {t16} UTC. Existing "
            "connections kept working. Load balancer changes now roll out to one shard at a "
            "time, with an automatic rollback when probes fail."
        ),
    ),
    Outage(
        days_ago=3,
        at=(22, 19),
        shard="euc4",
        levels=((0, "partial"),),
        detected=3,
        identified=14,
        fixed=26,
        resolved=44,
        source="probe",
        title="Some control-plane requests failing on EU Central 4",
        investigating=(
            "Our probes show some control-plane requests failing on coordination shard "
            "**EU Central 4** since {start} UTC."
        ),
        identified_text=(
            "A brief network interruption between two availability zones left the message "
            "bus of EU Central 4 without an elected leader. We're forcing a new election."
        ),
        monitoring=(
            "A new leader was elected at {fixed} UTC and requests are succeeding again. "
            "We're monitoring."
        ),
        resolved_text=(
            "From {start} to {fixed} UTC some control-plane requests failed for tailnets on "
            "EU Central 4; existing connections kept working. We're fixing the election "
            "timeout that kept the bus leaderless after the network had recovered."
        ),
    ),
)


# --- The planned repair of US East 3 (24 minutes offline) --------------------------------


@dataclass(frozen=True)
class Repair:
    """The updates of the repair, in order, and the postmortem written days later."""

    title: str
    announced: str  # scheduled, 12 minutes before
    offline: str  # in progress
    migrated: str  # in progress: some tailnets moved off mid-repair
    back: str  # verifying
    completed: str
    postmortem: str


REPAIR = Repair(
    title="Urgent repair of coordination shard US East 3",
    announced=(
        "We've found an internal problem on coordination shard **US East 3** before it "
        "affected anyone, and we're going to repair it now rather than wait for it to "
        "turn into an outage. Part of the repair needs the shard offline, starting at "
        "{start} UTC, for up to 30 minutes.\n\n"
        "**What still works:** existing connections, for everyone. Devices that are "
        "already connected keep reaching each other.\n\n"
        "**What may fail:** while the shard is offline, tailnets on US East 3 can't log "
        "in, approve devices, change ACLs or add and remove nodes. Tailnets on other US "
        "East shards may see slower control-plane requests while they take extra load."
        "\n\nWe're sorry for the short notice: the alternative was an unplanned outage "
        "later."
    ),
    offline=(
        "US East 3 is offline for the repair as of {start} UTC. Tailnets on it can't "
        "log in, approve devices or change ACLs until it's back; existing connections "
        "keep working. Please don't restart Tailscale on devices in those tailnets "
        "until the shard is back: a restarted client needs the coordination service "
        "to rejoin the network.\n\n"
        "US East 2, 4 and 5 are picking up extra load and may be slower than usual."
    ),
    migrated=(
        "To shorten the impact we've live-migrated some tailnets off US East 3 to "
        "healthy shards; for them the outage ended when they moved, at {t6} "
        "or {t11} UTC. Moving every tailnet would take longer than the "
        "repair itself, so the rest stay put. The repair is on track."
    ),
    back=(
        "US East 3 is back online as of {t24} UTC, 24 minutes after it "
        "went offline. Logins, device approvals and ACL changes are succeeding again. "
        "Latency on US East 2, 4 and 5 is coming back down. We're verifying the repair."
    ),
    completed=(
        "The repair is complete and every US East shard is operating normally.\n\n"
        "Tailnets on US East 3 couldn't use the control plane for 24 minutes "
        "(from {start} to {t24} UTC), except those we moved off during the "
        "repair, which were affected only until they moved. Tailnets on US East 2, 4 "
        "and 5 saw higher latency for up to 28 minutes. Existing connections kept "
        "working throughout. Sign in and open your tailnet's page to see whether your "
        "tailnet was affected, and for exactly how long.\n\n"
        "We'll publish a postmortem."
    ),
    # {full}, {moved}, {slowed}: tailnets offline 24 minutes, moved off mid-way, only
    # slowed; {affected} of {total} ({percent}): the incident page's blast radius.
    postmortem="""### Summary

On {date} our monitoring found a fault building up inside coordination shard US East 3,
before any customer noticed it. Repairing it required taking the shard offline, which we
did at {start} UTC after a short-notice maintenance announcement. The shard was offline for
exactly 24 minutes.

### Impact

- **{full:,}** tailnets on US East 3 couldn't log in, approve devices, change ACLs or add
  and remove nodes for the full 24 minutes, from {start} to {t24} UTC.
- **{moved:,}** tailnets were live-migrated to other shards during the repair: they lost
  the control plane for 6 or 11 minutes instead of 24, then at most saw higher latency on
  their new shard.
- **{slowed:,}** tailnets on US East 2, 4 and 5 saw control-plane requests take several
  seconds for up to 28 minutes, while those shards absorbed extra load. Nothing failed for
  them.
- In all, {affected:,} of {total:,} tailnets ({percent}) were
  affected in some way. Existing connections kept working for every tailnet, direct or
  relayed.

### Timeline (UTC)

| Time | What happened |
|---|---|
| {flagged} | Monitoring flags a slowly growing backlog in US East 3's message bus. |
| {announced} | We announce the repair; the shard must go offline to fix the backlog safely. |
| {start} | US East 3 goes offline. US East 2, 4 and 5 slow down as clients retry. |
| {t6} | First live migrations off US East 3 complete. |
| {t11} | Second batch of live migrations completes. |
| {t24} | US East 3 is back online; control-plane requests succeed again. |
| {t29} | Latency on the neighbouring shards is back to normal. |
| {t38} | Repair verified and the maintenance completed. |

### What went well

- We caught the fault before it caused an outage, so the downtime was planned, short and
  limited to one shard.
- Data-plane traffic was never interrupted.
- Live migration took some tailnets out of the blast radius while the repair ran.

### What went wrong

- 24 minutes is a long time to be unable to approve a device or change an ACL.
- Twelve minutes is not advance notice. Customers who needed the control plane at that
  moment had no way to plan around it.
- Devices that restarted during the window fell off their tailnet until the shard returned,
  because clients don't keep their network map across restarts.

### What we're changing

1. **Network map caching across restarts**, so a restarted client rejoins from its cache
   while its coordination shard is unavailable.
2. **Hot spares per region**, so a shard can be repaired by failing over instead of going
   offline.
3. **Faster bulk live migration**, so a shard can be emptied before it is taken offline
   rather than while it is down.
4. **Neighbour isolation**, so that retries from one shard's tailnets don't slow down the
   shards next to it.
""",
)


# --- A DERP relay incident (no shard impact) and an upcoming maintenance ---------------


@dataclass(frozen=True)
class Derp:
    title: str
    investigating: str
    identified: str
    monitoring: str
    resolved: str


DERP = Derp(
    title="Slower relayed connections in Frankfurt",
    investigating=(
        "Some connections relayed through our DERP servers in Frankfurt are slower "
        "than usual, and some see packet loss. Direct connections between devices "
        "aren't affected.\n\n"
        "**What still works:** the coordination service. Logging in, approving "
        "devices and changing ACLs work normally, for every tailnet.\n\n"
        "We're investigating."
    ),
    identified=(
        "A network problem at our hosting provider is dropping packets on the path to "
        "one of our Frankfurt relays. We're taking that relay out of rotation; clients "
        "switch to the next-nearest relay on their own within seconds."
    ),
    monitoring=(
        "The Frankfurt relay is out of rotation and relayed connections in Europe are "
        "back to normal latency. We're monitoring."
    ),
    resolved=(
        "This incident has been resolved. From "
        "{start} to {t33} UTC some connections relayed through "
        "Frankfurt were slower or lost packets. Direct connections and the "
        "coordination service were not affected. The relay will return to rotation "
        "once the provider confirms the fix."
    ),
)

UPCOMING_TITLE = "Scheduled maintenance: hardware upgrade of EU Central 3"
UPCOMING_BODY = (
    "On {date} from {start} to {end} UTC we'll upgrade the hardware "
    "behind coordination shard **EU Central 3**. Before the upgrade, every tailnet "
    "on the shard will be live-migrated to other EU Central shards, and moved back "
    "afterwards.\n\n"
    "We don't expect any downtime: devices stay connected during a live "
    "migration, and logging in, approving devices and changing ACLs keep working. "
    "While a tailnet moves, its control-plane requests may take a few seconds "
    "longer.\n\n"
    "If anything goes differently, we'll post updates here."
)

# How an outage's first and last updates begin and end, around its own words.
INVESTIGATING = "We're investigating."
RESOLVED = "This incident has been resolved. "
