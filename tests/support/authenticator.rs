//! A software passkey authenticator, built by hand (P-256 keys from `p256`, a little
//! CBOR written here) so a test can answer the server's WebAuthn options as a browser
//! and its authenticator would, and also as an attacker would: another origin, a
//! replayed answer, a counter that goes backwards, no user verification. Its answers
//! are the WebAuthn Level 3 JSON forms (`RegistrationResponseJSON`,
//! `AuthenticationResponseJSON`) the endpoints take. And `Browser`'s calls to those
//! endpoints (`passkey_options`, `add_passkey`, `passkey_sign_in`…).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rocket::http::{ContentType, Header};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{page, Browser, Page};

/// The origin the passkey tests serve at (`public_url`): a host name, as WebAuthn
/// needs.
pub const PASSKEY_ORIGIN: &str = "http://localhost:8000";

/// One discoverable credential of a software authenticator.
#[derive(Clone)]
pub struct SoftPasskey {
    key: SigningKey,
    pub credential_id: Vec<u8>,
    /// The user handle the options gave (base64url), stored as a resident key does.
    pub user_handle: Option<String>,
    pub counter: u32,
    /// The origin its client data names (a phishing site's, to forge one).
    pub origin: String,
    /// The relying-party id its authenticator data hashes.
    pub rp_id: String,
    /// Whether it says it verified the user (UV).
    pub verifies_user: bool,
    /// Backup eligible and backed up (a synced passkey).
    pub synced: bool,
    /// The make and model it names when registering (all zero: none).
    pub aaguid: [u8; 16],
}

impl SoftPasskey {
    pub fn new() -> SoftPasskey {
        SoftPasskey {
            key: loop {
                if let Ok(key) = SigningKey::from_slice(&rand::random::<[u8; 32]>()) {
                    break key;
                }
            },
            credential_id: super::random_token().into_bytes()[..32].to_vec(),
            user_handle: None,
            counter: 0,
            origin: PASSKEY_ORIGIN.into(),
            rp_id: "localhost".into(),
            verifies_user: true,
            synced: false,
            aaguid: [0; 16],
        }
    }

    pub fn id(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.credential_id)
    }

    fn flags(&self, attested: bool) -> u8 {
        let mut f = 0x01; // user present
        if self.verifies_user {
            f |= 0x04;
        }
        if self.synced {
            f |= 0x08 | 0x10;
        }
        if attested {
            f |= 0x40;
        }
        f
    }

    fn client_data(&self, kind: &str, options: &Value) -> Vec<u8> {
        let challenge = options["publicKey"]["challenge"]
            .as_str()
            .expect("options carry a challenge");
        json!({ "type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false })
            .to_string()
            .into_bytes()
    }

    /// The COSE form of the public key (EC2, ES256, P-256).
    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.verifying_key().to_encoded_point(false);
        let (x, y) = (point.x().expect("x"), point.y().expect("y"));
        let mut out = map_head(5);
        out.extend(int(1));
        out.extend(int(2));
        out.extend(int(3));
        out.extend(int(-7));
        out.extend(int(-1));
        out.extend(int(1));
        out.extend(int(-2));
        out.extend(bytes(&x[..]));
        out.extend(int(-3));
        out.extend(bytes(&y[..]));
        out
    }

    /// Answers creation options (`{"publicKey": …}`) as `navigator.credentials.create`
    /// would: a `none` attestation of a new credential, the counter at its value.
    pub fn register(&mut self, options: &Value) -> Value {
        self.user_handle = options["publicKey"]["user"]["id"]
            .as_str()
            .map(str::to_string);
        let client_data = self.client_data("webauthn.create", options);
        let mut auth_data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags(true));
        auth_data.extend(self.counter.to_be_bytes());
        auth_data.extend(self.aaguid);
        auth_data.extend((self.credential_id.len() as u16).to_be_bytes());
        auth_data.extend(&self.credential_id);
        auth_data.extend(self.cose_key());
        let mut attestation = map_head(3);
        attestation.extend(text("fmt"));
        attestation.extend(text("none"));
        attestation.extend(text("attStmt"));
        attestation.extend(map_head(0));
        attestation.extend(text("authData"));
        attestation.extend(bytes(&auth_data));
        json!({
            "id": self.id(),
            "rawId": self.id(),
            "type": "public-key",
            "response": {
                "attestationObject": URL_SAFE_NO_PAD.encode(&attestation),
                "clientDataJSON": URL_SAFE_NO_PAD.encode(&client_data),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        })
    }

    /// Answers request options as `navigator.credentials.get` would: the counter goes
    /// up by one first (set `counter` to forge one), signed over the authenticator data
    /// and the client data's hash.
    pub fn assert(&mut self, options: &Value) -> Value {
        self.counter += 1;
        self.sign(options)
    }

    /// The same without moving the counter.
    pub fn sign(&self, options: &Value) -> Value {
        let client_data = self.client_data("webauthn.get", options);
        let mut auth_data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags(false));
        auth_data.extend(self.counter.to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(&client_data));
        let signature: Signature = self.key.sign(&signed);
        let signature = der_of(&signature.to_bytes());
        json!({
            "id": self.id(),
            "rawId": self.id(),
            "type": "public-key",
            "response": {
                "authenticatorData": URL_SAFE_NO_PAD.encode(&auth_data),
                "clientDataJSON": URL_SAFE_NO_PAD.encode(&client_data),
                "signature": URL_SAFE_NO_PAD.encode(&signature),
                "userHandle": self.user_handle,
            },
            "clientExtensionResults": {},
        })
    }
}

/// An ECDSA signature `r || s` (32 bytes each) as WebAuthn carries it: DER, a
/// SEQUENCE of two INTEGERs.
fn der_of(rs: &[u8]) -> Vec<u8> {
    let integer = |half: &[u8]| {
        let trimmed: Vec<u8> = half.iter().copied().skip_while(|b| *b == 0).collect();
        let mut v = if trimmed.first().is_none_or(|b| *b >= 0x80) {
            vec![0]
        } else {
            vec![]
        };
        v.extend(trimmed);
        let mut out = vec![0x02, v.len() as u8];
        out.extend(v);
        out
    };
    let (r, s) = rs.split_at(32);
    let body: Vec<u8> = integer(r).into_iter().chain(integer(s)).collect();
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

fn head(major: u8, n: u64) -> Vec<u8> {
    let m = major << 5;
    match n {
        0..=23 => vec![m | n as u8],
        24..=0xff => vec![m | 24, n as u8],
        0x100..=0xffff => {
            let mut v = vec![m | 25];
            v.extend((n as u16).to_be_bytes());
            v
        }
        _ => {
            let mut v = vec![m | 26];
            v.extend((n as u32).to_be_bytes());
            v
        }
    }
}

fn int(n: i64) -> Vec<u8> {
    if n >= 0 {
        head(0, n as u64)
    } else {
        head(1, (-1 - n) as u64)
    }
}

fn bytes(b: &[u8]) -> Vec<u8> {
    let mut v = head(2, b.len() as u64);
    v.extend(b);
    v
}

fn text(s: &str) -> Vec<u8> {
    let mut v = head(3, s.len() as u64);
    v.extend(s.as_bytes());
    v
}

fn map_head(n: u64) -> Vec<u8> {
    head(5, n)
}

impl Browser {
    /// Posts `body` as JSON with the CSRF token in `X-CSRF-Token`.
    pub async fn post_json(&self, path: &str, token: &str, body: &Value) -> Page {
        let mut req = self
            .client
            .post(path.to_string())
            .remote(format!("{}:40000", self.ip).parse().expect("test IP"))
            .header(ContentType::JSON)
            .header(Header::new("X-CSRF-Token", token.to_string()))
            .header(Header::new("User-Agent", self.user_agent.clone()))
            .body(body.to_string());
        if let Some(x) = &self.forwarded_for {
            req = req.header(Header::new("X-Forwarded-For", x.clone()));
        }
        page(req.dispatch().await).await
    }

    /// The creation options of the security page (its token), with `password` when
    /// given.
    pub async fn passkey_options(&self, password: Option<&str>) -> Page {
        let token = self.get("/account/security").await.csrf();
        let body = match password {
            Some(p) => json!({ "current_password": p }),
            None => json!({}),
        };
        self.post_json("/account/passkeys/options", &token, &body)
            .await
    }

    /// Adds `key` to the signed-in account (signed in within 5 minutes) under `name`:
    /// the options, the authenticator's answer, the answer posted. Answers the last
    /// POST.
    pub async fn add_passkey(&self, key: &mut SoftPasskey, name: &str) -> Page {
        let options = self.passkey_options(None).await;
        assert_eq!(options.status.code, 200, "{}", options.body);
        let credential = key.register(&options.json);
        let token = self.get("/account/security").await.csrf();
        let body = json!({ "credential": credential, "name": name });
        self.post_json("/account/passkeys", &token, &body).await
    }

    /// The request options of the sign-in page (`second_factor`: of the code page).
    pub async fn sign_in_options(&self, second_factor: bool) -> Page {
        // The code page, or any page with this browser's token (signed in or not).
        let from = if second_factor {
            super::CODE_PAGE
        } else {
            "/password/forgot"
        };
        let token = self.get(from).await.csrf();
        let body = json!({ "second_factor": second_factor });
        self.post_json("/login/passkey/options", &token, &body)
            .await
    }

    /// Posts an assertion to `/login/passkey` with the sign-in page's token.
    pub async fn post_assertion(&self, assertion: &Value, second_factor: bool) -> Page {
        // The code page, or any page with this browser's token (signed in or not).
        let from = if second_factor {
            super::CODE_PAGE
        } else {
            "/password/forgot"
        };
        let token = self.get(from).await.csrf();
        let body = json!({ "credential": assertion, "second_factor": second_factor });
        self.post_json("/login/passkey", &token, &body).await
    }

    /// Signs in with `key` from the sign-in page's button: options, assertion, POST.
    pub async fn passkey_sign_in(&self, key: &mut SoftPasskey) -> Page {
        let options = self.sign_in_options(false).await;
        assert_eq!(options.status.code, 200, "{}", options.body);
        let assertion = key.assert(&options.json);
        self.post_assertion(&assertion, false).await
    }
}
