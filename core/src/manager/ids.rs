//! Client order ids: one unique id per order the manager sends, for clients that take them.
//!
//! The id is `pm` + an 8-character tag of this manager + a counter, all in base 36: ASCII letters
//! and digits only, at most 23 characters, so it passes every venue's client-id rules (the
//! strictest common ones allow 32 alphanumerics; adapters add a venue's required prefix). The
//! tag comes from the standard library's per-process random hasher keys mixed with the time and
//! a process-wide counter: unique per manager without pulling a random-number crate for 40 bits.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

static MANAGERS: AtomicU64 = AtomicU64::new(0);

/// Makes client order ids.
#[derive(Debug)]
pub(crate) struct ClientIds {
    tag: String,
    next: AtomicU64,
}

fn base36(mut n: u64, out: &mut String) {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut buf = [0u8; 13];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = DIGITS[(n % 36) as usize];
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.extend(buf[i..].iter().map(|b| char::from(*b)));
}

impl ClientIds {
    /// Ids with a fresh tag.
    pub(crate) fn new() -> Self {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(MANAGERS.fetch_add(1, Ordering::Relaxed));
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        h.write_u64(nanos);
        h.write_u32(std::process::id());
        // 8 base-36 digits: 36^8 ≈ 2.8e12 tags.
        let mut digits = String::with_capacity(8);
        base36(h.finish() % 2_821_109_907_456, &mut digits);
        let tag = format!("{digits:0>8}");
        ClientIds {
            tag,
            next: AtomicU64::new(1),
        }
    }

    /// The next id.
    pub(crate) fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(23);
        id.push_str("pm");
        id.push_str(&self.tag);
        base36(n, &mut id);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_alphanumeric_and_unique() {
        let a = ClientIds::new();
        let b = ClientIds::new();
        let mut seen = std::collections::HashSet::new();
        for ids in [&a, &b] {
            for _ in 0..1000 {
                let id = ids.next();
                assert!(id.len() <= 23, "{id}");
                assert!(id.chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
                assert!(seen.insert(id));
            }
        }
        assert_ne!(a.tag, b.tag);
        assert_eq!(a.tag.len(), 8);
        let mut s = String::new();
        base36(u64::MAX, &mut s);
        assert_eq!(s, "3w5e11264sgsf");
    }
}
