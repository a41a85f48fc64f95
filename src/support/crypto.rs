//! Small cryptographic helpers: random secrets, digests, keyed hashes, comparisons.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    rand::rng().fill_bytes(&mut buf);
    buf
}

/// A 256-bit secret, URL-safe base64 (43 characters).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(32))
}

/// `UID.TOKEN`, the shape of every value that names a user and a secret of theirs (the
/// session, device and pending-sign-in cookies): a UUID, a dot, and a `random_token`
/// (43 characters of URL-safe base64). Anything else is `None`.
pub fn uid_and_token(value: &str) -> Option<(uuid::Uuid, &str)> {
    let (uid, token) = value.split_once('.')?;
    let well_formed = token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let user_id = uuid::Uuid::parse_str(uid).ok()?;
    well_formed.then_some((user_id, token))
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        // HMAC accepts keys of any length; this branch cannot be taken.
        Err(_) => return Sha256::digest(data).into(),
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA256 of `data` under `key`, hex.
pub fn hmac_hex(key: &[u8], data: &[u8]) -> String {
    hex::encode(hmac(key, data))
}

pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}
