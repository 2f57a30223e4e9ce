-- depends: 0004_instances
-- Reports answered from cache (qbproxy/db/reports.py). One generation per realm, bumped by
-- every purge of the realm (writes, webhooks, `qbproxy purge`) and by every CDC answer
-- holding changes: a report can depend on any transaction. An answer is served only under
-- the generation it was stored with, so a fill that raced a purge never lands.

CREATE TABLE qbo_report_state (
    realm_id   text        PRIMARY KEY,
    generation bigint      NOT NULL DEFAULT 1,
    purged_at  timestamptz
);

CREATE TABLE qbo_report (
    realm_id           text        NOT NULL,
    -- The report name and its canonical parameters (qbproxy/core/reports.py).
    key                text        NOT NULL,
    gen                bigint      NOT NULL,
    -- When the call that computed it began, on the database's clock.
    cached_at          timestamptz NOT NULL,
    -- The company day a day-dependent answer holds for (from Header.Time) and the
    -- company's UTC offset then; both NULL for an answer that does not depend on the day.
    company_day        date,
    utc_offset_seconds integer,
    body               bytea       NOT NULL,
    PRIMARY KEY (realm_id, key)
);
