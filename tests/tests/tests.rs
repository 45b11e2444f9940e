//! End-to-end tests: the real daemon on ephemeral loopback ports, spoken to over TCP (and
//! TLS) by our own raw client and by real external clients.
//!
//! One test binary (`autotests = false`), one module per area.

mod accounts;
mod admin_pages;
mod audit;
mod backup;
mod browser;
mod classify;
mod cli;
mod clients;
mod crash;
mod delivery;
mod exemption;
mod exemption_web;
mod forward;
mod imap;
mod imap_binary;
mod imap_dos;
mod imap_sort;
mod multinode;
mod nothing_leaves;
mod ocr;
mod packaging;
mod pipeline;
mod readme;
mod retention;
mod smtp;
mod story;
mod submission;
mod viewer;
mod viewer_browser;
mod web_errors;
mod web_limits;
