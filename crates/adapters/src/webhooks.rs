//! Webhook delivery over HTTP (SPEC §11): each POST signed per Standard Webhooks
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature`, made by the `standardwebhooks`
//! crate), no redirect followed, bounded time-outs and response reads, no proxy, and the
//! outbound rules that keep deliveries from being used for server-side request forgery:
//! HTTPS only unless `webhooks.allow_insecure`, and no private, loopback, link-local or
//! otherwise non-public target unless `webhooks.allow_private_targets` — checked for an IP
//! literal before sending and for *every* address a name resolves to, by the resolver the
//! connection then uses (so a name cannot resolve to a public address for the check and a
//! private one for the connection).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use esignsp_domain::webhooks::{AttemptOutcome, OutgoingWebhook, WebhookSender};

/// How many bytes of an answer are read and kept for the delivery log; the rest is dropped.
pub const RESPONSE_EXCERPT_BYTES: usize = 1024;

/// The outbound rules (`[webhooks]` configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundPolicy {
    /// Plain `http` targets are allowed (`webhooks.allow_insecure`; development only).
    pub allow_insecure: bool,
    /// Private, loopback, link-local and other non-public addresses are allowed
    /// (`webhooks.allow_private_targets`; development only).
    pub allow_private_targets: bool,
}

/// Why a URL may not be a webhook target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not an absolute URL.
    #[error("the URL is not an absolute http(s) URL")]
    NotAUrl,
    /// `http` while only HTTPS is allowed.
    #[error("webhook URLs must use https (webhooks.allow_insecure is false)")]
    Insecure,
    /// Another scheme.
    #[error("webhook URLs must use https")]
    Scheme,
    /// A user name or password in the URL.
    #[error("webhook URLs must not hold credentials")]
    Credentials,
    /// A non-public IP address.
    #[error("{0} is not a public address (webhooks.allow_private_targets is false)")]
    Private(IpAddr),
}

impl OutboundPolicy {
    /// Checks a target URL without resolving it: scheme, credentials, and an IP literal host.
    /// Names are checked when resolved, at every delivery.
    ///
    /// # Errors
    /// [`TargetError`].
    pub fn check_url(&self, raw: &str) -> Result<url::Url, TargetError> {
        let url = url::Url::parse(raw).map_err(|_| TargetError::NotAUrl)?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_insecure => {}
            "http" => return Err(TargetError::Insecure),
            _ => return Err(TargetError::Scheme),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(TargetError::Credentials);
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(TargetError::NotAUrl),
        };
        match ip {
            Some(ip) if !self.allow_private_targets && !is_public(ip) => Err(TargetError::Private(ip)),
            _ => Ok(url),
        }
    }
}

/// Whether `ip` is a public unicast address: not loopback, private (RFC 1918, RFC 4193),
/// link-local, shared (RFC 6598), unspecified, broadcast, multicast, documentation,
/// benchmarking or reserved — per the IANA special-purpose address registries (RFC 6890).
/// IPv4-mapped, IPv4-compatible, NAT64 and 6to4 IPv6 addresses are judged by the IPv4
/// address they carry.
#[must_use]
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                   // 0.0.0.0/8 "this network"
        || a == 10                             // RFC 1918
        || a == 127                            // loopback
        || (a == 100 && (64..128).contains(&b)) // RFC 6598 shared address space
        || (a == 169 && b == 254)              // link-local
        || (a == 172 && (16..32).contains(&b)) // RFC 1918
        || (a == 192 && b == 0 && c == 0)      // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)      // TEST-NET-1
        || (a == 192 && b == 88 && c == 99)    // 6to4 relay anycast
        || (a == 192 && b == 168)              // RFC 1918
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100)   // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)    // TEST-NET-3
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    match segments {
        // ::, ::1 and IPv4-compatible ::a.b.c.d
        [0, 0, 0, 0, 0, 0, hi, lo] => hi != 0 && is_public_v4(embedded_v4(hi, lo)),
        // NAT64 64:ff9b::/96
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => is_public_v4(embedded_v4(hi, lo)),
        // 6to4 2002::/16 carries an IPv4 address in its next 32 bits.
        [0x2002, hi, lo, ..] => is_public_v4(embedded_v4(hi, lo)),
        // documentation 2001:db8::/32
        [0x2001, 0x0db8, ..] => false,
        [first, ..] => {
            !((first & 0xfe00) == 0xfc00        // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80   // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0   // site-local (deprecated) fec0::/10
                || (first & 0xff00) == 0xff00) // multicast
        }
    }
}

/// The error a refused resolution gives, found again in the request's error chain.
#[derive(Debug, thiserror::Error)]
#[error("{name} resolves to {ip}, which is not a public address (webhooks.allow_private_targets is false)")]
struct PrivateResolution {
    name: String,
    ip: IpAddr,
}

/// Resolves names with the system resolver and refuses a name any of whose addresses is not
/// public (all of them are checked, not the first only).
#[derive(Debug, Clone, Copy)]
struct PublicOnlyResolver;

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(ip) = addresses.iter().map(SocketAddr::ip).find(|ip| !is_public(*ip)) {
                return Err(Box::new(PrivateResolution { name: host, ip }) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Posts deliveries with reqwest.
#[derive(Debug, Clone)]
pub struct HttpWebhookSender {
    client: reqwest::Client,
    policy: OutboundPolicy,
}

impl HttpWebhookSender {
    /// A sender whose whole exchange (connection, request, the bounded read of the answer)
    /// takes at most `timeout`.
    ///
    /// # Panics
    /// Never in practice: the TLS back end is compiled in.
    #[must_use]
    pub fn new(policy: OutboundPolicy, timeout: Duration) -> Self {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("esignsp-webhooks/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(30));
        if !policy.allow_private_targets {
            builder = builder.dns_resolver(Arc::new(PublicOnlyResolver));
        }
        Self { client: builder.build().expect("a client with compiled-in TLS builds"), policy }
    }

    /// The `webhook-signature` value: `v1,<base64>` for each secret, space-separated.
    fn signature(request: &OutgoingWebhook<'_>) -> Result<String, String> {
        let timestamp = request.timestamp.unix_timestamp();
        let mut signatures = Vec::with_capacity(request.secrets.len());
        for secret in request.secrets {
            let webhook = standardwebhooks::Webhook::new(secret.expose())
                .map_err(|_| "an endpoint secret is not valid base64".to_owned())?;
            let signature = webhook
                .sign(request.message_id.as_str(), timestamp, request.payload.as_bytes())
                .map_err(|_| "signing failed".to_owned())?;
            signatures.push(signature);
        }
        Ok(signatures.join(" "))
    }
}

/// A request error in a few words, without the URL (which may carry a token in its query).
fn describe(error: &reqwest::Error) -> AttemptOutcome {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(private) = e.downcast_ref::<PrivateResolution>() {
            return AttemptOutcome::Refused(private.to_string());
        }
        source = e.source();
    }
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "reading the answer failed"
    } else {
        "the request failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        detail = e.to_string();
        source = e.source();
    }
    AttemptOutcome::Failed(if detail.is_empty() { what.to_owned() } else { format!("{what}: {detail}") })
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    async fn send(&self, request: &OutgoingWebhook<'_>) -> AttemptOutcome {
        let url = match self.policy.check_url(request.url) {
            Ok(url) => url,
            Err(e) => return AttemptOutcome::Refused(e.to_string()),
        };
        let signature = match Self::signature(request) {
            Ok(s) => s,
            Err(e) => return AttemptOutcome::Failed(e),
        };
        let sent = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(standardwebhooks::HEADER_WEBHOOK_ID, request.message_id.as_str())
            .header(standardwebhooks::HEADER_WEBHOOK_TIMESTAMP, request.timestamp.unix_timestamp().to_string())
            .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature)
            .body(request.payload.to_owned())
            .send()
            .await;
        let mut response = match sent {
            Ok(r) => r,
            Err(e) => return describe(&e),
        };
        let status = response.status().as_u16();
        let mut body = Vec::new();
        // Bounded read: keep the start of the answer, stop reading after it.
        while body.len() < RESPONSE_EXCERPT_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        body.truncate(RESPONSE_EXCERPT_BYTES);
        AttemptOutcome::Answered { status, body: String::from_utf8_lossy(&body).into_owned() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "::127.0.0.1",
        ] {
            assert!(!is_public(private.parse().expect(private)), "{private} is not public");
        }
        for public in
            ["93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700::1111", "::ffff:8.8.8.8", "2002:0808:0808::"]
        {
            assert!(is_public(public.parse().expect(public)), "{public} is public");
        }
    }

    #[test]
    fn urls_are_checked_for_scheme_credentials_and_literal_private_hosts() {
        let strict = OutboundPolicy { allow_insecure: false, allow_private_targets: false };
        assert!(strict.check_url("https://hooks.example.com/esignsp").is_ok());
        assert_eq!(strict.check_url("http://hooks.example.com/").err(), Some(TargetError::Insecure));
        assert_eq!(strict.check_url("ftp://hooks.example.com/").err(), Some(TargetError::Scheme));
        assert_eq!(strict.check_url("https://user:pw@hooks.example.com/").err(), Some(TargetError::Credentials));
        assert!(matches!(strict.check_url("https://169.254.169.254/latest"), Err(TargetError::Private(_))));
        assert!(matches!(strict.check_url("https://[::1]:8443/"), Err(TargetError::Private(_))));
        assert!(matches!(strict.check_url("https://0x7f000001/"), Err(TargetError::Private(_))), "hex IPv4");
        assert_eq!(strict.check_url("not a url").err(), Some(TargetError::NotAUrl));
        let open = OutboundPolicy { allow_insecure: true, allow_private_targets: true };
        assert!(open.check_url("http://127.0.0.1:9/").is_ok());
    }
}
