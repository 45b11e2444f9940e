//! The IMAP server for staff devices.
//!
//! - `framing.rs`: commands cut from the byte stream, literals and the state's limits
//!   checked before `+` (sans I/O); `quirks.rs`: client quirks mended in a whole command;
//!   `extended.rs`: ESEARCH, MULTIAPPEND and LIST-EXTENDED, which imap-codec does not parse.
//! - `driver.rs`: imap-next's state machine (parsing the rest, encoding every answer) over
//!   any async stream, fed whole commands.
//! - `envelope.rs`: RFC 5322 address lists for ENVELOPE and SORT (groups, source routes).
//! - `session/`: the IMAP state machine (`mod.rs`) and a file per command family.
//! - `message.rs`: header/text/fields/partial of the bytes an entry serves.
//! - `mime.rs`: MIME structure for BODYSTRUCTURE, ENVELOPE and numbered sections.
//! - `binary.rs`: `BINARY[...]` sections with the transfer encoding undone (RFC 3516).
//! - `deflate.rs`: the stream after `COMPRESS DEFLATE` (RFC 4978).
//! - `sequence.rs`: sequence and UID sets as ranges (never expanded).
//! - `utf7.rs`: modified UTF-7 mailbox names.
//! - `base_subject.rs`: RFC 5256's base subject and the i;unicode-casemap comparator form.
//! - `sortable.rs`: the SORT and THREAD keys of a message header.
//! - `threading.rs`: THREAD=ORDEREDSUBJECT and THREAD=REFERENCES on plain data.
//! - `gate.rs`: bounded blocking pools for hashing and heavy commands.
//! - `listener.rs`: implicit TLS and STARTTLS listeners with connection limits.

pub mod base_subject;
pub mod binary;
pub mod deflate;
pub mod driver;
pub mod envelope;
pub mod extended;
pub mod framing;
pub mod gate;
pub mod listener;
pub mod message;
pub mod mime;
pub mod quirks;
pub mod sequence;
pub mod session;
pub mod sortable;
pub mod threading;
pub mod utf7;
