//! The keyring: the signing keys made at first need, kept in the accounts database
//! (private halves encrypted), published in JWKS, rotated by `latchkey keys rotate`.
//! One current key per algorithm: RS256 (RSA-2048: id_tokens by default, as OpenID
//! Connect requires), ES256 (P-256: app access tokens, and id_tokens of clients that ask
//! for it) and EdDSA (Ed25519: id_tokens of clients that ask for it).
//!
//! RSA generation uses the `rsa` crate (its private-key *operations* carry the Marvin
//! timing advisory RUSTSEC-2023-0071; generation is not one of them); everything else,
//! signing and verifying included, uses `ring` (constant-time). The private key is stored
//! as PKCS#8 sealed with AES-256-GCM (`ring`) under a key derived from `jwt_secret`, so
//! the database alone signs nothing. Public keys are decoded from their JWK once per
//! (re)load and kept with the key, so a token check does no JWK or base64 work for the
//! key.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents, UnparsedPublicKey,
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, RSA_PKCS1_2048_8192_SHA256,
    RSA_PKCS1_SHA256,
};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::accounts::{AccountError, Accounts, SigningKeyRow};
use crate::config::Settings;
use crate::support::clock::now_ms;
use crate::support::crypto;

/// A JWS algorithm we sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256, RSA-2048: what OpenID Connect requires by default.
    Rs256,
    /// ECDSA on P-256 with SHA-256 (a 64-byte `r || s` signature).
    Es256,
    /// Ed25519 (RFC 8037).
    EdDsa,
}

impl Alg {
    pub const ALL: [Alg; 3] = [Alg::Rs256, Alg::Es256, Alg::EdDsa];

    /// The `alg` value of a JWS header and a JWK.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        }
    }

    /// The algorithm named exactly `name`; `None` for anything else (`none`, HMAC...).
    pub fn parse(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What app access tokens are signed with: an ECDSA signature costs a few percent of an
/// RSA-2048 one (ARCHITECTURE.md, "Decisions, with their figures").
pub const ACCESS_ALG: Alg = Alg::Es256;
const RSA_BITS: usize = 2048;
/// How long a server trusts its copy of the keyring (another server may rotate).
const RELOAD_AFTER: Duration = Duration::from_secs(60);
/// How often an unknown `kid` may make a server read the keyring again.
const UNKNOWN_KID_RELOAD: Duration = Duration::from_secs(10);
/// How old the JWKS a server publishes may be: a relying party that meets a new `kid`
/// fetches JWKS again, from whichever server, and must find it there.
const JWKS_RELOAD: Duration = Duration::from_secs(1);
/// Beyond a token's lifetime, how long a retired key stays published.
const PUBLISH_MARGIN_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the account database failed")]
    Accounts(#[from] AccountError),
    #[error("could not make a signing key: {0}")]
    Generate(String),
    #[error("could not sign a token")]
    Sign,
    #[error("no signing key can be used")]
    NoKey,
}

/// A public key, decoded once, that checks signatures of its own algorithm.
enum Verifier {
    Rsa(RsaPublicKeyComponents<Vec<u8>>),
    Ec(UnparsedPublicKey<Vec<u8>>),
    Ed(UnparsedPublicKey<Vec<u8>>),
}

/// One published key.
pub struct PublicKey {
    kid: String,
    alg: Alg,
    jwk: Value,
    verifier: Verifier,
}

impl PublicKey {
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// Whether `signature` is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.verifier {
            Verifier::Rsa(k) => k
                .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
                .is_ok(),
            Verifier::Ec(k) | Verifier::Ed(k) => k.verify(message, signature).is_ok(),
        }
    }
}

/// The private half, loaded for signing.
enum SigningKey {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A key loaded for signing.
struct Signer {
    kid: String,
    alg: Alg,
    key: SigningKey,
}

impl Signer {
    fn sign(&self, rng: &SystemRandom, input: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.key {
            SigningKey::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public().modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, rng, input, &mut sig)
                    .map_err(|_| KeyError::Sign)?;
                Ok(sig)
            }
            SigningKey::Ec(pair) => Ok(pair
                .sign(rng, input)
                .map_err(|_| KeyError::Sign)?
                .as_ref()
                .to_vec()),
            SigningKey::Ed(pair) => Ok(pair.sign(input).as_ref().to_vec()),
        }
    }
}

struct Loaded {
    /// The current key of each algorithm (`Alg::index`).
    signers: [Option<Arc<Signer>>; 3],
    public: Vec<Arc<PublicKey>>,
    at: Instant,
}

impl Loaded {
    fn complete(&self) -> bool {
        self.signers.iter().all(Option::is_some)
    }
}

/// The signing keys, shared by every request; reloaded from the database now and then.
pub struct Keyring {
    accounts: Accounts,
    sealing: [u8; 32],
    /// How long a retired key stays published (ms).
    publish_ms: i64,
    settings: Settings,
    rng: SystemRandom,
    loaded: RwLock<Arc<Loaded>>,
    reload: Mutex<Instant>,
}

/// The key that seals private keys at rest: HMAC-SHA256 of a fixed label under
/// `jwt_secret`.
fn sealing_key(settings: &Settings) -> [u8; 32] {
    crate::support::crypto::hmac(
        settings.tokens.jwt_secret.expose_secret(),
        b"latchkey signing-key encryption v1",
    )
}

fn publish_ms(settings: &Settings) -> i64 {
    settings.tokens.access_ttl.as_millis() as i64 + PUBLISH_MARGIN_MS
}

/// RFC 7638: the kid names the key itself (the first 16 bytes of the SHA-256 of the
/// JWK's required members, in lexicographic order, as the RFC writes them).
fn thumbprint(required_members: &str) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(required_members.as_bytes())[..16])
}

/// A new key of `alg` as a row to store (RSA is slow: a few hundred ms; call off the
/// async workers).
pub fn generate(settings: &Settings, alg: Alg) -> Result<SigningKeyRow, KeyError> {
    generate_sealed(&sealing_key(settings), alg)
}

fn generate_sealed(sealing: &[u8; 32], alg: Alg) -> Result<SigningKeyRow, KeyError> {
    let failed = |e: &dyn std::fmt::Display| KeyError::Generate(e.to_string());
    let rng = SystemRandom::new();
    let (kid, jwk, der) = match alg {
        Alg::Rs256 => {
            use rsa::pkcs8::EncodePrivateKey;
            use rsa::traits::PublicKeyParts;
            let mut os = rsa::rand_core::OsRng;
            let private = rsa::RsaPrivateKey::new(&mut os, RSA_BITS).map_err(|e| failed(&e))?;
            let der = private.to_pkcs8_der().map_err(|e| failed(&e))?;
            let n = URL_SAFE_NO_PAD.encode(private.n().to_bytes_be());
            let e = URL_SAFE_NO_PAD.encode(private.e().to_bytes_be());
            let kid = thumbprint(&format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#));
            let jwk =
                json!({"kty": "RSA", "use": "sig", "alg": alg.name(), "kid": kid, "n": n, "e": e});
            (kid, jwk, der.as_bytes().to_vec())
        }
        Alg::Es256 => {
            let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| KeyError::Generate("P-256 key".into()))?;
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_ref(), &rng)
                    .map_err(|e| failed(&e))?;
            // The uncompressed point: 0x04 || x || y, 32 bytes each.
            let point = pair.public_key().as_ref();
            let (x, y) = (
                URL_SAFE_NO_PAD.encode(&point[1..33]),
                URL_SAFE_NO_PAD.encode(&point[33..65]),
            );
            let kid = thumbprint(&format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#
            ));
            let jwk = json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": alg.name(), "kid": kid, "x": x, "y": y});
            (kid, jwk, der.as_ref().to_vec())
        }
        Alg::EdDsa => {
            let der = Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| KeyError::Generate("Ed25519 key".into()))?;
            let pair = Ed25519KeyPair::from_pkcs8(der.as_ref()).map_err(|e| failed(&e))?;
            let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
            let kid = thumbprint(&format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#));
            let jwk = json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": alg.name(), "kid": kid, "x": x});
            (kid, jwk, der.as_ref().to_vec())
        }
    };
    Ok(SigningKeyRow {
        private_key: crypto::seal(sealing, kid.as_bytes(), &der)
            .ok_or_else(|| KeyError::Generate("sealing".into()))?,
        kid,
        alg: alg.name().into(),
        public_jwk: jwk.to_string(),
        created_at: now_ms(),
        retired_at: None,
    })
}

/// Makes a new current key of every algorithm; the previous ones stay published until
/// every token they signed has expired (`latchkey keys rotate`). Answers the new kids.
pub async fn rotate(accounts: &Accounts, settings: &Settings) -> Result<Vec<String>, KeyError> {
    let mut kids = Vec::new();
    for alg in Alg::ALL {
        let s = settings.clone();
        let row = tokio::task::spawn_blocking(move || generate(&s, alg))
            .await
            .map_err(|e| KeyError::Generate(e.to_string()))??;
        accounts
            .add_signing_key(&row, false, now_ms() - publish_ms(settings))
            .await?;
        kids.push(row.kid);
    }
    Ok(kids)
}

/// The public key a JWK describes, for `alg`; `None` when the JWK is not one of
/// `alg`'s or does not decode.
fn verifier(alg: Alg, jwk: &Value) -> Option<Verifier> {
    let b64 = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str()?).ok();
    match alg {
        Alg::Rs256 => Some(Verifier::Rsa(RsaPublicKeyComponents {
            n: b64("n")?,
            e: b64("e")?,
        })),
        Alg::Es256 => {
            let (x, y) = (b64("x")?, b64("y")?);
            if jwk["crv"] != "P-256" || x.len() != 32 || y.len() != 32 {
                return None;
            }
            let mut point = vec![4u8];
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            Some(Verifier::Ec(UnparsedPublicKey::new(
                &ECDSA_P256_SHA256_FIXED,
                point,
            )))
        }
        Alg::EdDsa => {
            let x = b64("x")?;
            if jwk["crv"] != "Ed25519" || x.len() != 32 {
                return None;
            }
            Some(Verifier::Ed(UnparsedPublicKey::new(&ED25519, x)))
        }
    }
}

fn signing_key(alg: Alg, der: &[u8]) -> Option<SigningKey> {
    match alg {
        Alg::Rs256 => RsaKeyPair::from_pkcs8(der).ok().map(SigningKey::Rsa),
        Alg::Es256 => {
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new())
                .ok()
                .map(SigningKey::Ec)
        }
        Alg::EdDsa => Ed25519KeyPair::from_pkcs8(der).ok().map(SigningKey::Ed),
    }
}

fn load(rows: &[SigningKeyRow], sealing: &[u8; 32], publish_ms: i64) -> Loaded {
    let now = now_ms();
    let mut signers: [Option<Arc<Signer>>; 3] = [None, None, None];
    let mut public = Vec::new();
    for row in rows {
        let Some(alg) = Alg::parse(&row.alg) else {
            continue;
        };
        if row.retired_at.is_some_and(|t| t + publish_ms <= now) {
            continue;
        }
        let Ok(jwk) = serde_json::from_str::<Value>(&row.public_jwk) else {
            tracing::warn!(kid = %row.kid, "a stored signing key has an unreadable JWK");
            continue;
        };
        let Some(verifier) = verifier(alg, &jwk) else {
            tracing::warn!(kid = %row.kid, "a stored signing key's JWK is not a key of its alg");
            continue;
        };
        let slot = &mut signers[alg.index()];
        if row.retired_at.is_none() && slot.is_none() {
            match crypto::open(sealing, row.kid.as_bytes(), &row.private_key)
                .and_then(|der| signing_key(alg, &der))
            {
                Some(key) => {
                    *slot = Some(Arc::new(Signer {
                        kid: row.kid.clone(),
                        alg,
                        key,
                    }))
                }
                None => {
                    tracing::warn!(kid = %row.kid, "the current signing key does not decrypt with this jwt_secret")
                }
            }
        }
        public.push(Arc::new(PublicKey {
            kid: row.kid.clone(),
            alg,
            jwk,
            verifier,
        }));
    }
    Loaded {
        signers,
        public,
        at: Instant::now(),
    }
}

impl Keyring {
    /// Loads the keys. The first keys (or a new current one, when the current one does
    /// not decrypt) are made when first needed (`current`), not here: an RSA key takes a
    /// few hundred milliseconds of a core, which a server that no app uses, and every
    /// server start, need not spend.
    pub async fn open(accounts: Accounts, settings: &Settings) -> Result<Keyring, KeyError> {
        let sealing = sealing_key(settings);
        let publish = publish_ms(settings);
        let loaded = load(&accounts.signing_keys().await?, &sealing, publish);
        Ok(Keyring {
            accounts,
            sealing,
            publish_ms: publish,
            settings: settings.clone(),
            rng: SystemRandom::new(),
            loaded: RwLock::new(Arc::new(loaded)),
            // The first unknown kid may reload at once.
            reload: Mutex::new(
                Instant::now()
                    .checked_sub(RELOAD_AFTER)
                    .unwrap_or_else(Instant::now),
            ),
        })
    }

    fn store(&self, fresh: Arc<Loaded>) {
        match self.loaded.write() {
            Ok(mut l) => *l = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
    }

    /// The keyring with a key of every algorithm to sign with: each made (once,
    /// whichever server or request asks first: the database keeps one current key per
    /// algorithm) when there is none.
    async fn current(&self) -> Result<Arc<Loaded>, KeyError> {
        let loaded = self.refresh(RELOAD_AFTER).await;
        if loaded.complete() {
            return Ok(loaded);
        }
        let _one_at_a_time = self.reload.lock().await;
        let rows = self.accounts.signing_keys().await?;
        let mut fresh = load(&rows, &self.sealing, self.publish_ms);
        if !fresh.complete() {
            for alg in Alg::ALL {
                if fresh.signers[alg.index()].is_some() {
                    continue;
                }
                let has_current = rows
                    .iter()
                    .any(|r| r.retired_at.is_none() && r.alg == alg.name());
                let s = self.settings.clone();
                let row = tokio::task::spawn_blocking(move || generate(&s, alg))
                    .await
                    .map_err(|e| KeyError::Generate(e.to_string()))??;
                // Two servers making the first key at once store one, not two.
                self.accounts
                    .add_signing_key(&row, !has_current, now_ms() - self.publish_ms)
                    .await?;
            }
            fresh = load(
                &self.accounts.signing_keys().await?,
                &self.sealing,
                self.publish_ms,
            );
        }
        let fresh = Arc::new(fresh);
        self.store(fresh.clone());
        if !fresh.complete() {
            return Err(KeyError::NoKey);
        }
        Ok(fresh)
    }

    fn snapshot(&self) -> Arc<Loaded> {
        match self.loaded.read() {
            Ok(l) => l.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the keys again when the copy is older than `max_age` (and no read was
    /// tried within `max_age`); a failed read keeps the copy (and is logged).
    async fn refresh(&self, max_age: Duration) -> Arc<Loaded> {
        let current = self.snapshot();
        if current.at.elapsed() < max_age {
            return current;
        }
        let mut last = self.reload.lock().await;
        let current = self.snapshot();
        if current.at.elapsed() < max_age || last.elapsed() < max_age {
            return current;
        }
        *last = Instant::now();
        match self.accounts.signing_keys().await {
            Ok(rows) => {
                let mut fresh = load(&rows, &self.sealing, self.publish_ms);
                for (slot, kept) in fresh.signers.iter_mut().zip(&current.signers) {
                    if slot.is_none() {
                        // Keep signing with the key we have rather than not at all.
                        slot.clone_from(kept);
                    }
                }
                let fresh = Arc::new(fresh);
                self.store(fresh.clone());
                fresh
            }
            Err(e) => {
                tracing::warn!(
                    "reading the signing keys: {}",
                    crate::support::report::Report(&e)
                );
                current
            }
        }
    }

    /// Signs `claims` as a compact JWS with the current key of `alg`, and `typ`.
    pub async fn sign(
        &self,
        alg: Alg,
        typ: &str,
        claims: &impl Serialize,
    ) -> Result<String, KeyError> {
        let loaded = self.current().await?;
        let signer = loaded.signers[alg.index()]
            .as_ref()
            .ok_or(KeyError::NoKey)?;
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'static str,
            typ: &'a str,
            kid: &'a str,
        }
        let header = serde_json::to_vec(&Header {
            alg: signer.alg.name(),
            typ,
            kid: &signer.kid,
        })
        .map_err(|_| KeyError::Sign)?;
        let payload = serde_json::to_vec(claims).map_err(|_| KeyError::Sign)?;
        let mut out = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 100);
        URL_SAFE_NO_PAD.encode_string(header, &mut out);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut out);
        let sig = signer.sign(&self.rng, out.as_bytes())?;
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(sig, &mut out);
        Ok(out)
    }

    /// The public key named `kid`, reading the keyring again (at most every 10 s) when
    /// it is not known: another server may have rotated.
    pub async fn public_key(&self, kid: &str) -> Option<Arc<PublicKey>> {
        let find = |l: &Loaded| l.public.iter().find(|k| k.kid == kid).cloned();
        if let Some(k) = find(&self.snapshot()) {
            return Some(k);
        }
        find(&*self.refresh(UNKNOWN_KID_RELOAD).await)
    }

    /// `{"keys": [...]}`: the current keys and the retired ones still published (the
    /// first keys are made if there are none yet).
    pub async fn jwks(&self) -> Result<Value, KeyError> {
        let mut loaded = self.refresh(JWKS_RELOAD).await;
        if !loaded.complete() {
            loaded = self.current().await?;
        }
        Ok(json!({ "keys": loaded.public.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every algorithm: the stored row loads back as a signer and a published key of
    /// that algorithm; what the signer signs, the key of the JWK verifies, and no other
    /// message, signature or key passes.
    #[test]
    fn each_algorithm_signs_what_its_published_key_verifies() {
        let sealing = [9u8; 32];
        let rows: Vec<SigningKeyRow> = Alg::ALL
            .iter()
            .map(|&alg| generate_sealed(&sealing, alg).expect("a key"))
            .collect();
        let loaded = load(&rows, &sealing, 60_000);
        assert!(loaded.complete());
        assert_eq!(loaded.public.len(), 3);
        let rng = SystemRandom::new();
        for alg in Alg::ALL {
            let signer = loaded.signers[alg.index()].as_ref().expect("signer");
            assert_eq!(signer.alg, alg);
            let public = loaded
                .public
                .iter()
                .find(|k| k.kid == signer.kid)
                .expect("published");
            assert_eq!(public.alg(), alg);
            assert_eq!(public.jwk["alg"], alg.name());
            assert!(public.jwk.get("d").is_none());
            let sig = signer.sign(&rng, b"header.payload").expect("signed");
            assert!(public.verifies(b"header.payload", &sig), "{alg:?}");
            assert!(!public.verifies(b"header.payloaD", &sig));
            let mut bad = sig.clone();
            bad[0] ^= 1;
            assert!(!public.verifies(b"header.payload", &bad));
            for other in loaded.public.iter().filter(|k| k.kid != signer.kid) {
                assert!(!other.verifies(b"header.payload", &sig));
            }
        }
        // Another jwt_secret: the keys stay published, but none signs.
        let elsewhere = load(&rows, &[1u8; 32], 60_000);
        assert!(elsewhere.signers.iter().all(Option::is_none));
        assert_eq!(elsewhere.public.len(), 3);
        assert_eq!(Alg::parse("none"), None);
        assert_eq!(Alg::parse("HS256"), None);
        assert_eq!(Alg::parse("es256"), None);
    }
}
