-- Cache tables for Customer, Invoice and Payment, and per-realm table state.
-- Columns mirror qbproxy/schema.py (a test compares them). Every key starts with realm_id:
-- qbproxy is multi-tenant and nothing is ever looked up across realms.

CREATE TABLE qbo_table_state (
    realm_id            text        NOT NULL,
    entity              text        NOT NULL CHECK (entity IN ('Customer', 'Invoice', 'Payment')),
    -- Bumped by every purge. Fills record it when they start and land only if unchanged.
    generation          bigint      NOT NULL DEFAULT 1,
    -- The generation under which the last whole-table load landed; the table is complete
    -- while complete_generation = generation and loaded_at is within the TTL.
    complete_generation bigint,
    -- When that load started (freshness is measured from the start, conservatively).
    loaded_at           timestamptz,
    purged_at           timestamptz,
    PRIMARY KEY (realm_id, entity)
);

CREATE TABLE qbo_customer (
    realm_id             text        NOT NULL,
    id                   bigint      NOT NULL,
    gen                  bigint      NOT NULL,
    cached_at            timestamptz NOT NULL DEFAULT now(),
    doc                  text        NOT NULL,
    display_name         text,
    given_name           text,
    middle_name          text,
    family_name          text,
    primary_email_addr   text,
    active               boolean,
    company_name         text,
    balance              numeric,
    print_on_check_name  text,
    fully_qualified_name text,
    create_time          timestamptz,
    last_updated_time    timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_customer_display_name ON qbo_customer (realm_id, lower(display_name) COLLATE "C");
CREATE INDEX qbo_customer_last_updated ON qbo_customer (realm_id, last_updated_time);

CREATE TABLE qbo_invoice (
    realm_id          text        NOT NULL,
    id                bigint      NOT NULL,
    gen               bigint      NOT NULL,
    cached_at         timestamptz NOT NULL DEFAULT now(),
    doc               text        NOT NULL,
    customer_ref      text,
    doc_number        text,
    project_ref       text,
    txn_date          date,
    sales_term_ref    text,
    due_date          date,
    balance           numeric,
    total_amt         numeric,
    create_time       timestamptz,
    last_updated_time timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_invoice_customer ON qbo_invoice (realm_id, customer_ref);
CREATE INDEX qbo_invoice_txn_date ON qbo_invoice (realm_id, txn_date);
CREATE INDEX qbo_invoice_last_updated ON qbo_invoice (realm_id, last_updated_time);

CREATE TABLE qbo_payment (
    realm_id           text        NOT NULL,
    id                 bigint      NOT NULL,
    gen                bigint      NOT NULL,
    cached_at          timestamptz NOT NULL DEFAULT now(),
    doc                text        NOT NULL,
    total_amt          numeric,
    customer_ref       text,
    txn_date           date,
    payment_method_ref text,
    payment_ref_num    text,
    create_time        timestamptz,
    last_updated_time  timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_payment_customer ON qbo_payment (realm_id, customer_ref);
CREATE INDEX qbo_payment_txn_date ON qbo_payment (realm_id, txn_date);
CREATE INDEX qbo_payment_last_updated ON qbo_payment (realm_id, last_updated_time);
