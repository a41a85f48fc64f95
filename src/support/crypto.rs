//! Small cryptographic helpers: random secrets, digests, keyed hashes, comparisons,
//! and sealing secrets at rest (AES-256-GCM).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// base64(nonce || AES-256-GCM ciphertext and tag) of `plain` under `key`, bound to
/// `context` (the additional data): how secrets are kept at rest (signing keys, TOTP
/// secrets). `None` only if the cipher fails.
pub fn seal(key: &[u8; 32], context: &[u8], plain: &[u8]) -> Option<String> {
    let sealing = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).ok()?);
    let nonce: [u8; NONCE_LEN] = random_bytes(NONCE_LEN).try_into().ok()?;
    let mut buf = plain.to_vec();
    sealing
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context),
            &mut buf,
        )
        .ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode([nonce.as_slice(), &buf].concat()))
}

/// What [`seal`] sealed under `key` and `context`; `None` for anything else.
pub fn open(key: &[u8; 32], context: &[u8], sealed: &str) -> Option<Vec<u8>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(sealed)
        .ok()?;
    if bytes.len() <= NONCE_LEN {
        return None;
    }
    let (nonce, body) = bytes.split_at(NONCE_LEN);
    let opening = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).ok()?);
    let mut buf = body.to_vec();
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let plain = opening
        .open_in_place(nonce, Aad::from(context), &mut buf)
        .ok()?;
    Some(plain.to_vec())
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_context() {
        let key = [7u8; 32];
        let sealed = seal(&key, b"kid1", b"private").expect("sealed");
        assert_eq!(
            open(&key, b"kid1", &sealed).as_deref(),
            Some(&b"private"[..])
        );
        assert_eq!(open(&[8u8; 32], b"kid1", &sealed), None);
        assert_eq!(open(&key, b"kid2", &sealed), None);
        assert_eq!(open(&key, b"kid1", "AAAA"), None);
        assert_eq!(open(&key, b"kid1", "not base64!"), None);
        assert_ne!(
            seal(&key, b"kid1", b"private"),
            Some(sealed),
            "a fresh nonce each time"
        );
    }
}
