//! Secrets out of printed URLs: every URL that is printed or logged (configuration, start-up
//! errors, failed fetches of the issuer's metadata and keys) goes through [`redacted_url`].

/// What stands in place of a secret in a printed URL.
const REDACTED: &str = "[redacted]";

/// Whether a URL query parameter carries a secret: `password` and `sslpassword` (libpq and
/// sqlx connection parameters), and any parameter whose name speaks of a password, secret,
/// token or credential.
fn is_secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "pwd", "secret", "token", "credential"].iter().any(|word| name.contains(word))
}

/// The URL with every secret it can carry replaced by `[redacted]`: the password of its user
/// information and the values of secret query parameters (`is_secret_parameter`:
/// `postgres://svc@host/db?password=…`, `sslpassword=…`). A URL that does not parse is
/// redacted whole. Use it wherever a URL is printed or logged.
#[must_use]
pub fn redacted_url(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        return REDACTED.to_owned();
    };
    if url.password().is_some() && url.set_password(Some(REDACTED)).is_err() {
        return REDACTED.to_owned();
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let value = if is_secret_parameter(&name) { REDACTED.to_owned() } else { value.into_owned() };
                (name.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    // The url crate percent-encodes the brackets; print the marker as written.
    url.to_string().replace("%5Bredacted%5D", REDACTED)
}
