//! Files that set up a mail program: Apple's configuration profile (`.mobileconfig`, with a
//! device's password) and Thunderbird's autoconfig file (no secret: served without login).
//!
//! Both are XML written here by hand — small, fixed shapes — with every value escaped by
//! [`xml`]. Outgoing mail (submission) is only named once it exists (issue #14): until then
//! [`Site::submission`] is `None` and neither file has an outgoing server.

use crate::Site;

/// `s` escaped for XML text and attribute values (`& < > " '`).
#[must_use]
pub(crate) fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all are dropped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            '\u{FFFE}' | '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

impl Site {
    /// The submission port and whether it uses implicit TLS (`true`, port 465 style) or
    /// STARTTLS; `None` while ratspost has no submission (issue #14).
    #[must_use]
    pub fn submission(&self) -> Option<(u16, bool)> {
        self.submission_servers().into_iter().next()
    }

    /// Every submission port as (port, implicit TLS), implicit TLS first (RFC 8314 §3.3
    /// prefers it): autoconfig offers both, so a network that blocks one still works.
    #[must_use]
    pub fn submission_servers(&self) -> Vec<(u16, bool)> {
        self.submissions_port
            .map(|p| (p, true))
            .into_iter()
            .chain(self.submission_port.map(|p| (p, false)))
            .collect()
    }
}

/// A random UUID (version 4), upper-case as Apple writes them.
fn uuid() -> String {
    let hex = store::token::new().to_ascii_uppercase();
    // 32 hex digits, with the version (4) and variant (8–B) nibbles set.
    let variant = ["8", "9", "A", "B"][usize::from(hex.as_bytes()[16] % 4)];
    format!(
        "{}-{}-4{}-{}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        variant,
        &hex[17..20],
        &hex[20..32]
    )
}

/// What a .mobileconfig describes: one IMAP account.
pub(crate) struct Profile<'a> {
    /// The user's display name.
    pub(crate) name: &'a str,
    /// The user's login (the IMAP user name).
    pub(crate) login: &'a str,
    /// The user's mail address (the account's address in Mail).
    pub(crate) address: &'a str,
    /// The device's label.
    pub(crate) label: &'a str,
    /// The device's app password.
    pub(crate) password: &'a str,
}

/// The reverse-DNS prefix of the profile's identifiers, from the host name.
fn identifier(site: &Site) -> String {
    let mut parts: Vec<&str> = site.host.split('.').filter(|p| !p.is_empty()).collect();
    parts.reverse();
    let clean: String = parts
        .join(".")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .collect();
    format!("{clean}.ratspost")
}

/// An Apple configuration profile (XML plist) with a Mail payload (`com.apple.mail.managed`)
/// for `profile`: IMAP over implicit TLS on `site.imaps_port`, password authentication.
#[must_use]
pub(crate) fn mobileconfig(site: &Site, profile: &Profile<'_>) -> String {
    let s = |v: &str| format!("<string>{}</string>", xml(v));
    let mut mail = vec![
        (
            "EmailAccountDescription",
            s(&format!("{} ({})", site.host, profile.label)),
        ),
        ("EmailAccountName", s(profile.name)),
        ("EmailAccountType", s("EmailTypeIMAP")),
        ("EmailAddress", s(profile.address)),
        ("IncomingMailServerAuthentication", s("EmailAuthPassword")),
        ("IncomingMailServerHostName", s(&site.host)),
        (
            "IncomingMailServerPortNumber",
            format!("<integer>{}</integer>", site.imaps_port),
        ),
        ("IncomingMailServerUseSSL", "<true/>".to_owned()),
        ("IncomingMailServerUsername", s(profile.login)),
        ("IncomingPassword", s(profile.password)),
    ];
    if let Some((port, _)) = site.submission() {
        mail.extend([
            ("OutgoingMailServerAuthentication", s("EmailAuthPassword")),
            ("OutgoingMailServerHostName", s(&site.host)),
            (
                "OutgoingMailServerPortNumber",
                format!("<integer>{port}</integer>"),
            ),
            // Mail's "Use SSL" means TLS from the start or by STARTTLS; both are encrypted.
            ("OutgoingMailServerUseSSL", "<true/>".to_owned()),
            ("OutgoingMailServerUsername", s(profile.login)),
            (
                "OutgoingPasswordSameAsIncomingPassword",
                "<true/>".to_owned(),
            ),
        ]);
    }
    let id = identifier(site);
    let device_id = format!("{id}.mail.{}", uuid().to_ascii_lowercase());
    mail.extend([
        ("PayloadDisplayName", s(&format!("E-Mail ({})", site.host))),
        ("PayloadIdentifier", s(&device_id)),
        ("PayloadType", s("com.apple.mail.managed")),
        ("PayloadUUID", s(&uuid())),
        ("PayloadVersion", "<integer>1</integer>".to_owned()),
        ("PreventMove", "<false/>".to_owned()),
    ]);
    let dict = |entries: &[(&str, String)], indent: &str| -> String {
        entries
            .iter()
            .map(|(k, v)| format!("{indent}<key>{k}</key>\n{indent}{v}\n"))
            .collect()
    };
    let top = [
        (
            "PayloadDisplayName",
            s(&format!("ratspost: {}", profile.label)),
        ),
        (
            "PayloadIdentifier",
            s(&format!("{id}.profile.{}", uuid().to_ascii_lowercase())),
        ),
        ("PayloadRemovalDisallowed", "<false/>".to_owned()),
        ("PayloadType", s("Configuration")),
        ("PayloadUUID", s(&uuid())),
        ("PayloadVersion", "<integer>1</integer>".to_owned()),
    ];
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\">\n<dict>\n\t<key>PayloadContent</key>\n\t<array>\n\t\t<dict>\n{}\t\t</dict>\n\t</array>\n{}</dict>\n</plist>\n",
        dict(&mail, "\t\t\t"),
        dict(&top, "\t"),
    )
}

/// Thunderbird's autoconfig file (clientConfig 1.1) for `domain`: IMAP with TLS and with
/// STARTTLS, user name `%EMAILADDRESS%` (IMAP accepts any of the user's addresses as the user
/// name), password in clear over the encrypted connection.
#[must_use]
pub(crate) fn autoconfig(site: &Site, domain: &str) -> String {
    let host = xml(&site.host);
    let incoming = |port: u16, socket: &str| {
        format!(
            "    <incomingServer type=\"imap\">\n      <hostname>{host}</hostname>\n      <port>{port}</port>\n      <socketType>{socket}</socketType>\n      <username>%EMAILADDRESS%</username>\n      <authentication>password-cleartext</authentication>\n    </incomingServer>\n"
        )
    };
    let outgoing: String = site
        .submission_servers()
        .into_iter()
        .map(|(port, implicit)| {
            let socket = if implicit { "SSL" } else { "STARTTLS" };
            format!(
                "    <outgoingServer type=\"smtp\">\n      <hostname>{host}</hostname>\n      <port>{port}</port>\n      <socketType>{socket}</socketType>\n      <username>%EMAILADDRESS%</username>\n      <authentication>password-cleartext</authentication>\n    </outgoingServer>\n"
            )
        })
        .collect();
    let domains: String = site
        .domains
        .iter()
        .map(|d| format!("    <domain>{}</domain>\n", xml(d)))
        .collect();
    let domain = xml(domain);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n  <emailProvider id=\"{domain}\">\n{domains}    <displayName>{host}</displayName>\n    <displayShortName>{domain}</displayShortName>\n{}{}{outgoing}  </emailProvider>\n</clientConfig>\n",
        incoming(site.imaps_port, "SSL"),
        incoming(site.imap_port, "STARTTLS"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        Site {
            host: "mail.stadt.example".to_owned(),
            imap_port: 143,
            imaps_port: 993,
            submissions_port: None,
            submission_port: None,
            domains: vec!["stadt.example".to_owned()],
            web_origin: "https://mail.stadt.example".to_owned(),
        }
    }

    #[test]
    fn xml_escapes_markup_and_drops_what_xml_cannot_carry() {
        assert_eq!(xml("a&b<c>\"d'"), "a&amp;b&lt;c&gt;&quot;d&apos;");
        assert_eq!(xml("x\u{0}y\u{1b}z\n"), "xyz\n");
    }

    #[test]
    fn uuids_are_version_4_and_distinct() {
        let (a, b) = (uuid(), uuid());
        assert_ne!(a, b);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4') && "89AB".contains(&parts[3][..1]));
    }

    #[test]
    fn the_profile_escapes_labels_and_has_no_outgoing_server_without_submission() {
        let p = mobileconfig(
            &site(),
            &Profile {
                name: "Anna <Schmidt> & Co",
                login: "anna",
                address: "anna@stadt.example",
                label: "iPad \"Büro\" & <Home>",
                password: "pw&<>",
            },
        );
        assert!(
            p.contains("iPad &quot;Büro&quot; &amp; &lt;Home&gt;"),
            "{p}"
        );
        assert!(p.contains("<string>pw&amp;&lt;&gt;</string>"));
        assert!(!p.contains("Outgoing"));
        let with = Site {
            submissions_port: Some(465),
            ..site()
        };
        let p = mobileconfig(
            &with,
            &Profile {
                name: "A",
                login: "a",
                address: "a@stadt.example",
                label: "x",
                password: "y",
            },
        );
        assert!(
            p.contains("<key>OutgoingMailServerPortNumber</key>\n\t\t\t<integer>465</integer>")
        );
    }

    #[test]
    fn autoconfig_names_both_submission_ports_implicit_tls_first() {
        let site = Site {
            submissions_port: Some(465),
            submission_port: Some(587),
            ..site()
        };
        let x = autoconfig(&site, "stadt.example");
        let ssl = x
            .find("<port>465</port>\n      <socketType>SSL</socketType>")
            .expect("465");
        let starttls = x
            .find("<port>587</port>\n      <socketType>STARTTLS</socketType>")
            .expect("587");
        assert!(ssl < starttls, "{x}");
        assert_eq!(x.matches("<outgoingServer").count(), 2, "{x}");
    }

    #[test]
    fn autoconfig_names_both_imap_ports() {
        let x = autoconfig(&site(), "stadt.example");
        assert!(x.contains("<emailProvider id=\"stadt.example\">"));
        assert!(x.contains("<port>993</port>\n      <socketType>SSL</socketType>"));
        assert!(x.contains("<port>143</port>\n      <socketType>STARTTLS</socketType>"));
        assert!(!x.contains("outgoingServer"));
    }
}
