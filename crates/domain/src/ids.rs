//! Identifiers: the opaque ids this service mints (SPEC §2) and the client ids of callers.

use std::fmt;

use thiserror::Error;

/// Number of characters of every id this service mints: 160 bits in base32hex.
pub const ID_LEN: usize = 32;

/// The id in a path or a request cannot be one this service minted.
///
/// Handlers answer it exactly like an unknown id (404 / 410), never 400 (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("not an id minted by this service: ids are {ID_LEN} characters of [0-9a-v]")]
pub struct MalformedId;

fn is_minted_shape(s: &str) -> bool {
    s.len() == ID_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'v'))
}

/// RFC 4648 §7 base32hex, lowercase, without padding: 20 bytes become 32 characters.
fn encode_base32hex(bits: [u8; 20]) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut out = String::with_capacity(ID_LEN);
    for chunk in bits.chunks_exact(5) {
        let n = chunk.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        for i in (0..8).rev() {
            out.push(char::from(ALPHABET[((n >> (i * 5)) & 31) as usize]));
        }
    }
    out
}

macro_rules! minted_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Parses an id received from a client or read back from storage.
            ///
            /// # Errors
            /// [`MalformedId`] unless `s` is exactly 32 characters of the lowercase
            /// base32hex alphabet `[0-9a-v]` (SPEC §2).
            pub fn parse(s: &str) -> Result<Self, MalformedId> {
                if is_minted_shape(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(MalformedId)
                }
            }

            /// Builds the id from 160 random bits (a CSPRNG's output, see
            /// [`crate::ports::IdGenerator`]), encoded as 32 characters of base32hex.
            #[must_use]
            pub fn from_random(bits: [u8; 20]) -> Self {
                Self(encode_base32hex(bits))
            }

            /// The id as the 32-character string clients see.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

minted_id!(
    /// Id of a document signature process (`signature_process_id` of the eSignSP v2 API).
    ProcessId
);
minted_id!(
    /// Id of a document resource (eSignSP v2 `documents/{id}`).
    DocumentId
);
minted_id!(
    /// Id of the pending `UserBrowserTask` of a process (`tasks.pending[].id`).
    TaskId
);
minted_id!(
    /// Id of the stored bytes of a document (its chunks, SPEC §8.6): minted when an upload
    /// is staged or a signature replaces the bytes, so that a reader that started on the
    /// bytes before the replacement never gets a mixture of both.
    ContentId
);
minted_id!(
    /// Id of a webhook endpoint (SPEC §11, `webhook_endpoints/{id}`).
    EndpointId
);
minted_id!(
    /// Id of a webhook message: the `webhook-id` header of every delivery of one event to one
    /// endpoint (Standard Webhooks §"Webhook identifier"), stable across retries and replays
    /// so that receivers can drop duplicates.
    MessageId
);

/// Maximum length, in bytes, of a client id taken from an access token.
pub const CLIENT_ID_MAX_BYTES: usize = 255;

/// The OAuth 2.0 client a request acts for: the access token's `client_id` claim
/// (RFC 9068 §2.2), else `sub`. Processes belong to the client that created them.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(String);

/// A client id that cannot be stored: empty, longer than [`CLIENT_ID_MAX_BYTES`] or holding
/// a control character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("client id must be 1 to {CLIENT_ID_MAX_BYTES} bytes without control characters")]
pub struct InvalidClientId;

impl ClientId {
    /// Parses a client id.
    ///
    /// # Errors
    /// [`InvalidClientId`] when `s` is empty, longer than 255 bytes or has a control character.
    pub fn parse(s: &str) -> Result<Self, InvalidClientId> {
        if s.is_empty() || s.len() > CLIENT_ID_MAX_BYTES || s.chars().any(char::is_control) {
            Err(InvalidClientId)
        } else {
            Ok(Self(s.to_owned()))
        }
    }

    /// The client id as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_minted_id_parses_and_displays_unchanged() {
        let id = ProcessId::parse("hrcmc4pr78dt4s35jlbi4nmdrler4nn2").expect("valid id");
        assert_eq!(id.to_string(), "hrcmc4pr78dt4s35jlbi4nmdrler4nn2");
    }

    #[test]
    fn ids_of_other_shapes_are_rejected() {
        for (input, why) in [
            ("", "empty"),
            ("hrcmc4pr78dt4s35jlbi4nmdrler4nn", "31 characters"),
            ("hrcmc4pr78dt4s35jlbi4nmdrler4nn22", "33 characters"),
            ("HRCMC4PR78DT4S35JLBI4NMDRLER4NN2", "upper case"),
            ("hrcmc4pr78dt4s35jlbi4nmdrler4nnw", "w is outside base32hex"),
            ("hrcmc4pr78dt4s35jlbi4nmdrler4n\0a", "NUL"),
            ("' or 1=1 --aaaaaaaaaaaaaaaaaaaaa", "SQL text"),
            ("hrcmc4pr78dt4s35jlbi4nmdrler4né", "non-ASCII"),
        ] {
            assert_eq!(ProcessId::parse(input), Err(MalformedId), "{why}");
        }
    }

    #[test]
    fn client_ids_must_be_printable_and_bounded() {
        assert!(ClientId::parse("relying-app").is_ok());
        assert!(ClientId::parse("").is_err(), "empty");
        assert!(ClientId::parse("a\nb").is_err(), "newline");
        assert!(ClientId::parse(&"a".repeat(256)).is_err(), "too long");
    }

    #[test]
    fn random_bits_encode_as_rfc4648_base32hex() {
        // RFC 4648 §10 test vector "foobar" in base32hex is CPNMUOJ1E8======; here padded
        // to 20 bytes with zeros and lower-cased.
        let mut bits = [0u8; 20];
        bits[..5].copy_from_slice(b"fooba");
        assert_eq!(ProcessId::from_random(bits).as_str(), "cpnmuoj1000000000000000000000000");
        assert_eq!(ProcessId::from_random([0xff; 20]).as_str(), "v".repeat(32));
    }

    proptest! {
        #[test]
        fn random_ids_always_parse(bits in proptest::array::uniform20(any::<u8>())) {
            let id = TaskId::from_random(bits);
            prop_assert_eq!(TaskId::parse(id.as_str()), Ok(id));
        }

        #[test]
        fn parse_accepts_exactly_the_minted_alphabet(s in "\\PC{0,40}") {
            let expected = s.len() == 32 && s.chars().all(|c| c.is_ascii_digit() || ('a'..='v').contains(&c));
            prop_assert_eq!(ProcessId::parse(&s).is_ok(), expected);
        }

        #[test]
        fn every_minted_shape_round_trips(s in "[0-9a-v]{32}") {
            let id = DocumentId::parse(&s).expect("minted shape");
            prop_assert_eq!(id.as_str(), s.as_str());
        }
    }
}
