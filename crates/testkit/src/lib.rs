//! Test support shared by the adapter and HTTP test tiers: a fresh PostgreSQL database per
//! test, signing keys generated in the test run, and real signed access tokens.

pub mod pdf;

use std::path::PathBuf;
use std::sync::OnceLock;

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::KeyPair;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{json, Map, Value};
use sqlx::{Connection, PgConnection};

/// The issuer every test token carries.
pub const ISSUER: &str = "https://as.test.example";
/// The audience every test token carries.
pub const AUDIENCE: &str = "esignsp";
/// The scope the API requires.
pub const SCOPE: &str = "urn:safelayer:eidas:sign:process:document";

/// The PostgreSQL server of the test run: `DATABASE_URL`, else the local default.
#[must_use]
pub fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

/// Creates an empty database `esignsp_test_<random>` and returns its URL. `scripts/test.sh`
/// drops leftovers of earlier runs.
///
/// # Panics
/// When PostgreSQL cannot be reached: the test cannot run without it.
pub async fn fresh_database() -> String {
    let name = format!("esignsp_test_{}", hex(&rand::random::<[u8; 8]>()));
    let mut admin = PgConnection::connect(&admin_url()).await.expect("PostgreSQL must be reachable at DATABASE_URL");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create test database");
    with_database(&admin_url(), &name)
}

/// Lowercase hex.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Keys generated once per test binary, with their public halves written as PEM files.
pub struct TestKeys {
    /// Directory of the key files.
    pub dir: PathBuf,
    /// `PUBLIC KEY` PEM files of the trusted keys (RSA, EC P-256, Ed25519).
    pub public_key_files: Vec<PathBuf>,
    /// PEM of the trusted RSA public key (to forge HS256 tokens with).
    pub rsa_public_pem: Vec<u8>,
    rsa: EncodingKey,
    ec: EncodingKey,
    ec_point: Vec<u8>,
    ec384: EncodingKey,
    ec384_point: Vec<u8>,
    ed: EncodingKey,
    ed_public: Vec<u8>,
    untrusted_ed: EncodingKey,
}

/// Which key signs a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// The trusted RSA key with RS256.
    Rs256,
    /// The trusted RSA key with PS256.
    Ps256,
    /// The trusted EC P-256 key.
    Es256,
    /// An EC P-384 key, published only as a JWK ([`TestKeys::ec_public_jwk`]).
    Es384,
    /// The trusted Ed25519 key.
    EdDsa,
    /// An Ed25519 key the server does not know.
    Untrusted,
}

fn spki_pem(der: Vec<u8>) -> String {
    pem::encode(&pem::Pem::new("PUBLIC KEY", der))
}

/// The keys of this test binary, generated on first use.
///
/// # Panics
/// When key generation or writing the files fails.
pub fn keys() -> &'static TestKeys {
    static KEYS: OnceLock<TestKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!(
            "esignsp-test-keys-{}-{}",
            std::process::id(),
            hex(&rand::random::<[u8; 4]>())
        ));
        std::fs::create_dir_all(&dir).expect("key dir");
        let rng = ring::rand::SystemRandom::new();

        let rsa_private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key");
        let rsa_public_pem = rsa_private.to_public_key().to_public_key_pem(LineEnding::LF).expect("RSA public PEM");
        let rsa = EncodingKey::from_rsa_pem(rsa_private.to_pkcs8_pem(LineEnding::LF).expect("pkcs8").as_bytes())
            .expect("RSA key");

        let ec_pkcs8 =
            ring::signature::EcdsaKeyPair::generate_pkcs8(&ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .expect("P-256 key");
        let ec_pair = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            ec_pkcs8.as_ref(),
            &rng,
        )
        .expect("P-256 pair");
        // SubjectPublicKeyInfo for id-ecPublicKey / prime256v1, then the uncompressed point.
        let mut ec_spki = vec![
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
            0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        ec_spki.extend_from_slice(ec_pair.public_key().as_ref());
        let ec = EncodingKey::from_ec_der(ec_pkcs8.as_ref());
        let ec_point = ec_pair.public_key().as_ref().to_vec();

        let p384 = &ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING;
        let ec384_pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(p384, &rng).expect("P-384 key");
        let ec384_point = ring::signature::EcdsaKeyPair::from_pkcs8(p384, ec384_pkcs8.as_ref(), &rng)
            .expect("P-384 pair")
            .public_key()
            .as_ref()
            .to_vec();
        let ec384 = EncodingKey::from_ec_der(ec384_pkcs8.as_ref());

        let ed_pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("Ed25519 key");
        let ed_pair = ring::signature::Ed25519KeyPair::from_pkcs8(ed_pkcs8.as_ref()).expect("Ed25519 pair");
        let mut ed_spki = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
        ed_spki.extend_from_slice(ed_pair.public_key().as_ref());
        let ed = EncodingKey::from_ed_der(ed_pkcs8.as_ref());
        let ed_public = ed_pair.public_key().as_ref().to_vec();
        let untrusted_ed =
            EncodingKey::from_ed_der(ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("key").as_ref());

        let mut public_key_files = Vec::new();
        for (name, pem) in [
            ("rsa.pub.pem", rsa_public_pem.clone()),
            ("ec.pub.pem", spki_pem(ec_spki)),
            ("ed.pub.pem", spki_pem(ed_spki)),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, pem).expect("write public key");
            public_key_files.push(path);
        }
        TestKeys {
            dir,
            public_key_files,
            rsa_public_pem: rsa_public_pem.into_bytes(),
            rsa,
            ec,
            ec_point,
            ec384,
            ec384_point,
            ed,
            ed_public,
            untrusted_ed,
        }
    })
}

/// Seconds since the Unix epoch.
#[must_use]
pub fn now() -> i64 {
    i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap_or(i64::MAX)
}

/// RFC 9068 claims for `client_id`, valid for five minutes, with the required scope.
#[must_use]
pub fn claims(client_id: &str) -> Map<String, Value> {
    let Value::Object(claims) = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": client_id, "client_id": client_id,
        "scope": format!("openid {SCOPE}"), "iat": now(), "exp": now() + 300,
        "jti": hex(&rand::random::<[u8; 12]>()),
    }) else {
        unreachable!("json! of an object is an object")
    };
    claims
}

impl TestKeys {
    /// Signs `claims` with `signer` and header `typ` `at+jwt`.
    ///
    /// # Panics
    /// When signing fails.
    #[must_use]
    pub fn sign(&self, signer: Signer, claims: &Map<String, Value>) -> String {
        self.sign_with_kid(signer, None, claims)
    }

    /// Signs `claims` with `signer`, header `typ` `at+jwt` and `kid` when given.
    ///
    /// # Panics
    /// When signing fails.
    #[must_use]
    pub fn sign_with_kid(&self, signer: Signer, kid: Option<&str>, claims: &Map<String, Value>) -> String {
        let (alg, key) = match signer {
            Signer::Rs256 => (Algorithm::RS256, &self.rsa),
            Signer::Ps256 => (Algorithm::PS256, &self.rsa),
            Signer::Es256 => (Algorithm::ES256, &self.ec),
            Signer::Es384 => (Algorithm::ES384, &self.ec384),
            Signer::EdDsa => (Algorithm::EdDSA, &self.ed),
            Signer::Untrusted => (Algorithm::EdDSA, &self.untrusted_ed),
        };
        let mut header = Header::new(alg);
        header.typ = Some("at+jwt".to_owned());
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, key).expect("sign")
    }

    /// A valid RS256 token for `client_id`.
    #[must_use]
    pub fn token(&self, client_id: &str) -> String {
        self.sign(Signer::Rs256, &claims(client_id))
    }

    /// The trusted RSA key as a public JWK bound to `alg` (RFC 7517 §4.4), with `kid`.
    ///
    /// # Panics
    /// When the stored PEM does not parse (it was written by this crate).
    #[must_use]
    pub fn rsa_public_jwk(&self, alg: &str, kid: &str) -> Value {
        use rsa::pkcs8::DecodePublicKey;
        use rsa::traits::PublicKeyParts;
        let key = rsa::RsaPublicKey::from_public_key_pem(std::str::from_utf8(&self.rsa_public_pem).expect("utf-8"))
            .expect("pem");
        let b64 = |b: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        json!({"kty": "RSA", "n": b64(key.n().to_bytes_be()), "e": b64(key.e().to_bytes_be()), "alg": alg, "kid": kid})
    }

    /// The public half of an EC key as a JWK (RFC 7518 §6.2) with `kid` and no `alg`:
    /// `Signer::Es256`'s P-256 key or `Signer::Es384`'s P-384 key.
    ///
    /// # Panics
    /// For another signer.
    #[must_use]
    pub fn ec_public_jwk(&self, signer: Signer, kid: &str) -> Value {
        let (crv, point, size) = match signer {
            Signer::Es256 => ("P-256", &self.ec_point, 32),
            Signer::Es384 => ("P-384", &self.ec384_point, 48),
            other => panic!("{other:?} is not an EC signer"),
        };
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        // The uncompressed point: 0x04, then x and y.
        let (x, y) = point[1..].split_at(size);
        json!({"kty": "EC", "crv": crv, "x": b64(x), "y": b64(y), "kid": kid})
    }

    /// The trusted Ed25519 key (`Signer::EdDsa`) as a public JWK (RFC 8037 §2) with `kid`
    /// and no `alg`.
    #[must_use]
    pub fn ed_public_jwk(&self, kid: &str) -> Value {
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.ed_public);
        json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid})
    }

    /// An HS256 token whose HMAC secret is the server's RSA public key PEM (RFC 8725 §2.1).
    ///
    /// # Panics
    /// When signing fails.
    #[must_use]
    pub fn hs256_with_public_key(&self, claims: &Map<String, Value>) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".to_owned());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(&self.rsa_public_pem)).expect("sign")
    }

    /// An unsigned token (`alg` as given, e.g. `none`) with an empty signature.
    #[must_use]
    pub fn unsigned(alg: &str, claims: &Map<String, Value>) -> String {
        let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.", b64(&json!({"alg": alg, "typ": "at+jwt"})), b64(&Value::Object(claims.clone())))
    }
}
