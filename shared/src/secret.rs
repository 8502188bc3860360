//! Comparing secrets (API and admin secrets, room secrets and pins, token signatures) in time
//! that does not depend on where they differ, as Janus's `janus_strcmp_const_time`.

/// Whether `a` and `b` are equal, examining every byte when their lengths match.
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn equal_only_when_every_byte_is() {
        assert!(super::same("abc", "abc"));
        assert!(!super::same("abc", "abd"));
        assert!(!super::same("abc", "ab"));
        assert!(super::same("", ""));
    }
}
