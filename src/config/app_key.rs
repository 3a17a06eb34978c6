//! `APP_KEY`: read, or made on first start and kept, and the keys derived from it,
//! one per purpose.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::{ExposeSecret as _, SecretBox};

use super::{Config, ConfigError};

pub const APP_KEY_FILE: &str = "storage/app.key";
/// Laravel's `APP_KEY` is `base64:` and 32 random bytes: the least accepted.
pub const APP_KEY_MIN_BYTES: usize = 32;
/// Generated keys, and what the cookie crate's signing keys take.
pub(super) const SIGNING_KEY_BYTES: usize = 64;

impl Config {
    /// A key for one purpose, derived from `APP_KEY` (HKDF-SHA256 with a distinct
    /// label per purpose), so every instance with the same `APP_KEY` derives the
    /// same key and no purpose's key reveals another's.
    pub fn derived_key(&self, label: &str) -> [u8; 32] {
        let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(None, self.app_key_bytes());
        let mut key = [0u8; 32];
        hkdf.expand(label.as_bytes(), &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        key
    }

    /// Key material for signing cookies (64 bytes), one key per `label` from any
    /// `APP_KEY`, short or long: HKDF-SHA256, as [`Config::derived_key`].
    pub fn signing_key(&self, label: &str) -> Vec<u8> {
        let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(None, self.app_key_bytes());
        let mut key = vec![0u8; SIGNING_KEY_BYTES];
        hkdf.expand(label.as_bytes(), &mut key)
            .expect("64 bytes is a valid HKDF-SHA256 output length");
        key
    }

    /// The key session cookies were signed with before each purpose had its own:
    /// a 64-byte or longer `APP_KEY` as it was (a shorter one was always
    /// stretched per purpose, as now). Such a cookie is still accepted, and
    /// signed anew, so sessions open at the upgrade stay open.
    pub fn legacy_session_key(&self) -> Option<Vec<u8>> {
        let key = self.app_key_bytes();
        (key.len() >= SIGNING_KEY_BYTES).then(|| key.to_vec())
    }

    pub fn app_key_bytes(&self) -> &[u8] {
        self.app_key.expose_secret()
    }
}

pub fn decode_app_key(encoded: &str) -> Result<SecretBox<Vec<u8>>, ConfigError> {
    let encoded = encoded.trim().trim_start_matches("base64:");
    match BASE64.decode(encoded) {
        Ok(bytes) if bytes.len() >= APP_KEY_MIN_BYTES => Ok(SecretBox::new(Box::new(bytes))),
        _ => Err(ConfigError::BadAppKey),
    }
}

pub fn generate_app_key() -> Vec<u8> {
    let mut key = vec![0u8; SIGNING_KEY_BYTES];
    rand::fill(&mut key[..]);
    key
}
