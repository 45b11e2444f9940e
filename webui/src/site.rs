//! Where mail clients find the server: the host name and ports shown in the setup
//! instructions and written into the .mobileconfig and the Thunderbird autoconfig file.

/// Server names and ports for mail clients (from `[smtp] hostname`, `[imap]`, `[web]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// Host name clients connect to (the TLS certificate's name).
    pub host: String,
    /// IMAP port with STARTTLS (RFC 9051 §6.2.1, usually 143).
    pub imap_port: u16,
    /// IMAP port with implicit TLS (RFC 8314 §3, usually 993).
    pub imaps_port: u16,
    /// Submission port with implicit TLS (RFC 8314 §3, usually 465), once submission exists.
    pub submissions_port: Option<u16>,
    /// Submission port with STARTTLS (RFC 6409, usually 587), once submission exists.
    pub submission_port: Option<u16>,
    /// The mail domains ratspost serves (`[smtp] local_domains`), for autoconfig.
    pub domains: Vec<String>,
    /// This web UI's own origin, `https://host[:port]`, for links in mails.
    pub web_origin: String,
}
