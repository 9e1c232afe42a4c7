//! The counting kernels of the builtins: words, lines and bytes over byte slices, fed in
//! chunks of any size (a memory-mapped file at once, or an S3 body as it streams), with the
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
    /// space bit. The compiler turns the mask building into vector compares.
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(64);
        let mut words = 0u64;
        let mut after_space = self.after_space;
        for chunk in &mut chunks {
            let mut spaces = 0u64;
            for (i, &byte) in chunk.iter().enumerate() {
                spaces |= u64::from(is_space(byte)) << i;
            }
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

/// Newlines in `bytes`, as `wc -l` counts lines.
pub fn lines(bytes: &[u8]) -> u64 {
    // A plain filter-count: the compiler vectorises it.
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

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
