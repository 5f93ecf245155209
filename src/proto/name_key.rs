//! [`NameKey`]: a variable name reduced to three integers (its length, its first eight and
//! its last eight bytes), so that a `match` over a table of known names is a switch on
//! integers instead of a byte comparison per name tried. Every request runs its few dozen
//! variable names through two such tables (the variables `parse_request` reads, and the
//! common header names).
//!
//! A key identifies a name of at most [`NameKey::EXACT_LEN`] bytes exactly; a longer name
//! matching a key must still be compared in full ([`NameKey::is`]).

/// A name's length with its leading and trailing bytes as integers. Two names of at most
/// [`Self::EXACT_LEN`] bytes have the same key only when they are equal.
///
/// Use keys of the known names as `const` patterns: `match NameKey::of(name) { K => .. }`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct NameKey {
    len: usize,
    head: u64,
    tail: u64,
}

impl NameKey {
    /// Names up to this length are fully described by their key.
    pub(crate) const EXACT_LEN: usize = 16;

    /// The key of `name`:
    /// - 8 bytes or more: the first eight and the last eight (they overlap below 16);
    /// - 4 to 7 bytes: the first four and the last four (overlapping) in `head`;
    /// - fewer: the bytes themselves in `head`.
    pub(crate) const fn of(name: &[u8]) -> Self {
        let len = name.len();
        if let (Some(first), Some(last)) = (name.first_chunk::<8>(), name.last_chunk::<8>()) {
            return Self {
                len,
                head: u64::from_le_bytes(*first),
                tail: u64::from_le_bytes(*last),
            };
        }
        if let (Some(first), Some(last)) = (name.first_chunk::<4>(), name.last_chunk::<4>()) {
            let first = u32::from_le_bytes(*first) as u64;
            let last = u32::from_le_bytes(*last) as u64;
            return Self {
                len,
                head: first | last << 32,
                tail: 0,
            };
        }
        let mut head = 0;
        let mut i = 0;
        while i < len {
            head |= (name[i] as u64) << (8 * i);
            i += 1;
        }
        Self { len, head, tail: 0 }
    }

    /// The key of a known name that it describes exactly: in a `const`, a name longer than
    /// [`Self::EXACT_LEN`] fails to compile (match such a name with [`Self::of`] and
    /// [`Self::is`]).
    pub(crate) const fn exact(name: &[u8]) -> Self {
        assert!(
            name.len() <= Self::EXACT_LEN,
            "a name this long needs NameKey::is"
        );
        Self::of(name)
    }

    /// Whether `name`, whose key matched this key's pattern, is `known`: always for a short
    /// name; a longer one is compared in full, since its key leaves out its middle bytes.
    pub(crate) fn is(&self, name: &[u8], known: &[u8]) -> bool {
        self.len <= Self::EXACT_LEN || name == known
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_of_names_that_differ_in_one_byte_differ() {
        let names: [&[u8]; 8] = [
            b"",
            b"A",
            b"AB",
            b"ABC",
            b"ABCD",
            b"ABCDEFG",
            b"ABCDEFGH",
            b"X",
        ];
        for a in names {
            for b in names {
                assert_eq!(NameKey::of(a) == NameKey::of(b), a == b, "{a:?} {b:?}");
            }
        }
        // A zero byte is not padding: lengths tell them apart.
        assert_ne!(NameKey::of(b"A\0"), NameKey::of(b"A"));
    }

    #[test]
    fn a_long_name_is_checked_in_full() {
        let key = NameKey::of(b"UPGRADE_INSECURE_REQUESTS");
        // Same length and ends, different middle: the same key, told apart by `is`.
        assert_eq!(key, NameKey::of(b"UPGRADE_XXXXXXXX_REQUESTS"));
        assert!(key.is(b"UPGRADE_INSECURE_REQUESTS", b"UPGRADE_INSECURE_REQUESTS"));
        assert!(!key.is(b"UPGRADE_XXXXXXXX_REQUESTS", b"UPGRADE_INSECURE_REQUESTS"));
    }

    proptest! {
        /// Up to 16 bytes, equal keys mean equal names.
        #[test]
        fn short_keys_are_exact(a in proptest::collection::vec(any::<u8>(), 0..=16),
                                b in proptest::collection::vec(any::<u8>(), 0..=16)) {
            prop_assert_eq!(NameKey::of(&a) == NameKey::of(&b), a == b);
        }

        /// Longer names: equal keys exactly when length and both ends agree.
        #[test]
        fn long_keys_compare_length_and_ends(a in proptest::collection::vec(b'A'..b'D', 17..24),
                                             b in proptest::collection::vec(b'A'..b'D', 17..24)) {
            let same_ends = a.len() == b.len() && a[..8] == b[..8] && a[a.len() - 8..] == b[b.len() - 8..];
            prop_assert_eq!(NameKey::of(&a) == NameKey::of(&b), same_ends);
        }
    }
}
