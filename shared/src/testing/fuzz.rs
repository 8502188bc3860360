//! Byte-level mutation of valid requests, for property tests of the parser and of live servers.

use rand::rngs::StdRng;
use rand::Rng;

/// Applies one to three random edits (overwrite, delete, insert a JSON metacharacter, truncate).
/// With `printable`, overwritten bytes stay printable ASCII so the result can go in a text frame.
pub fn mutate(rng: &mut StdRng, bytes: &mut Vec<u8>, printable: bool) {
    const META: &[u8] = b"{}[],:\"0\\";
    for _ in 0..rng.random_range(1..4) {
        if bytes.is_empty() {
            bytes.push(b'{');
        }
        let i = rng.random_range(0..bytes.len());
        match rng.random_range(0..4) {
            0 => bytes[i] = if printable { rng.random_range(0x20..0x7f) } else { rng.random() },
            1 => {
                bytes.remove(i);
            }
            2 => bytes.insert(i, META[rng.random_range(0..META.len())]),
            _ => bytes.truncate(i.max(1)),
        }
    }
}
