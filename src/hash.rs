//! Content hashes: what tether compares user data by, derives launch client tokens and
//! setup markers from, records local secret files with, and fingerprints SSH host keys
//! with. Pure.

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// SHA-256 of `bytes`, as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&sha256(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// SHA-256 of everything `reader` gives, as lower-case hex, and how many bytes that was:
/// for files too large to hold (tether's own build), read in pieces.
pub fn sha256_hex_of(mut reader: impl std::io::Read) -> std::io::Result<(String, u64)> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0; 64 * 1024];
    let mut total = 0u64;
    loop {
        let read = reader.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        total += read as u64;
    }
    Ok((hex(&hasher.finalize()), total))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha256_of_nothing_is_the_well_known_digest() {
        assert_eq!(
            super::sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn a_hash_read_in_pieces_is_the_hash_of_the_whole() {
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(
            super::sha256_hex_of(&bytes[..]).expect("read"),
            (super::sha256_hex(&bytes), 200_000)
        );
    }
}
