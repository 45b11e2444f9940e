//! Byte classes of eight bytes at once (SIMD within a register): the scans that run over
//! every byte of every mail test a `u64` per step instead of a byte.
//!
//! A *mask* has the high bit of each byte set where that byte is in the class, and no other
//! bit.

/// The high bit of every byte.
pub(crate) const HIGH: u64 = 0x8080_8080_8080_8080;
const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;

/// The eight bytes from `at`, zero-padded past the end of `bytes`, as a little-endian word
/// (byte `at` is the lowest).
#[inline(always)]
pub(crate) fn word_at(bytes: &[u8], at: usize) -> u64 {
    match bytes.get(at..at + 8) {
        Some(eight) => u64::from_le_bytes(eight.try_into().expect("eight bytes")),
        None => {
            let mut padded = [0u8; 8];
            let rest = &bytes[at.min(bytes.len())..];
            padded[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(padded)
        }
    }
}

/// The mask of the bytes of `word` in `lo..=hi` (both ASCII). Bytes from 0x80 up are never
/// in range; no carry crosses bytes, as every sum stays below 0x100.
#[inline(always)]
pub(crate) fn in_range(word: u64, lo: u8, hi: u8) -> u64 {
    let spread = |b: u8| u64::from(b) * 0x0101_0101_0101_0101;
    let t = word & LOW7;
    let at_least_lo = t + spread(0x80 - lo);
    let above_hi = t + spread(0x80 - hi - 1);
    at_least_lo & !above_hi & !word & HIGH
}

/// Whether `b` is a word byte as the keyword and identifier searches count them: an ASCII
/// letter or digit, or a byte of a non-ASCII character (umlauts are letters).
pub(crate) fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

/// The mask of the word bytes of `word` ([`is_word_byte`], eight at once).
#[inline(always)]
pub(crate) fn word_bytes(word: u64) -> u64 {
    // An ASCII letter with bit 5 set is a lower-case letter; digits have it set already, and
    // no other byte becomes a letter by it.
    let lowered = word | 0x2020_2020_2020_2020;
    in_range(word, b'0', b'9') | in_range(lowered, b'a', b'z') | (word & HIGH)
}

/// The eight-byte words of `bytes` with their offsets, the last zero-padded. A loop over
/// these compiles to a tight loop without bounds checks.
#[inline(always)]
pub(crate) fn words(bytes: &[u8]) -> impl Iterator<Item = (usize, u64)> + '_ {
    let whole = bytes.chunks_exact(8);
    let tail = bytes.len() - whole.remainder().len();
    whole
        .enumerate()
        .map(|(i, eight)| {
            (
                i * 8,
                u64::from_le_bytes(eight.try_into().expect("eight bytes")),
            )
        })
        .chain((tail < bytes.len()).then(|| (tail, word_at(bytes, tail))))
}

/// The runs of bytes set in `mask`, as (offset of the first, length), ascending. A run at
/// the word's edge may go on in the word before or after.
#[inline(always)]
pub(crate) fn runs(mut mask: u64) -> impl Iterator<Item = (usize, usize)> {
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let first = mask.trailing_zeros() / 8;
            let len = (!(mask >> (8 * first)) & HIGH).trailing_zeros() / 8;
            let end = first + len;
            mask = if end >= 8 {
                0
            } else {
                mask & u64::MAX << (8 * end)
            };
            (first as usize, len as usize)
        })
    })
}

/// The offsets (from 0 to 7) of the bytes set in `mask`, ascending.
#[inline(always)]
pub(crate) fn offsets(mut mask: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let offset = (mask.trailing_zeros() / 8) as usize;
            mask &= mask - 1;
            offset
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_masks_agree_with_the_byte_classes() {
        for b in 0..=255u8 {
            for at in 0..8 {
                let mut bytes = [b'x', 0xFF, b'-', b'7', 0xC3, b' ', b'Q', 0];
                bytes[at] = b;
                let word = u64::from_le_bytes(bytes);
                let set = |mask: u64| mask >> (8 * at + 7) & 1 == 1;
                assert_eq!(set(in_range(word, b'0', b'9')), b.is_ascii_digit());
                assert_eq!(set(in_range(word, b'A', b'Z')), b.is_ascii_uppercase());
                assert_eq!(set(word_bytes(word)), is_word_byte(b));
                for (i, &other) in bytes.iter().enumerate().filter(|&(i, _)| i != at) {
                    let set = |mask: u64| mask >> (8 * i + 7) & 1 == 1;
                    assert_eq!(set(in_range(word, b'0', b'9')), other.is_ascii_digit());
                }
            }
        }
    }

    #[test]
    fn words_past_the_end_are_padded_with_zeros() {
        assert_eq!(word_at(b"abc", 0), u64::from_le_bytes(*b"abc\0\0\0\0\0"));
        assert_eq!(
            word_at(b"abcdefghij", 8),
            u64::from_le_bytes(*b"ij\0\0\0\0\0\0")
        );
        assert_eq!(word_at(b"abc", 8), 0);
        assert_eq!(offsets(0x8000_0000_0000_0080).collect::<Vec<_>>(), [0, 7]);
        let all: Vec<(usize, u64)> = words(b"abcdefghij").collect();
        assert_eq!(
            all,
            [
                (0, word_at(b"abcdefghij", 0)),
                (8, word_at(b"abcdefghij", 8))
            ]
        );
        assert_eq!(words(b"abcdefgh").count(), 1);
        assert_eq!(words(b"").count(), 0);
    }

    #[test]
    fn runs_of_set_bytes() {
        let word = u64::from_le_bytes(*b"12 ab345");
        let digits = in_range(word, b'0', b'9');
        assert_eq!(runs(digits).collect::<Vec<_>>(), [(0, 2), (5, 3)]);
        assert_eq!(runs(HIGH).collect::<Vec<_>>(), [(0, 8)]);
        assert_eq!(runs(0).count(), 0);
    }
}
