//! Console sessions and CSRF tokens, signed with a random key made at process start.
//!
//! A session cookie is `<id>.<issued>.<mac>`: a random 128-bit id, the issue time in Unix
//! seconds and an HMAC-SHA256 of both. The server keeps no session table, so every
//! session ends when the admin process restarts, and logging out revokes the id in
//! memory until the session would have expired anyway. The CSRF token of a form is an
//! HMAC of the session id, so a page of another origin, which cannot read the cookie,
//! cannot forge it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "open_ahrefs_session";

/// How long a session lasts after login, even while the browser stays open.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// A session whose cookie carried a valid signature and has not expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    id: String,
    issued: u64,
}

impl Session {
    /// Build the value of the session cookie.
    pub fn cookie_value(&self, keys: &SessionKeys) -> String {
        let payload = format!("{}.{}", self.id, self.issued);
        format!("{payload}.{}", hex(&keys.sign(b"session", payload.as_bytes())))
    }
}

/// The per-process signing key and the ids revoked by logout.
pub struct SessionKeys {
    key: [u8; 32],
    /// Revoked session ids with their expiry, in Unix seconds.
    revoked: Mutex<HashMap<String, u64>>,
}

impl SessionKeys {
    /// Make a key from the operating system's random number generator.
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self::with_key(key)
    }

    fn with_key(key: [u8; 32]) -> Self {
        Self { key, revoked: Mutex::new(HashMap::new()) }
    }

    /// Start a new session at `now`.
    pub fn issue(&self, now: SystemTime) -> Session {
        let mut id = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut id);
        Session { id: hex(&id), issued: unix_seconds(now) }
    }

    /// Check a cookie value and return its session, or `None` when the value is malformed,
    /// its signature does not match, it has expired at `now` or it was revoked.
    pub fn verify(&self, cookie_value: &str, now: SystemTime) -> Option<Session> {
        let (payload, mac) = cookie_value.rsplit_once('.')?;
        let (id, issued) = payload.split_once('.')?;
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let issued: u64 = issued.parse().ok()?;
        let mac = unhex(mac)?;
        let mut expected = self.mac(b"session");
        expected.update(payload.as_bytes());
        expected.verify_slice(&mac).ok()?;

        let now = unix_seconds(now);
        if issued > now || now - issued >= SESSION_LIFETIME.as_secs() {
            return None;
        }
        if self.revoked.lock().unwrap_or_else(|e| e.into_inner()).contains_key(id) {
            return None;
        }
        Some(Session { id: id.to_string(), issued })
    }

    /// Revoke a session until it would have expired, and forget revocations that have.
    pub fn revoke(&self, session: &Session, now: SystemTime) {
        let now = unix_seconds(now);
        let mut revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
        revoked.retain(|_, expires| *expires > now);
        revoked.insert(session.id.clone(), session.issued + SESSION_LIFETIME.as_secs());
    }

    /// Compute the CSRF token that the forms of a session carry.
    pub fn csrf_token(&self, session: &Session) -> String {
        hex(&self.sign(b"csrf", session.id.as_bytes()))
    }

    /// Check in constant time whether a submitted CSRF token belongs to the session.
    pub fn check_csrf(&self, session: &Session, submitted: &str) -> bool {
        let Some(submitted) = unhex(submitted) else { return false };
        let mut expected = self.mac(b"csrf");
        expected.update(session.id.as_bytes());
        expected.verify_slice(&submitted).is_ok()
    }

    fn mac(&self, purpose: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC accepts a key of any length");
        // The purpose keeps a session signature from passing as a CSRF token or back.
        mac.update(purpose);
        mac.update(b"\0");
        mac
    }

    fn sign(&self, purpose: &[u8], message: &[u8]) -> Vec<u8> {
        let mut mac = self.mac(purpose);
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }
}

/// Check whether a submitted admin token equals the configured one. Both are hashed first,
/// so the comparison takes the same time whatever their lengths and contents.
pub fn tokens_match(configured: &str, submitted: &str) -> bool {
    let configured = Sha256::digest(configured.as_bytes());
    let submitted = Sha256::digest(submitted.as_bytes());
    configured.ct_eq(&submitted).into()
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    const START: u64 = 1_800_000_000;

    #[test]
    fn session_cookie_round_trip() {
        let keys = SessionKeys::with_key([7; 32]);
        let session = keys.issue(at(START));
        let cookie = session.cookie_value(&keys);
        assert_eq!(keys.verify(&cookie, at(START + 60)), Some(session));
    }

    #[test]
    fn session_cookie_rejects_tampering() {
        let keys = SessionKeys::with_key([7; 32]);
        let cookie = keys.issue(at(START)).cookie_value(&keys);
        let (payload, mac) = cookie.rsplit_once('.').unwrap();
        let (id, _issued) = payload.split_once('.').unwrap();

        let later_issue = format!("{id}.{}.{mac}", START + 1000);
        assert_eq!(keys.verify(&later_issue, at(START + 60)), None, "changed issue time");
        let other_id = format!("{}.{START}.{mac}", "0".repeat(32));
        assert_eq!(keys.verify(&other_id, at(START + 60)), None, "changed id");
        assert_eq!(keys.verify(payload, at(START + 60)), None, "missing signature");
        assert_eq!(keys.verify("", at(START)), None, "empty cookie");
        assert_eq!(keys.verify("a.b.c", at(START)), None, "malformed cookie");

        let other_process = SessionKeys::with_key([8; 32]);
        assert_eq!(other_process.verify(&cookie, at(START + 60)), None, "key of another process");
    }

    #[test]
    fn session_expires_after_lifetime() {
        let keys = SessionKeys::with_key([7; 32]);
        let cookie = keys.issue(at(START)).cookie_value(&keys);
        let lifetime = SESSION_LIFETIME.as_secs();
        assert!(keys.verify(&cookie, at(START + lifetime - 1)).is_some());
        assert_eq!(keys.verify(&cookie, at(START + lifetime)), None);
        assert_eq!(keys.verify(&cookie, at(START - 10)), None, "issued in the future");
    }

    #[test]
    fn revoked_session_is_rejected() {
        let keys = SessionKeys::with_key([7; 32]);
        let session = keys.issue(at(START));
        let other = keys.issue(at(START));
        keys.revoke(&session, at(START + 5));
        assert_eq!(keys.verify(&session.cookie_value(&keys), at(START + 6)), None);
        assert!(keys.verify(&other.cookie_value(&keys), at(START + 6)).is_some());
    }

    #[test]
    fn csrf_token_is_bound_to_session() {
        let keys = SessionKeys::with_key([7; 32]);
        let session = keys.issue(at(START));
        let other = keys.issue(at(START));
        let token = keys.csrf_token(&session);

        assert!(keys.check_csrf(&session, &token));
        assert!(!keys.check_csrf(&other, &token), "token of another session");
        assert!(!keys.check_csrf(&session, ""), "empty token");
        assert!(!keys.check_csrf(&session, "zz"), "not hex");
        assert!(!keys.check_csrf(&session, &token[..token.len() - 2]), "truncated token");
        let mut flipped = token.clone().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        assert!(!keys.check_csrf(&session, &String::from_utf8(flipped).unwrap()), "one digit changed");
    }

    #[test]
    fn csrf_token_is_not_a_session_signature() {
        let keys = SessionKeys::with_key([7; 32]);
        let session = keys.issue(at(START));
        let token = keys.csrf_token(&session);
        let forged = format!("{}.{}.{token}", session.id, session.issued);
        assert_eq!(keys.verify(&forged, at(START + 1)), None);
    }

    #[test]
    fn token_comparison() {
        assert!(tokens_match("s3cret-token", "s3cret-token"));
        assert!(!tokens_match("s3cret-token", "s3cret-tokem"));
        assert!(!tokens_match("s3cret-token", "s3cret"));
        assert!(!tokens_match("s3cret-token", ""));
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(unhex(&hex(&[0, 15, 255])), Some(vec![0, 15, 255]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("é1"), None);
    }
}
