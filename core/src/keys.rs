//! API keys: `rfk_<key id>_<secret>`. The key id is public (it finds and revokes the key); only
//! the SHA-256 of the secret is stored, and presented secrets are compared in constant time.

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::clock::EpochMillis;
use crate::ports::ApiKeyRecord;

const PREFIX: &str = "rfk_";

/// A freshly generated key: the text to hand to the client once, and the record to store.
#[derive(Debug)]
pub struct NewKey {
    pub plaintext: String,
    pub record: ApiKeyRecord,
}

/// Generates a key for `tenant`.
pub fn generate(tenant: &str, now: EpochMillis) -> NewKey {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 24];
    rand::rng().fill_bytes(&mut id);
    rand::rng().fill_bytes(&mut secret);
    let key_id = hex::encode(id);
    let secret = hex::encode(secret);
    NewKey {
        plaintext: format!("{PREFIX}{key_id}_{secret}"),
        record: ApiKeyRecord {
            key_id,
            tenant: tenant.to_owned(),
            secret_hash: hash_secret(&secret),
            created_at: now,
            revoked_at: None,
        },
    }
}

/// Splits a presented key into its id and secret; `None` when it is not of our shape.
pub fn parse(presented: &str) -> Option<(&str, &str)> {
    let rest = presented.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hexish = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hexish(id, 16) && hexish(secret, 48)).then_some((id, secret))
}

/// What the store keeps of a secret: its SHA-256, in hex.
pub fn hash_secret(secret: &str) -> String {
    String::from_utf8(digest_hex(secret).to_vec()).expect("hex digits are ASCII")
}

/// The SHA-256 of `secret` as hex, on the stack (verification runs on every request).
fn digest_hex(secret: &str) -> [u8; 64] {
    let mut hex = [0u8; 64];
    hex::encode_to_slice(Sha256::digest(secret.as_bytes()), &mut hex)
        .expect("a SHA-256 digest is 64 hex digits");
    hex
}

/// Whether `secret` matches the stored record (and the record is not revoked).
pub fn verify(record: &ApiKeyRecord, secret: &str) -> bool {
    // Compared in time independent of where the two differ.
    let presented = digest_hex(secret);
    let stored = record.secret_hash.as_bytes();
    let same = stored.len() == presented.len()
        && presented
            .iter()
            .zip(stored)
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0;
    same && record.revoked_at.is_none()
}

/// A tenant name: 1 to 64 characters of `a-z`, `0-9`, `-` and `_`.
pub fn valid_tenant(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 64
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_verify_and_others_do_not() {
        let k = generate("dev", 1);
        let (id, secret) = parse(&k.plaintext).unwrap();
        assert_eq!(id, k.record.key_id);
        assert!(verify(&k.record, secret));
        assert!(!verify(&k.record, &"0".repeat(48)));
        let mut revoked = k.record.clone();
        revoked.revoked_at = Some(2);
        assert!(!verify(&revoked, secret));
        assert!(parse("rfk_short_x").is_none());
        assert!(parse("Bearer nonsense").is_none());
        assert!(!k.record.secret_hash.contains(secret));
        let mut truncated = k.record.clone();
        truncated.secret_hash.pop();
        assert!(!verify(&truncated, secret));
        assert_eq!(hash_secret(secret), k.record.secret_hash);
    }
}
