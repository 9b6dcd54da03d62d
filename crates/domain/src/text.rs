//! The one check every client text passes before it can reach a store (SPEC §2).
//!
//! Part names, file names (`filename` and RFC 8187 `filename*`), media types, result
//! messages, and every string and object key of a stored JSON member (the process JSON,
//! `signers`) are [`Text`]: valid UTF-8, no U+0000, and at most the limit of their
//! [`TextKind`], counted in Unicode scalar values. PostgreSQL cannot store U+0000 in `text`
//! or `jsonb` while SQLite can, so the rule belongs to the domain: both stores then receive
//! only texts they both keep unchanged. A refused text answers 400 naming where it was
//! ([`InvalidText`]).

use std::fmt;
use std::ops::Deref;

use serde_json::Value;
use thiserror::Error;

/// What is wrong with a text a client sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TextDefect {
    /// The bytes are not UTF-8 (RFC 3629).
    #[error("is not valid UTF-8")]
    InvalidUtf8,
    /// The text holds U+0000, which no client means and PostgreSQL cannot store.
    #[error("must not contain a NUL character")]
    Nul,
    /// The text is longer than its kind allows.
    #[error("is longer than {max_chars} characters")]
    TooLong {
        /// The limit, in Unicode scalar values.
        max_chars: usize,
    },
}

impl TextDefect {
    /// The defect found in `field` (a description such as "the `document` part #1's
    /// filename*" or "process member signer.parameters.page").
    #[must_use]
    pub fn at(self, field: impl Into<String>) -> InvalidText {
        InvalidText { field: field.into(), defect: self }
    }
}

/// A refused text and where it was: its `Display` is the problem document's `detail`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field} {defect}")]
pub struct InvalidText {
    /// Where the text was.
    pub field: String,
    /// What is wrong with it.
    pub defect: TextDefect,
}

/// The kinds of stored text, each with its length limit ([`TextKind::max_chars`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// The `name` of a multipart part (RFC 7578 §4.2): 255.
    PartName,
    /// A file name from `filename` or `filename*` (RFC 6266 §4.3, RFC 8187): 1024.
    FileName,
    /// A media type (RFC 6838 §4.2: type and subtype of at most 127 characters each): 255.
    MediaType,
    /// `details.message` of a result (SPEC §4): 4096.
    Message,
    /// A URI such as `finish_callback_url` (RFC 9110 §4.1 asks for at least 8000 octets): 8000.
    Uri,
    /// Any other string or object key of a stored JSON member: 65536.
    JsonString,
}

impl TextKind {
    /// The longest text of this kind, in Unicode scalar values.
    #[must_use]
    pub const fn max_chars(self) -> usize {
        match self {
            Self::PartName | Self::MediaType => 255,
            Self::FileName => 1024,
            Self::Message => 4096,
            Self::Uri => 8000,
            Self::JsonString => 65_536,
        }
    }
}

/// Checks `s` against the rule for `kind`.
///
/// # Errors
/// [`TextDefect::Nul`] when it holds U+0000, [`TextDefect::TooLong`] beyond
/// [`TextKind::max_chars`].
pub fn check(kind: TextKind, s: &str) -> Result<(), TextDefect> {
    if s.contains('\0') {
        return Err(TextDefect::Nul);
    }
    let max_chars = kind.max_chars();
    // A UTF-8 string has at least as many bytes as characters: count only when needed.
    if s.len() > max_chars && s.chars().count() > max_chars {
        return Err(TextDefect::TooLong { max_chars });
    }
    Ok(())
}

/// A client text that may be stored: valid UTF-8, without U+0000, within its kind's limit.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Text(String);

impl Text {
    /// Accepts `s` as a text of `kind`.
    ///
    /// # Errors
    /// As [`check`].
    pub fn new(kind: TextKind, s: impl Into<String>) -> Result<Self, TextDefect> {
        let s = s.into();
        check(kind, &s)?;
        Ok(Self(s))
    }

    /// Accepts UTF-8 `bytes` as a text of `kind`.
    ///
    /// # Errors
    /// [`TextDefect::InvalidUtf8`], or as [`check`].
    pub fn from_utf8(kind: TextKind, bytes: Vec<u8>) -> Result<Self, TextDefect> {
        Self::new(kind, String::from_utf8(bytes).map_err(|_| TextDefect::InvalidUtf8)?)
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// Checks every object key and string of a JSON member at any depth: keys and strings as
/// [`TextKind::JsonString`], or as `kind` for a member that is itself a string (e.g.
/// [`TextKind::Uri`] for `finish_callback_url`). `member` names the member.
///
/// # Errors
/// [`InvalidText`] whose field is the path of the first offending text, such as
/// `signer.parameters.signature_field.page` or `labels[0][1]`.
pub fn check_json(member: &str, kind: TextKind, value: &Value) -> Result<(), InvalidText> {
    let mut path = Vec::new();
    walk(kind, value, &mut path).map_err(|defect| defect.at(format_path(member, &path)))
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn walk<'a>(kind: TextKind, value: &'a Value, path: &mut Vec<Segment<'a>>) -> Result<(), TextDefect> {
    match value {
        Value::String(s) => check(kind, s),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Segment::Index(i));
                walk(TextKind::JsonString, item, path)?;
                path.pop();
            }
            Ok(())
        }
        Value::Object(members) => {
            for (key, item) in members {
                path.push(Segment::Key(key));
                check(TextKind::JsonString, key)?;
                walk(TextKind::JsonString, item, path)?;
                path.pop();
            }
            Ok(())
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

/// `member.key[0]["odd key"]`: plain keys after a dot, others quoted and escaped, each
/// shortened to 64 characters so that a huge or hostile key cannot flood the answer.
fn format_path(member: &str, path: &[Segment<'_>]) -> String {
    use std::fmt::Write;
    let mut out = member.to_owned();
    for segment in path {
        match segment {
            Segment::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
            Segment::Key(key) => {
                let shown: String = key.chars().take(64).collect();
                if !shown.is_empty() && shown.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                    let _ = write!(out, ".{shown}");
                } else {
                    let _ = write!(out, "[{shown:?}]");
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn nul_invalid_utf8_and_overlong_texts_are_refused() {
        assert_eq!(Text::new(TextKind::FileName, "a\0b.pdf"), Err(TextDefect::Nul));
        assert_eq!(Text::new(TextKind::FileName, "\0"), Err(TextDefect::Nul));
        assert_eq!(Text::from_utf8(TextKind::FileName, b"a\xffb".to_vec()), Err(TextDefect::InvalidUtf8));
        assert_eq!(Text::from_utf8(TextKind::FileName, b"\xc3\x28".to_vec()), Err(TextDefect::InvalidUtf8));
        assert_eq!(
            Text::new(TextKind::PartName, "n".repeat(256)),
            Err(TextDefect::TooLong { max_chars: 255 }),
            "one over the limit"
        );
        assert!(Text::new(TextKind::FileName, "😀".repeat(1024)).is_ok(), "the limit counts characters, not bytes");
        assert!(Text::new(TextKind::FileName, "\u{1}\u{1f}\u{7f}\u{feff}\u{10ffff}").is_ok(), "only NUL is refused");
        assert_eq!(
            Text::from_utf8(TextKind::FileName, "Vertrag-ä.pdf".into()).map(Text::into_string),
            Ok("Vertrag-ä.pdf".to_owned())
        );
    }

    #[test]
    fn json_checks_reach_every_key_and_string_and_name_the_path() {
        for (value, path) in [
            (json!({"parameters": {"signature_field": {"page": "a\u{0}"}}}), "signer.parameters.signature_field.page"),
            (json!([["ok", "x\u{0}"]]), "signer[0][1]"),
            (json!({"a\u{0}b": 1}), "signer[\"a\\0b\"]"),
            (json!({"ok": [{"deep": ["\u{0}"]}]}), "signer.ok[0].deep[0]"),
        ] {
            let err = check_json("signer", TextKind::JsonString, &value).expect_err(path);
            assert_eq!(err, TextDefect::Nul.at(path), "{value}");
        }
        let long = json!({"k": "x".repeat(65_537)});
        assert_eq!(
            check_json("views", TextKind::JsonString, &long),
            Err(TextDefect::TooLong { max_chars: 65_536 }.at("views.k"))
        );
        assert_eq!(
            check_json("finish_callback_url", TextKind::Uri, &json!("x".repeat(8001))),
            Err(TextDefect::TooLong { max_chars: 8000 }.at("finish_callback_url"))
        );
        assert!(check_json("signer", TextKind::JsonString, &json!({"n": 1, "b": true, "z": null, "s": "é"})).is_ok());
    }

    #[test]
    fn paths_of_hostile_keys_are_escaped_and_short() {
        let key = format!("{}\n", "k".repeat(500));
        let err = check_json("views", TextKind::JsonString, &json!({ key: "\u{0}" })).expect_err("nul");
        assert!(err.field.len() < 100, "{}", err.field);
        assert!(!err.field.contains('\n'), "{}", err.field);
    }

    proptest! {
        #[test]
        fn a_text_is_accepted_exactly_when_it_has_no_nul_and_fits(s in "\\PC{0,300}|[\\x00-\\x7f]{0,300}") {
            let expected = !s.contains('\0') && s.chars().count() <= 255;
            prop_assert_eq!(Text::new(TextKind::MediaType, s.clone()).is_ok(), expected);
            if let Ok(t) = Text::from_utf8(TextKind::MediaType, s.clone().into_bytes()) {
                prop_assert_eq!(t.as_str(), s.as_str());
            }
        }

        #[test]
        fn from_utf8_accepts_exactly_utf8(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let expected = std::str::from_utf8(&bytes).is_ok_and(|s| !s.contains('\0'));
            prop_assert_eq!(Text::from_utf8(TextKind::FileName, bytes).is_ok(), expected);
        }
    }
}
