//! The ratspost web UI for admins, staff and the data-protection officer.
//!
//! Not built yet: the exemption, device and audit pages and the notice-link viewer come with
//! their issues. The crate exists from the start so the dependency rule holds from the first
//! commit — webui depends on store (and classifier), never on relay.
