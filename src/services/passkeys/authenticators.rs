//! The name a passkey gets when its owner typed none: the authenticator's make, read
//! from the AAGUID in the registration's authenticator data (WebAuthn §6.5.1), for the
//! providers most people use; any other (or an all-zero AAGUID, which privacy-minded
//! authenticators and attestation "none" may send) leaves the default name. The AAGUIDs
//! are those of the community list github.com/passkeydeveloper/passkey-authenticator-aaguids.

use serde_cbor_2::Value;
use uuid::Uuid;

/// Well-known passkey providers by AAGUID.
const KNOWN: [(&str, &str); 16] = [
    (
        "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4",
        "Google Password Manager",
    ),
    ("adce0002-35bc-c60a-648b-0b25f1f05503", "Chrome on Mac"),
    ("b5397666-4885-aa6b-cebf-e52262a439a9", "Chromium Browser"),
    ("fbfc3007-154e-4ecc-8c0b-6e020557d7bd", "iCloud Keychain"),
    ("dd4ec289-e01d-41c9-bb89-70fa845d4bf2", "iCloud Keychain"),
    ("08987058-cadc-4b81-b6e1-30de50dcbe96", "Windows Hello"),
    ("9ddd1817-af5a-4672-a2b9-3e3dd95000a9", "Windows Hello"),
    ("6028b017-b1d4-4c02-b4b3-afcdafc96bb2", "Windows Hello"),
    ("771b48fd-d3d4-4f74-9232-fc157ab0507a", "Edge on Mac"),
    ("bada5566-a7aa-401f-bd96-45619a55120d", "1Password"),
    ("d548826e-79b4-db40-a3d8-11116f7e8349", "Bitwarden"),
    ("531126d6-e717-415c-9320-3d9aa6981239", "Dashlane"),
    ("fdb141b2-5d84-443e-8a35-4698c205a502", "KeePassXC"),
    ("50726f74-6f6e-5061-7373-50726f746f6e", "Proton Pass"),
    ("53414d53-554e-4700-0000-000000000000", "Samsung Pass"),
    ("0ea242b4-43c4-4a1b-8b17-dd6d0b6baec6", "Keeper"),
];

/// Where the AAGUID sits in authenticator data: after the RP id hash (32), the flags
/// (1) and the counter (4); present when the AT flag (0x40) is set.
const AAGUID_AT: usize = 37;
const AT_FLAG: u8 = 0x40;

/// The provider's name for a registration's `attestationObject`, when it is one we know.
pub fn name_of(attestation_object: &[u8]) -> Option<&'static str> {
    let aaguid = aaguid_of(attestation_object)?;
    KNOWN
        .iter()
        .find(|(id, _)| Uuid::parse_str(id).is_ok_and(|id| id == aaguid))
        .map(|(_, name)| *name)
}

fn aaguid_of(attestation_object: &[u8]) -> Option<Uuid> {
    let Ok(Value::Map(map)) = serde_cbor_2::from_slice::<Value>(attestation_object) else {
        return None;
    };
    let auth_data = map.iter().find_map(|(k, v)| match (k, v) {
        (Value::Text(k), Value::Bytes(b)) if k == "authData" => Some(b),
        _ => None,
    })?;
    let flags = *auth_data.get(32)?;
    if flags & AT_FLAG == 0 {
        return None;
    }
    let bytes = auth_data.get(AAGUID_AT..AAGUID_AT + 16)?;
    Uuid::from_slice(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn attestation(flags: u8, aaguid: &[u8]) -> Vec<u8> {
        let mut auth_data = vec![0u8; 32];
        auth_data.push(flags);
        auth_data.extend([0, 0, 0, 1]);
        auth_data.extend(aaguid);
        let mut map = BTreeMap::new();
        map.insert(Value::Text("fmt".into()), Value::Text("none".into()));
        map.insert(Value::Text("authData".into()), Value::Bytes(auth_data));
        serde_cbor_2::to_vec(&Value::Map(map)).unwrap_or_default()
    }

    #[test]
    fn a_known_aaguid_names_its_provider_and_nothing_else_does() {
        let icloud = Uuid::parse_str("fbfc3007-154e-4ecc-8c0b-6e020557d7bd").unwrap_or_default();
        assert_eq!(
            name_of(&attestation(0x45, icloud.as_bytes())),
            Some("iCloud Keychain")
        );
        // Without the AT flag the bytes there are not an AAGUID.
        assert_eq!(name_of(&attestation(0x05, icloud.as_bytes())), None);
        assert_eq!(name_of(&attestation(0x45, &[0u8; 16])), None);
        assert_eq!(name_of(&attestation(0x45, &[1u8; 8])), None, "too short");
        assert_eq!(name_of(b"not cbor"), None);
        assert_eq!(name_of(&[]), None);
    }

    #[test]
    fn every_listed_aaguid_parses() {
        for (id, _) in KNOWN {
            assert!(Uuid::parse_str(id).is_ok(), "{id}");
        }
    }
}
