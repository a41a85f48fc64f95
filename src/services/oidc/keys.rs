//! The keyring: RSA signing keys made at first start, kept in the accounts database
//! (private halves encrypted), published in JWKS, rotated by `latchkey keys rotate`.
//!
//! Generation uses the `rsa` crate (its private-key *operations* carry the Marvin
//! timing advisory RUSTSEC-2023-0071; generation is not one of them), signing uses
//! `ring` (constant-time RSA), verification `jsonwebtoken` (public-key only). The
//! private key is stored as PKCS#8 sealed with AES-256-GCM (`ring`) under a key derived
//! from `jwt_secret`, so the database alone signs nothing.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::DecodingKey;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::accounts::{AccountError, Accounts, SigningKeyRow};
use crate::config::Settings;
use crate::support::clock::now_ms;
use crate::support::crypto::random_bytes;

/// The one algorithm we sign with (OpenID Discovery requires RS256).
pub const ALG: &str = "RS256";
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

/// One published key.
struct PublicKey {
    kid: String,
    jwk: Value,
    decoding: DecodingKey,
}

/// A key loaded for signing.
struct Signer {
    kid: String,
    pair: RsaKeyPair,
}

struct Loaded {
    signer: Option<Arc<Signer>>,
    public: Vec<Arc<PublicKey>>,
    at: Instant,
}

/// The signing keys, shared by every request; reloaded from the database now and then.
pub struct Keyring {
    accounts: Accounts,
    sealing: [u8; 32],
    /// How long a retired key stays published (ms).
    publish_ms: i64,
    settings: Settings,
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

fn seal(key: &[u8; 32], kid: &str, plain: &[u8]) -> Result<String, KeyError> {
    let sealing = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, key).map_err(|_| KeyError::Generate("aead key".into()))?,
    );
    let nonce_bytes = random_bytes(NONCE_LEN);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&nonce_bytes);
    let mut buf = plain.to_vec();
    sealing
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(kid.as_bytes()),
            &mut buf,
        )
        .map_err(|_| KeyError::Generate("sealing".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Ok(STANDARD.encode(out))
}

fn open(key: &[u8; 32], kid: &str, sealed: &str) -> Option<Vec<u8>> {
    let bytes = STANDARD.decode(sealed).ok()?;
    if bytes.len() <= NONCE_LEN {
        return None;
    }
    let (nonce, body) = bytes.split_at(NONCE_LEN);
    let opening = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).ok()?);
    let mut buf = body.to_vec();
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let plain = opening
        .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buf)
        .ok()?;
    Some(plain.to_vec())
}

/// A new RSA key as a row to store (slow: a few hundred ms; call off the async workers).
pub fn generate(settings: &Settings) -> Result<SigningKeyRow, KeyError> {
    use rsa::pkcs8::EncodePrivateKey;
    use rsa::traits::PublicKeyParts;
    let mut rng = rsa::rand_core::OsRng;
    let private = rsa::RsaPrivateKey::new(&mut rng, RSA_BITS)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let der = private
        .to_pkcs8_der()
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let n = URL_SAFE_NO_PAD.encode(private.n().to_bytes_be());
    let e = URL_SAFE_NO_PAD.encode(private.e().to_bytes_be());
    // RFC 7638 thumbprint: the kid names the key itself.
    let thumb_input = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(thumb_input.as_bytes())[..16]);
    let jwk = json!({"kty": "RSA", "use": "sig", "alg": ALG, "kid": kid, "n": n, "e": e});
    Ok(SigningKeyRow {
        private_key: seal(&sealing_key(settings), &kid, der.as_bytes())?,
        kid,
        alg: ALG.into(),
        public_jwk: jwk.to_string(),
        created_at: now_ms(),
        retired_at: None,
    })
}

/// Makes a new current key; the previous one stays published until every token it
/// signed has expired (`latchkey keys rotate`). Answers the new `kid`.
pub async fn rotate(accounts: &Accounts, settings: &Settings) -> Result<String, KeyError> {
    let s = settings.clone();
    let row = tokio::task::spawn_blocking(move || generate(&s))
        .await
        .map_err(|e| KeyError::Generate(e.to_string()))??;
    accounts
        .add_signing_key(&row, false, now_ms() - publish_ms(settings))
        .await?;
    Ok(row.kid)
}

fn load(rows: &[SigningKeyRow], sealing: &[u8; 32], publish_ms: i64) -> Loaded {
    let now = now_ms();
    let mut signer = None;
    let mut public = Vec::new();
    for row in rows {
        if row.retired_at.is_some_and(|t| t + publish_ms <= now) || row.alg != ALG {
            continue;
        }
        let Ok(jwk) = serde_json::from_str::<Value>(&row.public_jwk) else {
            tracing::warn!(kid = %row.kid, "a stored signing key has an unreadable JWK");
            continue;
        };
        let (Some(n), Some(e)) = (jwk["n"].as_str(), jwk["e"].as_str()) else {
            continue;
        };
        let Ok(decoding) = DecodingKey::from_rsa_components(n, e) else {
            continue;
        };
        if row.retired_at.is_none() && signer.is_none() {
            match open(sealing, &row.kid, &row.private_key)
                .and_then(|der| RsaKeyPair::from_pkcs8(&der).ok())
            {
                Some(pair) => {
                    signer = Some(Arc::new(Signer {
                        kid: row.kid.clone(),
                        pair,
                    }))
                }
                None => {
                    tracing::warn!(kid = %row.kid, "the current signing key does not decrypt with this jwt_secret")
                }
            }
        }
        public.push(Arc::new(PublicKey {
            kid: row.kid.clone(),
            jwk,
            decoding,
        }));
    }
    Loaded {
        signer,
        public,
        at: Instant::now(),
    }
}

impl Keyring {
    /// Loads the keys. The first key (or a new current one, when the current one does
    /// not decrypt) is made when first needed (`current`), not here: an RSA key takes a
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

    /// The keyring with a key to sign with: made (once, whichever server or request
    /// asks first: the database keeps one current key) when there is none.
    async fn current(&self) -> Result<Arc<Loaded>, KeyError> {
        let loaded = self.refresh(RELOAD_AFTER).await;
        if loaded.signer.is_some() {
            return Ok(loaded);
        }
        let _one_at_a_time = self.reload.lock().await;
        let rows = self.accounts.signing_keys().await?;
        let mut fresh = load(&rows, &self.sealing, self.publish_ms);
        if fresh.signer.is_none() {
            let has_current = rows.iter().any(|r| r.retired_at.is_none());
            let s = self.settings.clone();
            let row = tokio::task::spawn_blocking(move || generate(&s))
                .await
                .map_err(|e| KeyError::Generate(e.to_string()))??;
            // Two servers making the first key at once store one, not two.
            self.accounts
                .add_signing_key(&row, !has_current, now_ms() - self.publish_ms)
                .await?;
            fresh = load(
                &self.accounts.signing_keys().await?,
                &self.sealing,
                self.publish_ms,
            );
        }
        let fresh = Arc::new(fresh);
        self.store(fresh.clone());
        if fresh.signer.is_none() {
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
                if fresh.signer.is_none() {
                    // Keep signing with the key we have rather than not at all.
                    fresh.signer = current.signer.clone();
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

    /// Signs `claims` as a compact JWS (RS256) with the current key and `typ`.
    pub async fn sign(&self, typ: &str, claims: &impl Serialize) -> Result<String, KeyError> {
        let loaded = self.current().await?;
        let signer = loaded.signer.as_ref().ok_or(KeyError::NoKey)?;
        let header = json!({"alg": ALG, "typ": typ, "kid": signer.kid});
        let payload = serde_json::to_vec(claims).map_err(|_| KeyError::Sign)?;
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut sig = vec![0u8; signer.pair.public().modulus_len()];
        signer
            .pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| KeyError::Sign)?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    /// The public key named `kid`, reading the keyring again (at most every 10 s) when
    /// it is not known: another server may have rotated.
    pub async fn decoding_key(&self, kid: &str) -> Option<DecodingKey> {
        let find = |l: &Loaded| {
            l.public
                .iter()
                .find(|k| k.kid == kid)
                .map(|k| k.decoding.clone())
        };
        if let Some(k) = find(&self.snapshot()) {
            return Some(k);
        }
        find(&*self.refresh(UNKNOWN_KID_RELOAD).await)
    }

    /// `{"keys": [...]}`: the current key and the retired ones still published (the
    /// first key is made if there is none yet).
    pub async fn jwks(&self) -> Result<Value, KeyError> {
        let mut loaded = self.refresh(JWKS_RELOAD).await;
        if loaded.signer.is_none() {
            loaded = self.current().await?;
        }
        Ok(json!({ "keys": loaded.public.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }))
    }

    /// The `kid` signing now.
    pub fn current_kid(&self) -> Option<String> {
        self.snapshot().signer.as_ref().map(|s| s.kid.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_their_key_and_kid() {
        let key = [7u8; 32];
        let sealed = seal(&key, "kid1", b"private").expect("sealed");
        assert_eq!(
            open(&key, "kid1", &sealed).as_deref(),
            Some(&b"private"[..])
        );
        assert_eq!(open(&[8u8; 32], "kid1", &sealed), None);
        assert_eq!(open(&key, "kid2", &sealed), None);
        assert_eq!(open(&key, "kid1", "AAAA"), None);
    }
}
