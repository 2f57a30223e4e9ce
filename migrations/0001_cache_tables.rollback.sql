DROP TABLE qbo_payment;
DROP TABLE qbo_invoice;
DROP TABLE qbo_customer;
DROP TABLE qbo_table_state;
