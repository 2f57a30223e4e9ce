-- depends: 0004_instances
-- Cache tables for every other entity qbproxy answers (qbproxy/core/catalog.py; a test
-- compares the columns). Same shape as the seed's three: realm_id first in every key,
-- the document as Intuit sent it, and one typed column per filterable or sortable field.

ALTER TABLE qbo_table_state DROP CONSTRAINT qbo_table_state_entity_check;

CREATE TABLE qbo_account (
    realm_id                          text        NOT NULL,
    id                                bigint      NOT NULL,
    gen                               bigint      NOT NULL,
    cached_at                         timestamptz NOT NULL DEFAULT now(),
    doc                               text        NOT NULL,
    name                              text,
    sub_account                       boolean,
    classification                    text,
    fully_qualified_name              text,
    account_type                      text,
    active                            boolean,
    current_balance                   numeric,
    current_balance_with_sub_accounts numeric,
    create_time                       timestamptz,
    last_updated_time                 timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_account_last_updated ON qbo_account (realm_id, last_updated_time);

CREATE TABLE qbo_item (
    realm_id             text        NOT NULL,
    id                   bigint      NOT NULL,
    gen                  bigint      NOT NULL,
    cached_at            timestamptz NOT NULL DEFAULT now(),
    doc                  text        NOT NULL,
    name                 text,
    type                 text,
    taxable              boolean,
    active               boolean,
    fully_qualified_name text,
    sub_item             boolean,
    sku                  text,
    create_time          timestamptz,
    last_updated_time    timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_item_last_updated ON qbo_item (realm_id, last_updated_time);

CREATE TABLE qbo_vendor (
    realm_id          text        NOT NULL,
    id                bigint      NOT NULL,
    gen               bigint      NOT NULL,
    cached_at         timestamptz NOT NULL DEFAULT now(),
    doc               text        NOT NULL,
    display_name      text,
    given_name        text,
    family_name       text,
    company_name      text,
    active            boolean,
    balance           numeric,
    create_time       timestamptz,
    last_updated_time timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_vendor_last_updated ON qbo_vendor (realm_id, last_updated_time);

CREATE TABLE qbo_employee (
    realm_id            text        NOT NULL,
    id                  bigint      NOT NULL,
    gen                 bigint      NOT NULL,
    cached_at           timestamptz NOT NULL DEFAULT now(),
    doc                 text        NOT NULL,
    display_name        text,
    given_name          text,
    middle_name         text,
    family_name         text,
    suffix              text,
    active              boolean,
    print_on_check_name text,
    create_time         timestamptz,
    last_updated_time   timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_employee_last_updated ON qbo_employee (realm_id, last_updated_time);

CREATE TABLE qbo_class (
    realm_id             text        NOT NULL,
    id                   bigint      NOT NULL,
    gen                  bigint      NOT NULL,
    cached_at            timestamptz NOT NULL DEFAULT now(),
    doc                  text        NOT NULL,
    active               boolean,
    fully_qualified_name text,
    create_time          timestamptz,
    last_updated_time    timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_class_last_updated ON qbo_class (realm_id, last_updated_time);

CREATE TABLE qbo_department (
    realm_id             text        NOT NULL,
    id                   bigint      NOT NULL,
    gen                  bigint      NOT NULL,
    cached_at            timestamptz NOT NULL DEFAULT now(),
    doc                  text        NOT NULL,
    active               boolean,
    fully_qualified_name text,
    create_time          timestamptz,
    last_updated_time    timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_department_last_updated ON qbo_department (realm_id, last_updated_time);

CREATE TABLE qbo_term (
    realm_id          text        NOT NULL,
    id                bigint      NOT NULL,
    gen               bigint      NOT NULL,
    cached_at         timestamptz NOT NULL DEFAULT now(),
    doc               text        NOT NULL,
    name              text,
    active            boolean,
    create_time       timestamptz,
    last_updated_time timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_term_last_updated ON qbo_term (realm_id, last_updated_time);

CREATE TABLE qbo_paymentmethod (
    realm_id          text        NOT NULL,
    id                bigint      NOT NULL,
    gen               bigint      NOT NULL,
    cached_at         timestamptz NOT NULL DEFAULT now(),
    doc               text        NOT NULL,
    active            boolean,
    create_time       timestamptz,
    last_updated_time timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_paymentmethod_last_updated ON qbo_paymentmethod (realm_id, last_updated_time);

CREATE TABLE qbo_taxcode (
    realm_id          text        NOT NULL,
    id                bigint      NOT NULL,
    gen               bigint      NOT NULL,
    cached_at         timestamptz NOT NULL DEFAULT now(),
    doc               text        NOT NULL,
    name              text,
    active            boolean,
    description       text,
    create_time       timestamptz,
    last_updated_time timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_taxcode_last_updated ON qbo_taxcode (realm_id, last_updated_time);

CREATE TABLE qbo_taxrate (
    realm_id            text        NOT NULL,
    id                  bigint      NOT NULL,
    gen                 bigint      NOT NULL,
    cached_at           timestamptz NOT NULL DEFAULT now(),
    doc                 text        NOT NULL,
    name                text,
    agency_ref          text,
    tax_return_line_ref text,
    active              boolean,
    description         text,
    create_time         timestamptz,
    last_updated_time   timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_taxrate_last_updated ON qbo_taxrate (realm_id, last_updated_time);

CREATE TABLE qbo_bill (
    realm_id          text        NOT NULL,
    id                bigint      NOT NULL,
    gen               bigint      NOT NULL,
    cached_at         timestamptz NOT NULL DEFAULT now(),
    doc               text        NOT NULL,
    vendor_ref        text,
    txn_date          date,
    ap_account_ref    text,
    sales_term_ref    text,
    total_amt         numeric,
    due_date          date,
    doc_number        text,
    balance           numeric,
    create_time       timestamptz,
    last_updated_time timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_bill_vendor_ref ON qbo_bill (realm_id, vendor_ref);
CREATE INDEX qbo_bill_txn_date ON qbo_bill (realm_id, txn_date);
CREATE INDEX qbo_bill_due_date ON qbo_bill (realm_id, due_date);
CREATE INDEX qbo_bill_last_updated ON qbo_bill (realm_id, last_updated_time);

CREATE TABLE qbo_billpayment (
    realm_id            text        NOT NULL,
    id                  bigint      NOT NULL,
    gen                 bigint      NOT NULL,
    cached_at           timestamptz NOT NULL DEFAULT now(),
    doc                 text        NOT NULL,
    vendor_ref          text,
    total_amt           numeric,
    doc_number          text,
    txn_date            date,
    ap_account_ref      text,
    check_payment       text,
    credit_card_payment text,
    create_time         timestamptz,
    last_updated_time   timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_billpayment_vendor_ref ON qbo_billpayment (realm_id, vendor_ref);
CREATE INDEX qbo_billpayment_txn_date ON qbo_billpayment (realm_id, txn_date);
CREATE INDEX qbo_billpayment_last_updated ON qbo_billpayment (realm_id, last_updated_time);

CREATE TABLE qbo_estimate (
    realm_id          text        NOT NULL,
    id                bigint      NOT NULL,
    gen               bigint      NOT NULL,
    cached_at         timestamptz NOT NULL DEFAULT now(),
    doc               text        NOT NULL,
    customer_ref      text,
    project_ref       text,
    txn_date          date,
    due_date          date,
    doc_number        text,
    create_time       timestamptz,
    last_updated_time timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_estimate_customer_ref ON qbo_estimate (realm_id, customer_ref);
CREATE INDEX qbo_estimate_txn_date ON qbo_estimate (realm_id, txn_date);
CREATE INDEX qbo_estimate_due_date ON qbo_estimate (realm_id, due_date);
CREATE INDEX qbo_estimate_last_updated ON qbo_estimate (realm_id, last_updated_time);

CREATE TABLE qbo_creditmemo (
    realm_id          text        NOT NULL,
    id                bigint      NOT NULL,
    gen               bigint      NOT NULL,
    cached_at         timestamptz NOT NULL DEFAULT now(),
    doc               text        NOT NULL,
    customer_ref      text,
    project_ref       text,
    txn_date          date,
    sales_term_ref    text,
    doc_number        text,
    balance           numeric,
    create_time       timestamptz,
    last_updated_time timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_creditmemo_customer_ref ON qbo_creditmemo (realm_id, customer_ref);
CREATE INDEX qbo_creditmemo_txn_date ON qbo_creditmemo (realm_id, txn_date);
CREATE INDEX qbo_creditmemo_last_updated ON qbo_creditmemo (realm_id, last_updated_time);

CREATE TABLE qbo_salesreceipt (
    realm_id          text        NOT NULL,
    id                bigint      NOT NULL,
    gen               bigint      NOT NULL,
    cached_at         timestamptz NOT NULL DEFAULT now(),
    doc               text        NOT NULL,
    customer_ref      text,
    project_ref       text,
    txn_date          date,
    doc_number        text,
    total_amt         numeric,
    balance           numeric,
    create_time       timestamptz,
    last_updated_time timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_salesreceipt_customer_ref ON qbo_salesreceipt (realm_id, customer_ref);
CREATE INDEX qbo_salesreceipt_txn_date ON qbo_salesreceipt (realm_id, txn_date);
CREATE INDEX qbo_salesreceipt_last_updated ON qbo_salesreceipt (realm_id, last_updated_time);

CREATE TABLE qbo_refundreceipt (
    realm_id          text        NOT NULL,
    id                bigint      NOT NULL,
    gen               bigint      NOT NULL,
    cached_at         timestamptz NOT NULL DEFAULT now(),
    doc               text        NOT NULL,
    customer_ref      text,
    project_ref       text,
    txn_date          date,
    doc_number        text,
    payment_type      text,
    balance           numeric,
    create_time       timestamptz,
    last_updated_time timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_refundreceipt_customer_ref ON qbo_refundreceipt (realm_id, customer_ref);
CREATE INDEX qbo_refundreceipt_txn_date ON qbo_refundreceipt (realm_id, txn_date);
CREATE INDEX qbo_refundreceipt_last_updated ON qbo_refundreceipt (realm_id, last_updated_time);

CREATE TABLE qbo_deposit (
    realm_id               text        NOT NULL,
    id                     bigint      NOT NULL,
    gen                    bigint      NOT NULL,
    cached_at              timestamptz NOT NULL DEFAULT now(),
    doc                    text        NOT NULL,
    txn_date               date,
    total_amt              numeric,
    deposit_to_account_ref text,
    create_time            timestamptz,
    last_updated_time      timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_deposit_txn_date ON qbo_deposit (realm_id, txn_date);
CREATE INDEX qbo_deposit_last_updated ON qbo_deposit (realm_id, last_updated_time);

CREATE TABLE qbo_purchase (
    realm_id          text        NOT NULL,
    id                bigint      NOT NULL,
    gen               bigint      NOT NULL,
    cached_at         timestamptz NOT NULL DEFAULT now(),
    doc               text        NOT NULL,
    txn_date          date,
    total_amt         numeric,
    doc_number        text,
    payment_type      text,
    account_ref       text,
    entity_ref        text,
    create_time       timestamptz,
    last_updated_time timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_purchase_txn_date ON qbo_purchase (realm_id, txn_date);
CREATE INDEX qbo_purchase_last_updated ON qbo_purchase (realm_id, last_updated_time);

CREATE TABLE qbo_purchaseorder (
    realm_id          text        NOT NULL,
    id                bigint      NOT NULL,
    gen               bigint      NOT NULL,
    cached_at         timestamptz NOT NULL DEFAULT now(),
    doc               text        NOT NULL,
    txn_date          date,
    due_date          date,
    doc_number        text,
    create_time       timestamptz,
    last_updated_time timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_purchaseorder_txn_date ON qbo_purchaseorder (realm_id, txn_date);
CREATE INDEX qbo_purchaseorder_due_date ON qbo_purchaseorder (realm_id, due_date);
CREATE INDEX qbo_purchaseorder_last_updated ON qbo_purchaseorder (realm_id, last_updated_time);

CREATE TABLE qbo_journalentry (
    realm_id          text        NOT NULL,
    id                bigint      NOT NULL,
    gen               bigint      NOT NULL,
    cached_at         timestamptz NOT NULL DEFAULT now(),
    doc               text        NOT NULL,
    doc_number        text,
    txn_date          date,
    create_time       timestamptz,
    last_updated_time timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_journalentry_txn_date ON qbo_journalentry (realm_id, txn_date);
CREATE INDEX qbo_journalentry_last_updated ON qbo_journalentry (realm_id, last_updated_time);

CREATE TABLE qbo_vendorcredit (
    realm_id          text        NOT NULL,
    id                bigint      NOT NULL,
    gen               bigint      NOT NULL,
    cached_at         timestamptz NOT NULL DEFAULT now(),
    doc               text        NOT NULL,
    doc_number        text,
    ap_account_ref    text,
    txn_date          date,
    total_amt         numeric,
    create_time       timestamptz,
    last_updated_time timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_vendorcredit_txn_date ON qbo_vendorcredit (realm_id, txn_date);
CREATE INDEX qbo_vendorcredit_last_updated ON qbo_vendorcredit (realm_id, last_updated_time);

CREATE TABLE qbo_transfer (
    realm_id          text        NOT NULL,
    id                bigint      NOT NULL,
    gen               bigint      NOT NULL,
    cached_at         timestamptz NOT NULL DEFAULT now(),
    doc               text        NOT NULL,
    txn_date          date,
    amount            numeric,
    from_account_ref  text,
    to_account_ref    text,
    create_time       timestamptz,
    last_updated_time timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_transfer_txn_date ON qbo_transfer (realm_id, txn_date);
CREATE INDEX qbo_transfer_last_updated ON qbo_transfer (realm_id, last_updated_time);

CREATE TABLE qbo_timeactivity (
    realm_id          text        NOT NULL,
    id                bigint      NOT NULL,
    gen               bigint      NOT NULL,
    cached_at         timestamptz NOT NULL DEFAULT now(),
    doc               text        NOT NULL,
    txn_date          date,
    project_ref       text,
    billable_status   text,
    create_time       timestamptz,
    last_updated_time timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_timeactivity_txn_date ON qbo_timeactivity (realm_id, txn_date);
CREATE INDEX qbo_timeactivity_last_updated ON qbo_timeactivity (realm_id, last_updated_time);

CREATE TABLE qbo_attachable (
    realm_id          text        NOT NULL,
    id                bigint      NOT NULL,
    gen               bigint      NOT NULL,
    cached_at         timestamptz NOT NULL DEFAULT now(),
    doc               text        NOT NULL,
    file_name         text,
    note              text,
    category          text,
    content_type      text,
    tag               text,
    size              numeric,
    create_time       timestamptz,
    last_updated_time timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_attachable_last_updated ON qbo_attachable (realm_id, last_updated_time);

CREATE TABLE qbo_companyinfo (
    realm_id          text        NOT NULL,
    id                bigint      NOT NULL,
    gen               bigint      NOT NULL,
    cached_at         timestamptz NOT NULL DEFAULT now(),
    doc               text        NOT NULL,
    create_time       timestamptz,
    last_updated_time timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_companyinfo_last_updated ON qbo_companyinfo (realm_id, last_updated_time);

CREATE TABLE qbo_preferences (
    realm_id          text        NOT NULL,
    id                bigint      NOT NULL,
    gen               bigint      NOT NULL,
    cached_at         timestamptz NOT NULL DEFAULT now(),
    doc               text        NOT NULL,
    create_time       timestamptz,
    last_updated_time timestamptz,
    PRIMARY KEY (realm_id, id)
);
CREATE INDEX qbo_preferences_last_updated ON qbo_preferences (realm_id, last_updated_time);

