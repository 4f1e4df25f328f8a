//! Root tests of record, report and serve.
