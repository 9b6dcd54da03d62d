//! Logging with `tracing`, initialised once: text or JSON lines (`log.format`), filtered by
//! `RUST_LOG` or `log.level`.
//!
//! actix-http logs every connection it ends on a malformed request head (a NUL in a header,
//! an invalid URI character, an unknown HTTP version, a head over its 128 KiB buffer, ...)
//! as an `ERROR` ("stream error: request parse error: ..."), before any handler runs. Those
//! are the client's mistakes, answered 400 or 431: [`ClientErrors`] takes them out of the
//! error log, counts them by kind in `esignsp_http_client_errors_total{kind}` (see
//! [`crate::metrics::CLIENT_ERRORS`]), and logs them at `WARN`, at most once per
//! [`CLIENT_ERROR_LOG_INTERVAL`] and kind, with the number left unlogged since.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, LogSettings};
use crate::metrics::CLIENT_ERRORS;

/// Installs the global subscriber. Calling it again does nothing.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},sqlx::postgres::notice=warn", settings.level)));
    // sqlx logs the value of every connection-URL parameter it does not know (`sslpassword=…`
    // included): never, whatever the level asked for.
    let filter = match "sqlx_postgres::options::parse=error".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    let fmt = if settings.format == LogFormat::Json {
        fmt.json().flatten_event(true).with_current_span(true).boxed()
    } else {
        fmt.boxed()
    };
    let _ = tracing_subscriber::registry().with(filter).with(fmt).with(ClientErrors::default()).try_init();
}

/// Shortest time between two `WARN` lines of one kind of client error.
pub const CLIENT_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// What one actix-http log event says about the connection it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionFailure {
    /// The client's fault, of this kind (the `kind` label of the metric).
    Client(&'static str),
    /// The client's fault, already reported by another event of the same connection: hidden,
    /// not counted again.
    ClientRepeated,
}

/// Every kind [`classify`] reports, so that each shows in `/metrics` from the start.
pub const CLIENT_ERROR_KINDS: [&str; 12] = [
    "method",
    "uri",
    "version",
    "header",
    "head_too_large",
    "incomplete",
    "utf8",
    "head_timeout",
    "io",
    "parse_other",
    "slow_request",
    "shutdown_timeout",
];

/// Classifies an `ERROR` event of actix-http by its target and message; `None` for
/// anything that is not plainly the client's fault (service, body or internal errors stay
/// `ERROR`). Kinds: `method`, `uri`, `version`, `header`, `head_too_large`, `incomplete`,
/// `utf8`, `head_timeout`, `io`, `parse_other`, `slow_request`, `shutdown_timeout`.
#[must_use]
pub fn classify(target: &str, message: &str) -> Option<ConnectionFailure> {
    if !target.starts_with("actix_http::") {
        return None;
    }
    if message.starts_with("MAX_BUFFER_SIZE unprocessed data reached") || message.starts_with("write zero") {
        return Some(ConnectionFailure::ClientRepeated);
    }
    let error = message.strip_prefix("stream error: ")?;
    let kind = if let Some(parse) = error.strip_prefix("request parse error: ") {
        match parse {
            "invalid method specified" => "method",
            "invalid HTTP version specified" => "version",
            "invalid Header provided" => "header",
            "message head is too large" => "head_too_large",
            "message is incomplete" => "incomplete",
            "timeout" => "head_timeout",
            p if p.starts_with("URI error") => "uri",
            p if p.starts_with("UTF-8 error") => "utf8",
            p if p.starts_with("I/O error") => "io",
            _ => "parse_other",
        }
    } else if error.starts_with("I/O error") {
        "io"
    } else if error == "request did not complete within the specified timeout" {
        "slow_request"
    } else if error == "connection shutdown timeout" {
        "shutdown_timeout"
    } else {
        return None;
    };
    Some(ConnectionFailure::Client(kind))
}

/// The layer that turns actix-http's `ERROR` lines about client mistakes into a counter and a
/// rate-limited `WARN` (see the module documentation).
#[derive(Debug, Default)]
pub struct ClientErrors {
    windows: Mutex<HashMap<&'static str, Window>>,
}

#[derive(Debug)]
struct Window {
    logged_at: Instant,
    unlogged: u64,
}

impl ClientErrors {
    /// Counts one client error of `kind`; returns `Some(unlogged)` when it should be logged
    /// now (`unlogged`: how many of that kind were counted since the last line without one).
    fn admit(&self, kind: &'static str, now: Instant) -> Option<u64> {
        let mut windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match windows.get_mut(kind) {
            Some(w) if now.duration_since(w.logged_at) < CLIENT_ERROR_LOG_INTERVAL => {
                w.unlogged += 1;
                None
            }
            Some(w) => {
                let unlogged = std::mem::take(&mut w.unlogged);
                w.logged_at = now;
                Some(unlogged)
            }
            None => {
                windows.insert(kind, Window { logged_at: now, unlogged: 0 });
                Some(0)
            }
        }
    }
}

#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.0);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: Subscriber> Layer<S> for ClientErrors {
    /// Hides client errors from every layer (so from the log), after counting them and, at
    /// most once per interval and kind, logging one `WARN` line in their place.
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        let metadata = event.metadata();
        if *metadata.level() != Level::ERROR || !metadata.target().starts_with("actix_http::") {
            return true;
        }
        let mut message = Message::default();
        event.record(&mut message);
        match classify(metadata.target(), &message.0) {
            None => true,
            Some(ConnectionFailure::ClientRepeated) => false,
            Some(ConnectionFailure::Client(kind)) => {
                CLIENT_ERRORS.with_label_values(&[kind]).inc();
                if let Some(unlogged) = self.admit(kind, Instant::now()) {
                    tracing::warn!(
                        kind,
                        unlogged,
                        error = %message.0,
                        "connection closed on a malformed request (client error; counted in esignsp_http_client_errors_total)"
                    );
                }
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actix_http_parse_errors_are_the_clients_and_service_errors_are_not() {
        let h1 = "actix_http::h1::dispatcher";
        for (target, message, expected) in [
            (h1, "stream error: request parse error: invalid Header provided", Some("header")),
            (h1, "stream error: request parse error: URI error: invalid uri character", Some("uri")),
            (h1, "stream error: request parse error: invalid HTTP version specified", Some("version")),
            (h1, "stream error: request parse error: message head is too large", Some("head_too_large")),
            (h1, "stream error: request parse error: invalid method specified", Some("method")),
            (h1, "stream error: I/O error: Connection reset by peer (os error 104)", Some("io")),
            (h1, "stream error: request did not complete within the specified timeout", Some("slow_request")),
            (h1, "stream error: service error", None),
            (h1, "stream error: body error: boom", None),
            (h1, "stream error: handler dropped payload before reading EOF", None),
            (h1, "stream error: internal error", None),
            (h1, "Response payload stream error: x", None),
            ("esignsp_api::error", "stream error: request parse error: invalid Header provided", None),
        ] {
            let kind = match classify(target, message) {
                Some(ConnectionFailure::Client(kind)) => Some(kind),
                _ => None,
            };
            assert_eq!(kind, expected, "{message}");
        }
        assert_eq!(
            classify("actix_http::h1::decoder", "MAX_BUFFER_SIZE unprocessed data reached, closing"),
            Some(ConnectionFailure::ClientRepeated)
        );
    }

    #[test]
    fn one_line_per_kind_and_interval_with_the_count_left_unlogged() {
        let layer = ClientErrors::default();
        let t0 = Instant::now();
        assert_eq!(layer.admit("header", t0), Some(0), "the first one is logged");
        assert_eq!(layer.admit("header", t0 + Duration::from_secs(1)), None);
        assert_eq!(layer.admit("uri", t0 + Duration::from_secs(1)), Some(0), "kinds are limited apart");
        assert_eq!(layer.admit("header", t0 + Duration::from_secs(2)), None);
        assert_eq!(layer.admit("header", t0 + CLIENT_ERROR_LOG_INTERVAL), Some(2), "two were not logged");
        assert_eq!(layer.admit("header", t0 + CLIENT_ERROR_LOG_INTERVAL), None);
    }
}
