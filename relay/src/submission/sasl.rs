//! SASL responses of AUTH (RFC 4954 §4): base64 lines, PLAIN's `authzid NUL authcid NUL
//! passwd` (RFC 4616 §2) and LOGIN's user name and password lines. No I/O.

use base64::Engine as _;

/// The mechanisms offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 4616.
    Plain,
    /// The LOGIN mechanism (draft-murchison-sasl-login): user name, then password.
    Login,
}

impl Mechanism {
    /// The mechanism smtp-proto parsed (its `AUTH_*` flags), if offered.
    #[must_use]
    pub fn from_flags(flags: u64) -> Option<Self> {
        match flags {
            smtp_proto::AUTH_PLAIN => Some(Self::Plain),
            smtp_proto::AUTH_LOGIN => Some(Self::Login),
            _ => None,
        }
    }
}

/// Why a response is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// The client sent `*` (RFC 4954 §4).
    #[error("cancelled")]
    Cancelled,
    /// Not base64.
    #[error("not base64")]
    Base64,
    /// Not UTF-8, or not the mechanism's shape.
    #[error("malformed")]
    Malformed,
}

/// A PLAIN response (RFC 4616 §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plain {
    /// The identity to act as, when the client named one (it must turn out to be the user
    /// the name names: nobody may act as somebody else).
    pub authzid: Option<String>,
    /// The user name.
    pub name: String,
    /// The password.
    pub password: String,
}

/// Decodes one response line (`=` is the empty response, RFC 4954 §4).
///
/// # Errors
/// `Cancelled` for `*`, `Base64` for anything that is not padded standard base64.
pub fn decode(line: &str) -> Result<Vec<u8>, SaslError> {
    let line = line.trim();
    match line {
        "*" => Err(SaslError::Cancelled),
        "=" => Ok(Vec::new()),
        _ => base64::engine::general_purpose::STANDARD
            .decode(line)
            .map_err(|_| SaslError::Base64),
    }
}

/// A decoded response as text (LOGIN's lines).
///
/// # Errors
/// `Malformed` when it is not UTF-8, is empty or holds a NUL.
pub fn text(bytes: Vec<u8>) -> Result<String, SaslError> {
    let text = String::from_utf8(bytes).map_err(|_| SaslError::Malformed)?;
    if text.is_empty() || text.contains('\0') {
        return Err(SaslError::Malformed);
    }
    Ok(text)
}

/// The parts of a PLAIN response.
///
/// # Errors
/// `Malformed` when the shape is wrong, or a part is not UTF-8, or the user name or password
/// is empty.
pub fn plain(response: &[u8]) -> Result<Plain, SaslError> {
    let mut parts = response.split(|&b| b == 0);
    let (Some(authzid), Some(name), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    Ok(Plain {
        authzid: if authzid.is_empty() {
            None
        } else {
            Some(text(authzid.to_vec())?)
        },
        name: text(name.to_vec())?,
        password: text(password.to_vec())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_responses() {
        let pair = |p: Plain| (p.authzid, p.name, p.password);
        let b = decode("AGFubmEAZ2VoZWlt").expect("base64");
        assert_eq!(
            plain(&b).map(pair),
            Ok((None, "anna".into(), "geheim".into()))
        );
        let b = decode("YW5uYQBhbm5hAGdlaGVpbQ==").expect("base64");
        assert_eq!(
            plain(&b).map(pair),
            Ok((Some("anna".into()), "anna".into(), "geheim".into()))
        );
        // Whether an authorization identity is allowed is for the session to decide.
        assert_eq!(
            plain(b"buergermeister\0anna\0geheim").map(|p| p.authzid),
            Ok(Some("buergermeister".into()))
        );
        for bad in [&b""[..], b"\0anna", b"\0\0pw", b"\0anna\0", b"\0a\0b\0c"] {
            assert_eq!(plain(bad), Err(SaslError::Malformed), "{bad:?}");
        }
        assert_eq!(decode("*"), Err(SaslError::Cancelled));
        assert_eq!(decode("=").map(|v| v.len()), Ok(0));
        assert_eq!(decode("not base64!"), Err(SaslError::Base64));
    }

    #[test]
    fn login_lines() {
        assert_eq!(decode("YW5uYQ==").and_then(text), Ok("anna".to_owned()));
        assert_eq!(decode("=").and_then(text), Err(SaslError::Malformed));
    }

    proptest! {
        /// Whatever a client sends, decoding answers and never panics; a PLAIN response
        /// built from a user name and password gives them back.
        #[test]
        fn any_line_is_answered(line in "\\PC{0,200}") {
            let _ = decode(&line).map(|b| plain(&b));
        }

        #[test]
        fn plain_round_trips(user in "[^\\x00]{1,40}", password in "[^\\x00]{1,40}") {
            let wire = base64::engine::general_purpose::STANDARD
                .encode(format!("\0{user}\0{password}"));
            let bytes = decode(&wire).expect("base64");
            prop_assert_eq!(
                plain(&bytes),
                Ok(Plain { authzid: None, name: user, password })
            );
        }
    }
}
