//! The Xauthority entry the user's display server and session read: one MIT-MAGIC-COOKIE-1 for
//! any address and display (FamilyWild), as libXau and x11rb read it.

pub const COOKIE_NAME: &[u8] = b"MIT-MAGIC-COOKIE-1";
/// FamilyWild: matches any host and, with an empty number, any display.
const FAMILY_WILD: u16 = 0xffff;

/// The file's bytes for `cookie`.
pub fn entry(cookie: &[u8; 16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + 2 + 2 + 2 + COOKIE_NAME.len() + 2 + cookie.len());
    out.extend_from_slice(&FAMILY_WILD.to_be_bytes());
    for field in [&b""[..], &b""[..], COOKIE_NAME, &cookie[..]] {
        out.extend_from_slice(&(field.len() as u16).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// The cookie as the service sends it: 32 lowercase hex digits.
pub fn hex(cookie: &[u8; 16]) -> String {
    cookie.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads [`hex`] back.
pub fn from_hex(text: &str) -> Option<[u8; 16]> {
    if text.len() != 32 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_is_what_xauth_writes() {
        let cookie: [u8; 16] = std::array::from_fn(|i| i as u8);
        let mut want = vec![0xff, 0xff, 0, 0, 0, 0, 0, 18];
        want.extend_from_slice(b"MIT-MAGIC-COOKIE-1");
        want.extend_from_slice(&[0, 16]);
        want.extend(0u8..16);
        assert_eq!(entry(&cookie), want);
    }

    #[test]
    fn the_cookie_round_trips_as_hex() {
        let cookie: [u8; 16] = std::array::from_fn(|i| (i * 17) as u8);
        assert_eq!(from_hex(&hex(&cookie)), Some(cookie));
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex(&"é".repeat(16)), None);
    }
}
