//! The counting kernels of the builtins: words, lines and bytes over byte slices, fed in
//! chunks of any size (a file's blocks as they are read, or an S3 body as it streams), with the
//! state a word needs to span two chunks. Pure.
//!
//! A word is a maximal run of bytes that are not ASCII whitespace (space, `\t`, `\n`,
//! `\v`, `\f`, `\r`), which is what `wc -w` counts in the C locale. Bytes of multi-byte
//! UTF-8 characters are never ASCII whitespace, so non-ASCII text is counted by the same
//! rule; Unicode whitespace beyond ASCII (U+00A0 no-break space, U+2003 em space, ...)
//! does *not* separate words, where `wc -w` in a UTF-8 locale would split on some of them.

/// Whether `byte` is ASCII whitespace as C's `isspace` has it in the C locale.
#[inline(always)]
fn is_space(byte: u8) -> bool {
    byte == b' ' || byte.wrapping_sub(b'\t') < 5
}

/// A running word count over consecutive chunks of one input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WordCounter {
    pub words: u64,
    /// Whether the last byte seen was whitespace (true before the first byte).
    after_space: bool,
}

impl Default for WordCounter {
    fn default() -> WordCounter {
        WordCounter {
            words: 0,
            after_space: true,
        }
    }
}

impl WordCounter {
    /// Counts the words that start in `bytes`. The loop works 64 bytes at a time: one bit
    /// per byte says "whitespace", and a word starts wherever a non-space bit follows a
    /// space bit (or the previous block's last byte was a space).
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(64);
        let mut words = 0u64;
        let mut after_space = self.after_space;
        for chunk in &mut chunks {
            let spaces = space_mask(chunk.try_into().expect("64 bytes"));
            let before = (spaces << 1) | u64::from(after_space);
            words += u64::from((!spaces & before).count_ones());
            after_space = spaces >> 63 == 1;
        }
        for &byte in chunks.remainder() {
            let space = is_space(byte);
            words += u64::from(!space && after_space);
            after_space = space;
        }
        self.words += words;
        self.after_space = after_space;
    }
}

/// Bit `i` is set when `block[i]` is ASCII whitespace. On x86-64, SSE2 (part of the
/// baseline, so always there) compares 16 bytes at once and gathers their top bits.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
// The casts reinterpret byte and mask bit patterns, as the intrinsics' signed types demand.
#[allow(unsafe_code, clippy::cast_possible_wrap, clippy::cast_sign_loss)]
fn space_mask(block: &[u8; 64]) -> u64 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8, _mm_sub_epi8,
    };
    // SAFETY: SSE2 is part of the x86-64 baseline; the loads are unaligned loads of 16
    // bytes each, all within the 64-byte block.
    unsafe {
        let space = _mm_set1_epi8(b' ' as i8);
        // `byte - 9 < 5` unsigned, as a signed compare: shift the range to the bottom of
        // i8 (`byte - 9 - 128 < 5 - 128`).
        let offset = _mm_set1_epi8((b'\t' as i8).wrapping_add(i8::MIN));
        let limit = _mm_set1_epi8(5i8.wrapping_add(i8::MIN));
        let mut mask = 0u64;
        for lane in 0..4 {
            let v = _mm_loadu_si128(block.as_ptr().add(lane * 16).cast::<__m128i>());
            let is_space = _mm_cmpeq_epi8(v, space);
            let is_control = _mm_cmplt_epi8(_mm_sub_epi8(v, offset), limit);
            let bits = _mm_movemask_epi8(_mm_or_si128(is_space, is_control)) as u32 as u64;
            mask |= (bits & 0xffff) << (lane * 16);
        }
        mask
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn space_mask(block: &[u8; 64]) -> u64 {
    let mut mask = 0u64;
    for (i, &byte) in block.iter().enumerate() {
        mask |= u64::from(is_space(byte)) << i;
    }
    mask
}

/// Newlines in `bytes`, as `wc -l` counts lines.
pub fn lines(bytes: &[u8]) -> u64 {
    // A plain filter-count: the compiler vectorises it.
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector mask agrees with the scalar rule on every byte value, in every lane.
    #[test]
    fn the_space_mask_matches_the_scalar_rule_for_every_byte() {
        for byte in 0..=255u8 {
            for position in [0, 15, 16, 31, 47, 63] {
                let mut block = [b'a'; 64];
                block[position] = byte;
                let expected = u64::from(is_space(byte)) << position;
                assert_eq!(space_mask(&block), expected, "byte {byte} at {position}");
            }
        }
    }

    fn words(text: &str) -> u64 {
        let mut counter = WordCounter::default();
        counter.feed(text.as_bytes());
        counter.words
    }

    #[test]
    fn words_are_runs_of_non_whitespace() {
        assert_eq!(words(""), 0);
        assert_eq!(words("   "), 0);
        assert_eq!(words("one"), 1);
        assert_eq!(words(" one  two\tthree\nfour\r\nfive\x0bsix\x0cseven "), 7);
        assert_eq!(words("naïve café"), 2, "UTF-8 bytes are word bytes");
        assert_eq!(
            words("a\u{a0}b"),
            1,
            "no-break space is not ASCII whitespace"
        );
    }

    /// Chunk boundaries must not split or join words, wherever they fall.
    #[test]
    fn any_chunking_counts_the_same() {
        let text: String = (0..500)
            .map(|i| match i % 7 {
                0 => "  ",
                1 => "word",
                2 => "\n",
                3 => "longer-word-with-more-than-sixty-four-bytes-to-cross-a-block-boundary-x",
                4 => "\t",
                5 => "é",
                _ => "x ",
            })
            .collect();
        let whole = words(&text);
        let reference = text
            .split(|c: char| c.is_ascii_whitespace() || c == '\x0b')
            .filter(|w| !w.is_empty())
            .count() as u64;
        assert_eq!(whole, reference);
        for size in [1, 2, 3, 63, 64, 65, 127, 1000] {
            let mut counter = WordCounter::default();
            for chunk in text.as_bytes().chunks(size) {
                counter.feed(chunk);
            }
            assert_eq!(counter.words, whole, "chunks of {size}");
        }
    }

    #[test]
    fn lines_are_newlines() {
        assert_eq!(lines(b""), 0);
        assert_eq!(lines(b"a\nb\n"), 2);
        assert_eq!(lines(b"no newline"), 0);
    }
}
