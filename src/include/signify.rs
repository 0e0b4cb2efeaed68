//! signify's key and embedded-signature formats (`signify -S -e`), checked
//! with Ed25519 in Rust. A public key file is `untrusted comment: …` and one
//! base64 line of `Ed` + an 8-byte key number + the 32-byte key; an embedded
//! signature is the same comment line, a base64 line of `Ed` + key number +
//! the 64-byte signature, then the signed message itself, byte for byte.
//! Owns the parsing of those lines and the verification; nothing else.

use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};

const COMMENT: &[u8] = b"untrusted comment: ";
const PKALG: &[u8; 2] = b"Ed";

/// A signify public key: its key number (to pick the key among several,
/// for rollover) and the Ed25519 key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    pub keynum: [u8; 8],
    key: VerifyingKey,
}

/// A signed file split into its parts.
#[derive(Debug, PartialEq, Eq)]
pub struct Signed<'a> {
    pub keynum: [u8; 8],
    signature: [u8; 64],
    pub message: &'a [u8],
}

/// Why a key or signature line is not signify's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("the first line is not `untrusted comment: …`")]
    NoComment,
    #[error("the second line is missing or not base64")]
    Base64,
    #[error("decodes to {0} bytes, not {1}")]
    Length(usize, usize),
    #[error("the algorithm is not Ed")]
    Algorithm,
    #[error("not a valid Ed25519 public key")]
    Key,
}

/// Splits off the comment line and decodes the base64 line after it;
/// returns the decoded bytes and what follows the base64 line's newline.
fn two_lines(b: &[u8]) -> Result<(Vec<u8>, &[u8]), FormatError> {
    let rest = b.strip_prefix(COMMENT).ok_or(FormatError::NoComment)?;
    let nl = memchr::memchr(b'\n', rest).ok_or(FormatError::Base64)?;
    let rest = &rest[nl + 1..];
    let (line, after) = match memchr::memchr(b'\n', rest) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &rest[rest.len()..]),
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let raw = base64::engine::general_purpose::STANDARD.decode(line).map_err(|_| FormatError::Base64)?;
    Ok((raw, after))
}

/// True when `b` opens like a signify file (the embedded form or a key).
pub fn looks_signed(b: &[u8]) -> bool {
    b.starts_with(COMMENT)
}

impl PublicKey {
    /// Parses a `signify -G` public key file.
    pub fn parse(b: &[u8]) -> Result<PublicKey, FormatError> {
        let (raw, _) = two_lines(b)?;
        if raw.len() != 42 {
            return Err(FormatError::Length(raw.len(), 42));
        }
        if &raw[..2] != PKALG {
            return Err(FormatError::Algorithm);
        }
        let mut keynum = [0; 8];
        keynum.copy_from_slice(&raw[2..10]);
        let mut k = [0; 32];
        k.copy_from_slice(&raw[10..42]);
        let key = VerifyingKey::from_bytes(&k).map_err(|_| FormatError::Key)?;
        Ok(PublicKey { keynum, key })
    }

    /// A key from its parts (tests, and keys built in code).
    pub fn from_parts(keynum: [u8; 8], key: VerifyingKey) -> PublicKey {
        PublicKey { keynum, key }
    }

    /// Checks `signed` with this key (strict: no malleable signatures, no
    /// small-order keys).
    pub fn verify(&self, signed: &Signed<'_>) -> bool {
        signed.keynum == self.keynum
            && self.key.verify_strict(signed.message, &Signature::from_bytes(&signed.signature)).is_ok()
    }
}

impl Signed<'_> {
    /// Splits a `signify -S -e` file.
    pub fn parse(b: &[u8]) -> Result<Signed<'_>, FormatError> {
        let (raw, message) = two_lines(b)?;
        if raw.len() != 74 {
            return Err(FormatError::Length(raw.len(), 74));
        }
        if &raw[..2] != PKALG {
            return Err(FormatError::Algorithm);
        }
        let mut keynum = [0; 8];
        keynum.copy_from_slice(&raw[2..10]);
        let mut signature = [0; 64];
        signature.copy_from_slice(&raw[10..74]);
        Ok(Signed { keynum, signature, message })
    }
}

/// A key number as signify would print it in hex (for messages).
pub fn hex(keynum: &[u8; 8]) -> String {
    keynum.iter().map(|b| format!("{b:02x}")).collect()
}

/// Test aid: a signify public key file and an embedded-signature file made
/// with `sk`, as `signify -G` and `signify -S -e` write them.
#[cfg(test)]
pub fn sign_for_test(sk: &ed25519_dalek::SigningKey, keynum: [u8; 8], message: &[u8]) -> (Vec<u8>, Vec<u8>) {
    use ed25519_dalek::Signer as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut pk = PKALG.to_vec();
    pk.extend_from_slice(&keynum);
    pk.extend_from_slice(sk.verifying_key().as_bytes());
    let pubfile = format!("untrusted comment: test public key\n{}\n", b64.encode(&pk)).into_bytes();
    let mut sig = PKALG.to_vec();
    sig.extend_from_slice(&keynum);
    sig.extend_from_slice(&sk.sign(message).to_bytes());
    let mut signed = format!("untrusted comment: verify with test.pub\n{}\n", b64.encode(&sig)).into_bytes();
    signed.extend_from_slice(message);
    (pubfile, signed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    #[test]
    fn round_trip_and_tamper() {
        let sk = SigningKey::from_bytes(&[7; 32]);
        let (pubfile, signed) = sign_for_test(&sk, *b"12345678", b"192.0.2.1\n");
        let pk = PublicKey::parse(&pubfile).unwrap();
        let s = Signed::parse(&signed).unwrap();
        assert_eq!(s.message, b"192.0.2.1\n");
        assert!(pk.verify(&s));
        let mut bad = signed.clone();
        *bad.last_mut().unwrap() = b'\r';
        assert!(!pk.verify(&Signed::parse(&bad).unwrap()));
        let other = PublicKey::parse(&sign_for_test(&SigningKey::from_bytes(&[8; 32]), *b"12345678", b"").0).unwrap();
        assert!(!other.verify(&s));
    }

    #[test]
    fn malformed() {
        assert_eq!(Signed::parse(b"192.0.2.1\n"), Err(FormatError::NoComment));
        assert_eq!(Signed::parse(b"untrusted comment: x\n!!!\n"), Err(FormatError::Base64));
        assert_eq!(Signed::parse(b"untrusted comment: x\nRWQ=\n"), Err(FormatError::Length(2, 74)));
        assert_eq!(PublicKey::parse(b"untrusted comment: x"), Err(FormatError::Base64));
    }
}
